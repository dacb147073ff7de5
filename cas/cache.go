// Package cas is roots' content-addressed cache: compressed blobs exactly as the
// registry sent them, one unpacked tree per layer, image records, and the locks
// and rules that keep it correct when many processes use it and any of them may
// crash. Objects are made under tmp/, verified, synced and renamed into place, so
// a final path that exists is complete; nothing is modified in place.
//
// Layout (see DESIGN.md):
//
//	<root>/roots.lock               shared by users, exclusive for purge
//	<root>/blobs/sha256/<hex>       blobs, manifests and configs
//	<root>/trees/sha256/<hex>/      one unpacked layer, keyed by its diff id
//	<root>/trees/sha256/<hex>.json  what the tree cannot hold itself
//	<root>/images/<registry>/<repo>/<tag>
//	<root>/tmp/                     objects being made, and their locks
package cas

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/lock"
)

// Cache is an open cache. It holds the cache's shared lock until Close.
type Cache struct {
	root  string
	locks *lock.Set
	held  *lock.Lock
}

var layoutDirs = []string{"blobs/sha256", "trees/sha256", "images", "tmp"}

// Open creates the cache layout under root if needed and takes the shared lock.
// If no other process uses the cache, leftovers of crashed commands in tmp/ are
// removed first.
func Open(ctx context.Context, root string) (*Cache, error) {
	if err := makeLayout(root); err != nil {
		return nil, err
	}
	c := &Cache{root: root, locks: lock.NewSet()}
	if l, ok, err := c.locks.TryExclusive(c.lockPath()); err != nil {
		return nil, err
	} else if ok {
		err := cleanTmp(c.path("tmp"))
		l.Release()
		if err != nil {
			return nil, fmt.Errorf("clean %s: %w", c.path("tmp"), err)
		}
	}
	held, err := c.locks.Shared(ctx, c.lockPath())
	if err != nil {
		return nil, err
	}
	c.held = held
	return c, nil
}

// Close releases the cache's shared lock.
func (c *Cache) Close() error { return c.held.Release() }

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
	for _, d := range layoutDirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("create cache %s: %w", root, err)
		}
	}
	return nil
}

// cleanTmp removes everything in dir; the caller holds the exclusive lock.
func cleanTmp(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := removeAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
