package cas

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rootsdev/roots/lock"
)

// Purge empties the cache at root: it waits for every command using the cache
// to finish (it takes the cache lock exclusively), then removes all blobs, trees
// and image records. It returns the bytes freed. Each part is first renamed into
// tmp/ so that a crash mid-purge never leaves a half-deleted object at its
// final path.
func Purge(ctx context.Context, root string) (int64, error) {
	if _, err := os.Stat(root); os.IsNotExist(err) {
		return 0, nil
	}
	if err := makeLayout(root); err != nil {
		return 0, err
	}
	l, err := lock.NewSet().Exclusive(ctx, filepath.Join(root, "roots.lock"))
	if err != nil {
		return 0, err
	}
	defer l.Release()

	tmp := filepath.Join(root, "tmp")
	var freed int64
	for _, d := range []string{"blobs", "trees", "images"} {
		doomed, err := os.MkdirTemp(tmp, "purge-")
		if err != nil {
			return freed, err
		}
		if err := os.Rename(filepath.Join(root, d), filepath.Join(doomed, d)); err != nil {
			return freed, fmt.Errorf("purge %s: %w", root, err)
		}
		freed += du(doomed)
	}
	if err := cleanTmp(tmp); err != nil {
		return freed, fmt.Errorf("purge %s: %w", root, err)
	}
	return freed, makeLayout(root)
}

// du adds up the sizes of the regular files under dir; a file with several
// links counts once.
func du(dir string) int64 {
	var n int64
	seen := map[uint64]bool{}
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if ino, ok := inode(fi); ok {
				if seen[ino] {
					return nil
				}
				seen[ino] = true
			}
			n += fi.Size()
		}
		return nil
	})
	return n
}
