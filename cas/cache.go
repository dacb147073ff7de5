// Package cas is roots' content-addressed cache: compressed blobs exactly as the
// registry sent them, one unpacked tree per layer, image records, and the locks
// and rules that keep it correct when many processes use it and any of them may
// crash. Objects are made under tmp/, verified, synced and renamed into place, so
// a final path that exists is complete; nothing is modified in place.
//
// Layout (ARCHITECTURE.md has it all, with the overlay state beside DEST):
//
//	<root>/roots.lock               shared by users, exclusive for purge
//	<root>/blobs/sha256/<hex>       blobs, manifests and configs
//	<root>/sources/sha256/<hex>     the repositories known to hold blob <hex> (for mounts)
//	<root>/trees/sha256/<hex>/      one unpacked layer, keyed by its diff id
//	<root>/trees/sha256/<hex>.json  what the tree cannot hold itself
//	<root>/fixups/sha256/<hex>/     an image's overlay fix-up layer (keyed by its trees)
//	<root>/fixups/sha256/<hex>.json its trees; its mtime is its last use
//	<root>/linked/<hex>             the tree <hex> may share inodes with a hardlinked destination (see Expose)
//	<root>/images/<registry>/<repo>/<tag>@<os-arch[-variant]>
//	<root>/leases/<id>              a destination a pull made (an overlay uses trees)
//	<root>/tmp/                     objects being made, and their locks
//
// Last use is the mtime of a blob, of a tree's or fix-up's .json, and of an image
// record; every pull touches what it uses, and Purge evicts by it.
package cas

import (
	"context"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/lock"
)

// Cache is an open cache. It holds the cache's shared lock until Close.
type Cache struct {
	root      string
	locks     *lock.Set
	held      *lock.Lock
	exclusive bool // held is the exclusive lock (purge, check)
}

var layoutDirs = []string{"blobs/sha256", "sources/sha256", "trees/sha256", "fixups/sha256", "linked", "images", "leases", "tmp"}

// Open creates the cache layout under root if needed and takes the shared lock.
// If no other process uses the cache, leftovers of crashed commands in tmp/ are
// removed first, and leases whose mount is gone are released.
func Open(ctx context.Context, root string) (*Cache, error) {
	if err := makeLayout(root); err != nil {
		return nil, err
	}
	c := &Cache{root: root, locks: lock.NewSet()}
	if err := c.tidyIfAlone(); err != nil {
		return nil, err
	}
	held, err := c.locks.Shared(ctx, c.lockPath())
	if err != nil {
		return nil, err
	}
	c.held = held
	return c, nil
}

// openExclusive opens the cache at root for a command that must be alone in it:
// it waits until no other command uses the cache.
func openExclusive(ctx context.Context, root string) (*Cache, error) {
	if err := makeLayout(root); err != nil {
		return nil, err
	}
	c := &Cache{root: root, locks: lock.NewSet(), exclusive: true}
	held, err := c.locks.Exclusive(ctx, c.lockPath())
	if err != nil {
		return nil, err
	}
	c.held = held
	return c, nil
}

// Close releases the cache's lock. The last user out cleans tmp/, so that the
// locks and leftovers of finished commands do not pile up.
func (c *Cache) Close() error {
	err := c.held.Release()
	if err == nil && !c.exclusive {
		err = c.tidyIfAlone()
	}
	return err
}

// tidyIfAlone cleans tmp/ and releases stale leases if no other command uses
// the cache; otherwise it does nothing.
func (c *Cache) tidyIfAlone() error {
	l, ok, err := c.locks.TryExclusive(c.lockPath())
	if err != nil || !ok {
		return err
	}
	defer l.Release()
	return c.tidy()
}

// tidy releases stale leases and empties tmp/ (but for retired trees that a
// live lease still mounts); the caller holds the exclusive lock.
func (c *Cache) tidy() error {
	live, _, err := c.releaseStale()
	if err != nil {
		return err
	}
	if err := cleanTmp(c.path("tmp"), live); err != nil {
		return fmt.Errorf("clean %s: %w", c.path("tmp"), err)
	}
	return nil
}

// Root is the cache's directory.
func (c *Cache) Root() string { return c.root }

func (c *Cache) lockPath() string { return filepath.Join(c.root, "roots.lock") }

func (c *Cache) path(elem ...string) string {
	return filepath.Join(append([]string{c.root}, elem...)...)
}

// blobPath and treePath take digests that were validated (see checkDigest).
func (c *Cache) blobPath(d digest.Digest) string {
	return c.path("blobs", d.Algorithm().String(), d.Encoded())
}

func (c *Cache) treePath(d digest.Digest) string {
	return c.path("trees", d.Algorithm().String(), d.Encoded())
}

func (c *Cache) fixupPath(d digest.Digest) string {
	return c.path("fixups", d.Algorithm().String(), d.Encoded())
}

// checkDigest refuses a digest that is not a well-formed sha256 before it
// becomes part of a path.
func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %s: only sha256 is supported", d)
	}
	return nil
}

func makeLayout(root string) error {
	if err := mkdirs(root); err != nil {
		return fmt.Errorf("create cache %s: %w", root, unwritable{err})
	}
	if err := checkTrust(root); err != nil {
		return err
	}
	for _, d := range layoutDirs {
		if err := mkdirs(filepath.Join(root, d)); err != nil {
			return fmt.Errorf("create cache %s: %w", root, unwritable{err})
		}
	}
	return nil
}

// mkdirs is os.MkdirAll with what it makes 0755 whatever the umask: a cache directory that
// others may write is not trusted (see checkTrust).
func mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := mkdirs(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if os.IsExist(err) {
			return nil
		}
		return err
	}
	return os.Chmod(dir, 0o755)
}

// cleanTmp removes everything in dir but the retired trees that a live lease
// still uses (see retire); the caller holds the exclusive lock.
func cleanTmp(dir string, live []Lease) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if d, ok := retiredDigest(e.Name()); ok && leased(live, d) {
			continue
		}
		if err := disk.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// TempDir makes a directory in the cache's tmp/ (on the trees' filesystem, so that it can
// hardlink them), named from pattern as os.MkdirTemp does. The caller removes it; what is left
// when the process dies goes with tmp/ (see Close).
func (c *Cache) TempDir(pattern string) (string, error) {
	return os.MkdirTemp(c.path("tmp"), pattern)
}

// TempFile creates a file in the cache's tmp/, named from pattern as os.CreateTemp does. The
// caller removes it.
func (c *Cache) TempFile(pattern string) (*os.File, error) {
	return os.CreateTemp(c.path("tmp"), pattern)
}
