package cas

import (
	"context"
	"errors"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/lock"
)

// A tree can only change through a destination that shares its inodes: one
// that hardlink assembly made. Copy and overlay destinations never do (an
// overlay's lower layers are read-only, and a fix-up lives in the cache). So a
// tree is stat-walked against its fingerprint on reuse only when it is
// *exposed*: when the stamp linked/<hex> exists (beside trees/, so that a
// tree's directory holds nothing but the tree and its record). Expose creates
// the stamp, synced, before a hardlink assembly links the tree's files, and
// holds the tree's link lock (shared) until the destination is complete. A
// reuse that walks an exposed tree, finds it unchanged and finds no file of it
// linked from outside the tree (every link count accounted for inside it),
// takes the link lock exclusively and removes the stamp: the destinations that
// shared the tree are gone, and the next reuse walks nothing.

// linkedPath is the exposure stamp of the tree d.
func (c *Cache) linkedPath(d digest.Digest) string { return c.path("linked", d.Encoded()) }

// linkLockPath is the lock that Expose holds shared, and that removing the
// stamp takes exclusively.
func (c *Cache) linkLockPath(d digest.Digest) string {
	return c.path("tmp", d.Encoded()+".link.lock")
}

// Exposed reports whether the tree d may share inodes with a hardlinked
// destination (and is therefore checked against its fingerprint on reuse).
func (c *Cache) Exposed(d digest.Digest) bool {
	if checkDigest(d) != nil {
		return false
	}
	return exists(c.linkedPath(d))
}

// Expose marks the trees (diff ids) as shared with a destination that is about
// to hardlink their files, so that every later reuse checks them. Release the
// Exposure once the destination is complete, or Undo it once a failed
// destination is removed. Trees can also be taken one at a time, with Take, as
// each becomes ready: a tree's files are hardlinked only once it is taken.
func (c *Cache) Expose(ctx context.Context, trees []digest.Digest) (*Exposure, error) {
	x := &Exposure{c: c}
	for _, d := range trees {
		if err := x.add(ctx, d); err != nil {
			x.Release()
			return nil, err
		}
	}
	if err := x.sync(); err != nil {
		x.Release()
		return nil, err
	}
	return x, nil
}

// Take exposes the tree t, as Expose does, and returns it for hardlinking: a
// hardlink assembly links only the trees it took.
func (x *Exposure) Take(ctx context.Context, t Tree) (Tree, error) {
	if err := x.add(ctx, t.DiffID); err != nil {
		return Tree{}, err
	}
	if err := x.sync(); err != nil {
		return Tree{}, err
	}
	return t, nil
}

func (x *Exposure) add(ctx context.Context, d digest.Digest) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	lk, err := x.c.locks.Shared(ctx, x.c.linkLockPath(d))
	if err != nil {
		return err
	}
	x.held = append(x.held, lk)
	f, err := os.OpenFile(x.c.linkedPath(d), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tree %s: mark it linked: %w", d, err)
	}
	f.Close()
	x.made = append(x.made, d)
	x.unsynced = true
	return nil
}

// sync makes the stamps made since the last sync last. They are empty: their
// directory entries are what must.
func (x *Exposure) sync() error {
	if !x.unsynced {
		return nil
	}
	if err := disk.SyncDir(x.c.path("linked")); err != nil {
		return fmt.Errorf("mark trees linked: %w", err)
	}
	x.unsynced = false
	return nil
}

// Exposure is what Expose holds while a destination is being linked.
type Exposure struct {
	c    *Cache
	held []*lock.Lock
	made []digest.Digest // the stamps this Expose created
	// unsynced says a stamp was made since linked/ was last synced.
	unsynced bool
}

// Release ends the assembly: the stamps stay.
func (x *Exposure) Release() {
	for _, l := range x.held {
		l.Release()
	}
	x.held = nil
}

// Undo releases, then removes the stamps that Expose created, for a
// destination that failed and was removed: each only if the tree is unchanged
// and nothing else links its files (the same check as on reuse).
func (x *Exposure) Undo(ctx context.Context) {
	x.Release()
	for _, d := range x.made {
		dir := x.c.treePath(d)
		rec, err := readTreeRecord(dir + ".json")
		if err != nil || rec.Fingerprint == "" {
			continue
		}
		x.c.checkExposed(ctx, d, dir, rec.Fingerprint)
	}
	x.made = nil
}

// checkExposed reports whether the exposed tree d at dir still matches its
// fingerprint want. If no destination can be linking it now (its link lock is
// free, and held through the walk) and no file of it is linked from outside
// the tree, its stamp is removed: nothing shares its inodes any more.
func (c *Cache) checkExposed(ctx context.Context, d digest.Digest, dir, want string) (unchanged bool, err error) {
	lk, got, lerr := c.locks.TryExclusive(c.linkLockPath(d))
	if lerr != nil {
		got = false
	}
	if got {
		defer lk.Release()
	}
	w, err := walkFingerprint(ctx, dir, want)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil || !w.matches(want) {
		return false, nil
	}
	if got && !w.outside() {
		os.Remove(c.linkedPath(d))
	}
	return true, nil
}
