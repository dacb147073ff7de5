package cas

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"io/fs"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/lock"

	"github.com/opencontainers/go-digest"
)

// Lease is the record of a destination that a pull made: where it is, what image it holds and
// how it was made, so that a later command can commit it, push it or know it. An overlay
// destination also uses objects of the cache after the pull has ended (its lower layers are
// trees); a hardlink or copy destination needs them only to commit (its base image's trees)
// and to push (the image's blobs). Purge never removes what a live lease names (see Live).
// A lease whose destination is gone (unmounted, removed, replaced by another directory) is
// stale, and is released by the next command that is alone in the cache (see Open), or by
// Purge and Check.
type Lease struct {
	ID       string          `json:"-"`
	Dest     string          `json:"dest"`             // the destination, absolute
	Mode     string          `json:"mode,omitempty"`   // hardlink, copy or overlay ("": overlay, as older records)
	State    string          `json:"state,omitempty"`  // overlay: the directory of the mount's upper and work dirs
	Image    string          `json:"image,omitempty"`  // the reference pulled, or the image last committed
	Digest   digest.Digest   `json:"digest,omitempty"` // its manifest
	Index    digest.Digest   `json:"index,omitempty"`  // the index the manifest was chosen from, if any
	Platform string          `json:"platform,omitempty"`
	Trees    []digest.Digest `json:"trees"`            // diff ids, bottom first (with those of commits)
	Fixup    digest.Digest   `json:"fixup,omitempty"`  // overlay: the image's fix-up layer
	Git      bool            `json:"git,omitempty"`    // the destination is also a git repository (pull -g)
	Base     digest.Digest   `json:"base,omitempty"`   // after a commit: the manifest that was pulled
	Pulled   string          `json:"pulled,omitempty"` // after a commit: the reference that was pulled
	Dev      uint64          `json:"dev,omitempty"`    // hardlink, copy: the destination directory's
	Ino      uint64          `json:"ino,omitempty"`    // device and inode, as the pull made it
	Created  time.Time       `json:"created"`
	// Pending: a commit of the destination is under way (or was killed). It is written before
	// the commit adds anything and cleared with the lease's move to the new image.
	Pending *PendingCommit `json:"pending,omitempty"`
}

// PendingCommit is a commit of a lease's destination that has begun and not ended. Its image
// record is written last of what it adds to the cache: the next command on the destination
// (see LockDest) finishes a commit whose record is there (only the lease was left to write)
// and takes back one whose record is not (its git branch, if it made one).
type PendingCommit struct {
	Image    string        `json:"image"`            // the reference naming the new image
	Record   string        `json:"record"`           // its image record's name (ImageName), for Platform
	Platform string        `json:"platform"`         //
	Digest   digest.Digest `json:"digest"`           // its manifest
	DiffID   digest.Digest `json:"diffId"`           // its new layer's
	Head     string        `json:"head,omitempty"`   // git: the layer branch HEAD named before it
	Branch   string        `json:"branch,omitempty"` // git: the layer branch it makes
}

// Overlay reports whether the lease is of an overlay destination.
func (l Lease) Overlay() bool { return l.Mode == "" || l.Mode == "overlay" }

// LeaseID is the id of the lease of the destination dest: one per path.
func LeaseID(dest string) string {
	s := sha256.Sum256([]byte(dest))
	return hex.EncodeToString(s[:16])
}

func (c *Cache) leasePath(id string) string { return c.path("leases", id) }

// Lease records l (its ID is LeaseID(l.Dest)), replacing an earlier lease of
// the same destination. Take it while the cache is open, before mounting, so
// that no purge can run between the trees' check and the lease.
func (c *Cache) Lease(l *Lease) error {
	ds := slices.Clone(l.Trees)
	if l.Fixup != "" {
		ds = append(ds, l.Fixup)
	}
	for _, d := range ds {
		if err := checkDigest(d); err != nil {
			return fmt.Errorf("lease %s: %w", l.Dest, err)
		}
	}
	l.ID = LeaseID(l.Dest)
	if l.Created.IsZero() {
		l.Created = time.Now().UTC()
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := c.writeFile(c.leasePath(l.ID), b); err != nil {
		return fmt.Errorf("lease %s: %w", l.Dest, err)
	}
	return nil
}

// Release ends the lease id. Releasing a lease that does not exist is no error.
func (c *Cache) Release(id string) error {
	if _, err := hex.DecodeString(id); err != nil || len(id) != 32 {
		return fmt.Errorf("release lease %q: not a lease id", id)
	}
	if err := os.Remove(c.leasePath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("release lease %s: %w", id, err)
	}
	return nil
}

// Leases returns every lease, live or stale, oldest first.
func (c *Cache) Leases() ([]Lease, error) {
	ents, err := os.ReadDir(c.path("leases"))
	if err != nil {
		return nil, fmt.Errorf("leases: %w", err)
	}
	var ls []Lease
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(c.leasePath(e.Name()))
		if err != nil {
			continue // released meanwhile
		}
		var l Lease
		if json.Unmarshal(b, &l) != nil {
			continue // not a lease: a torn write is impossible (rename), so not ours
		}
		l.ID = e.Name()
		ls = append(ls, l)
	}
	slices.SortFunc(ls, func(a, b Lease) int { return a.Created.Compare(b.Created) })
	return ls, nil
}

// Live reports whether the lease's destination is still there: for an overlay, its overlay
// mounted at Dest (disk.OverlayMounted); otherwise the directory the pull made, at Dest (the
// same device and inode), so that a destination removed or replaced by another directory
// (a pull with --cache=no, say) no longer holds anything in the cache.
func (l Lease) Live() (bool, error) {
	if l.Overlay() {
		return disk.OverlayMounted(l.Dest)
	}
	var st unix.Stat_t
	if err := unix.Lstat(l.Dest, &st); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return false, nil
		}
		return false, &fs.PathError{Op: "lstat", Path: l.Dest, Err: err}
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && uint64(st.Dev) == l.Dev && st.Ino == l.Ino, nil
}

// LeaseOf returns the lease of the destination dest (absolute, canonical), if there is one.
func (c *Cache) LeaseOf(dest string) (Lease, bool, error) {
	id := LeaseID(dest)
	b, err := os.ReadFile(c.leasePath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("lease of %s: %w", dest, err)
	}
	var l Lease
	if err := json.Unmarshal(b, &l); err != nil || l.Dest != dest {
		return Lease{}, false, nil
	}
	l.ID = id
	return l, true, nil
}

// LockDest takes the lock of the destination dest's lease, which a commit and a push --from of
// it hold from reading the lease to writing it (see PendingCommit); release it when done.
func (c *Cache) LockDest(ctx context.Context, dest string) (*lock.Lock, error) {
	l, err := c.locks.Exclusive(ctx, c.path("tmp", LeaseID(dest)+".dest.lock"))
	if err != nil {
		return nil, fmt.Errorf("lock the record of %s: %w", dest, err)
	}
	return l, nil
}

// releaseStale releases the leases whose mount is gone, and returns the live
// ones and the released ones; the caller holds the exclusive lock, so no pull
// is between taking a lease and mounting.
func (c *Cache) releaseStale() (live, released []Lease, err error) {
	all, err := c.Leases()
	if err != nil || len(all) == 0 {
		return nil, nil, err
	}
	for _, l := range all {
		if ok, err := l.Live(); ok || err != nil { // a mount it cannot tell is kept as live
			live = append(live, l)
			continue
		}
		if err := c.Release(l.ID); err != nil {
			return nil, nil, err
		}
		released = append(released, l)
	}
	return live, released, nil
}

// leased reports whether one of the leases mounts the tree or fix-up d (an overlay's lower
// layer; a hardlink or copy destination uses no tree once made).
func leased(ls []Lease, d digest.Digest) bool {
	for _, l := range ls {
		if l.Overlay() && (l.Fixup == d || slices.Contains(l.Trees, d)) {
			return true
		}
	}
	return false
}
