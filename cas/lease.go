package cas

import (
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

	"github.com/opencontainers/go-digest"
)

// Lease is a live destination that uses objects of the cache after the command
// that made it has ended: an overlay mount, whose lower layers are trees.
// Purge never removes what a lease names. A lease whose mount is gone (a
// reboot, a manual umount) is stale, and is released by the next command that
// is alone in the cache (see Open) or by Purge and Check.
type Lease struct {
	ID      string          `json:"-"`
	Dest    string          `json:"dest"`             // the mount point, absolute
	State   string          `json:"state"`            // the directory of the mount's upper and work dirs
	Image   string          `json:"image,omitempty"`  // the reference pulled
	Digest  digest.Digest   `json:"digest,omitempty"` // its manifest
	Trees   []digest.Digest `json:"trees"`            // diff ids, bottom first
	Fixup   digest.Digest   `json:"fixup,omitempty"`  // the image's fix-up layer
	Created time.Time       `json:"created"`
}

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

// Live reports whether the lease's mount is still there: an overlay mounted at
// its destination (disk.OverlayMounted).
func (l Lease) Live() (bool, error) {
	return disk.OverlayMounted(l.Dest)
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

// leased reports whether one of the leases uses the tree or fix-up d.
func leased(ls []Lease, d digest.Digest) bool {
	for _, l := range ls {
		if l.Fixup == d || slices.Contains(l.Trees, d) {
			return true
		}
	}
	return false
}
