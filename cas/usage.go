package cas

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/internal/disk"
)

// Usage is the disk the cache holds (allocated blocks, as du counts them), with every inode
// counted once however many names it has: a hardlinked file of a tree once, and a fix-up's
// links to trees' files not at all beyond the trees.
type Usage struct {
	Blobs map[digest.Digest]int64 // each blob
	Trees map[digest.Digest]int64 // each unpacked layer, its directories included
	Total int64                   // blobs, trees, fix-ups, records and everything else under the root
}

// Usage measures the disk the cache holds: one statx per entry of every tree, fix-up and
// record, each inode counted once (the trees first, so that each tree counts its own files).
func (c *Cache) Usage(ctx context.Context) (*Usage, error) {
	u := &Usage{Blobs: map[digest.Digest]int64{}, Trees: map[digest.Digest]int64{}}
	blobs, err := os.ReadDir(c.path("blobs", "sha256"))
	if err != nil {
		return nil, err
	}
	for _, e := range blobs {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		var st unix.Stat_t
		if d.Validate() == nil && unix.Lstat(c.blobPath(d), &st) == nil {
			u.Blobs[d] = st.Blocks * 512
		}
	}
	var root unix.Stat_t
	if err := unix.Stat(c.root, &root); err != nil {
		return nil, err
	}
	w := &duWalk{dev: root.Dev, seen: map[[2]uint64]bool{}, buf: make([]byte, disk.BufSize)}
	trees, err := os.ReadDir(c.path("trees", "sha256"))
	if err != nil {
		return nil, err
	}
	walked := map[string]bool{}
	for _, e := range trees {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if !e.IsDir() || d.Validate() != nil {
			continue
		}
		before := w.total
		if err := w.walk(ctx, c.treePath(d), nil); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err // (one purged meanwhile is no error)
		}
		u.Trees[d] = w.total - before
		walked[c.treePath(d)] = true
	}
	// Then everything else: blobs, fix-ups (their links to the trees' files counted already),
	// records, tmp/.
	if err := w.walk(ctx, filepath.Clean(c.root), walked); err != nil {
		return nil, err
	}
	u.Total = w.total
	return u, nil
}

// walk adds the directory dir and what it holds to the total, leaving out the paths in skip.
func (w *duWalk) walk(ctx context.Context, dir string, skip map[string]bool) error {
	fd, err := unix.Open(dir, disk.DirFlags, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	w.total += st.Blocks * 512
	return w.dir(ctx, fd, dir, skip)
}

type duWalk struct {
	dev   uint64
	seen  map[[2]uint64]bool // inodes of several names already counted
	buf   []byte
	total int64
}

// dir adds what the directory fd (at path) holds, but the paths in skip and what is on another
// mount (an overlay left mounted inside).
func (w *duWalk) dir(ctx context.Context, fd int, path string, skip map[string]bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := disk.ReadDir(fd, w.buf)
	if err != nil {
		return &fs.PathError{Op: "read", Path: path, Err: err}
	}
	for _, e := range ents {
		child := filepath.Join(path, e.Name)
		if skip[child] {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, e.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue // removed meanwhile (tmp/)
			}
			return &fs.PathError{Op: "stat", Path: child, Err: err}
		}
		if st.Dev != w.dev {
			continue // a mount below: not the cache's disk
		}
		if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			id := [2]uint64{st.Dev, st.Ino}
			if w.seen[id] {
				continue
			}
			w.seen[id] = true
		}
		w.total += st.Blocks * 512
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		cfd, err := disk.OpenDir(fd, e.Name)
		if err != nil {
			if err == unix.ENOENT {
				continue
			}
			return &fs.PathError{Op: "open", Path: child, Err: err}
		}
		err = w.dir(ctx, cfd, child, skip)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}
