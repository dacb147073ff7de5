package cas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/cas/layer"
)

// Tree is one unpacked layer in the cache.
type Tree struct {
	Dir    string
	Record layer.Record
	Cached bool // it was in the cache before this call
}

// Opener opens a layer blob's stream from its source (the registry).
type Opener func(ctx context.Context) (io.ReadCloser, error)

// Tree returns l's unpacked tree, making it if the cache lacks it: from the
// cached blob if there is one, else from open's stream, which is kept as the
// blob in the same pass. Two callers (goroutines or processes) that need the
// same tree make it once; the second waits and reuses it.
func (c *Cache) Tree(ctx context.Context, l Layer, open Opener) (Tree, error) {
	if err := l.check(); err != nil {
		return Tree{}, err
	}
	if t, ok, err := c.cachedTree(l); ok || err != nil {
		return t, err
	}
	lk, err := c.locks.Exclusive(ctx, c.path("tmp", l.DiffID.Encoded()+".lock"))
	if err != nil {
		return Tree{}, err
	}
	defer lk.Release()
	if t, ok, err := c.cachedTree(l); ok || err != nil {
		return t, err
	}
	return c.makeTree(ctx, l, open)
}

// cachedTree returns the published tree of l, if there is one, and marks it used.
func (c *Cache) cachedTree(l Layer) (Tree, bool, error) {
	dir := c.treePath(l.DiffID)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return Tree{}, false, nil
	} else if err != nil {
		return Tree{}, false, fmt.Errorf("tree %s: %w", l.DiffID, err)
	}
	b, err := os.ReadFile(dir + ".json")
	if err != nil {
		return Tree{}, false, fmt.Errorf("tree %s: %w", l.DiffID, err)
	}
	var rec layer.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Tree{}, false, fmt.Errorf("tree %s: record %s: %w", l.DiffID, dir+".json", err)
	}
	touch(dir + ".json")
	return Tree{Dir: dir, Record: rec, Cached: true}, true, nil
}

// makeTree unpacks l into tmp/ and publishes it; the caller holds l's lock.
// A cached blob that fails verification is removed and fetched again.
func (c *Cache) makeTree(ctx context.Context, l Layer, open Opener) (Tree, error) {
	tmp, err := os.MkdirTemp(c.path("tmp"), "tree-"+l.DiffID.Encoded()[:12]+"-")
	if err != nil {
		return Tree{}, err
	}
	defer removeAll(tmp)

	dir := tmp + "/tree"
	var rec layer.Record
	unpack := func(tar io.Reader) (err error) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		rec, err = layer.Unpack(ctx, tar, dir)
		return err
	}
	blob := c.blobPath(l.Digest)
	if f, err := os.Open(blob); err == nil {
		err = Stream(ctx, l, f, nil, unpack)
		f.Close()
		if err == nil {
			touch(blob)
		} else if ctx.Err() != nil {
			return Tree{}, err
		} else {
			// Whatever went wrong, the next try starts from the registry.
			os.Remove(blob)
			if err := removeAll(dir); err != nil {
				return Tree{}, err
			}
			err = c.fetch(ctx, l, open, unpack)
		}
		if err != nil {
			return Tree{}, err
		}
	} else if err := c.fetch(ctx, l, open, unpack); err != nil {
		return Tree{}, err
	}

	// Publish: the record first, then the tree, whose existence means complete.
	b, err := json.Marshal(rec)
	if err != nil {
		return Tree{}, err
	}
	final := c.treePath(l.DiffID)
	if err := c.writeFile(final+".json", b); err != nil {
		return Tree{}, fmt.Errorf("tree %s: %w", l.DiffID, err)
	}
	if err := syncfs(dir); err != nil {
		return Tree{}, fmt.Errorf("tree %s: sync: %w", l.DiffID, err)
	}
	if err := os.Rename(dir, final); err != nil {
		return Tree{}, fmt.Errorf("tree %s: %w", l.DiffID, err)
	}
	return Tree{Dir: final, Record: rec}, nil
}

// fetch streams l from open into use and keeps the blob, once verified.
func (c *Cache) fetch(ctx context.Context, l Layer, open Opener, use func(io.Reader) error) error {
	rc, err := open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(c.path("tmp"), "blob-"+l.Digest.Encoded()[:12]+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	defer f.Close()
	if err := Stream(ctx, l, rc, f, use); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blob %s: %w", l.Digest, err)
	}
	if err := os.Rename(f.Name(), c.blobPath(l.Digest)); err != nil {
		return fmt.Errorf("blob %s: %w", l.Digest, err)
	}
	return nil
}

func touch(path string) {
	now := time.Now()
	os.Chtimes(path, now, now)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// writeFile writes b to path through a synced file in tmp/ and a rename.
func (c *Cache) writeFile(path string, b []byte) error {
	f, err := os.CreateTemp(c.path("tmp"), "file-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// syncfs flushes the filesystem that holds path: one call for a whole tree
// instead of an fsync per file.
func syncfs(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}
