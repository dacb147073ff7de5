package roots

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/internal/disk"
	"github.com/rootsdev/roots/internal/mountinfo"
)

// CheckDest refuses, before anything changes, a destination that a pull must never replace or
// fill: "/", ".", "..", an empty name, the current directory or one of its parents, the cache
// (cache; "" for none), a directory inside the cache or one holding it (errors wrapping
// ErrInvalidDest), and a directory below which something is mounted (a chroot's /dev bound to
// the host's, a tmpfs): replacing it would delete what the mount holds. A roots overlay mounted
// at dest itself is fine: a forced pull ends it. It returns dest as an absolute path with its
// parent's symlinks resolved. Pull calls it.
func CheckDest(dest, cache string) (string, error) {
	q := assemble.Quote(dest)
	if dest == "" {
		return "", kindErrorf(ErrInvalidDest, `DEST is "": name the directory to create`)
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return "", err
	}
	if abs == "/" {
		return "", kindErrorf(ErrInvalidDest, "DEST %s is the root directory: name a new directory", q)
	}
	canon, err := assemble.Canonical(abs)
	if err != nil {
		return "", err
	}
	if cwd, err := os.Getwd(); err == nil {
		if cwd, err = filepath.EvalSymlinks(cwd); err == nil && within(cwd, canon) {
			return "", kindErrorf(ErrInvalidDest, "DEST %s is the current directory or one of its parents: name a new directory", q)
		}
	}
	if cache != "" {
		if c, err := filepath.EvalSymlinks(cache); err == nil {
			cache = c
		} else if c, err := filepath.Abs(cache); err == nil {
			cache = c
		}
		switch {
		case cache == canon:
			return "", kindErrorf(ErrInvalidDest, "DEST %s is the cache: name a directory outside it", q)
		case within(cache, canon):
			return "", kindErrorf(ErrInvalidDest, "DEST %s holds the cache %s: name a directory outside it", q, assemble.Quote(cache))
		case within(canon, cache):
			return "", kindErrorf(ErrInvalidDest, "DEST %s is inside the cache %s: name a directory outside it", q, assemble.Quote(cache))
		}
	}
	if _, err := os.Lstat(canon); errors.Is(err, fs.ErrNotExist) {
		return canon, nil
	}
	mounts, err := mountinfo.Below(canon)
	if err != nil {
		return "", err
	}
	for _, m := range mounts {
		if m == canon {
			if ours, err := disk.OverlayMounted(canon); err == nil && ours {
				continue
			}
			return "", fmt.Errorf("DEST %s is a mount point: roots replaces no mount (unmount it, or pull elsewhere)", q)
		}
		return "", fmt.Errorf("DEST %s has %s mounted below it: unmount it first (roots umount ends a roots overlay), or pull elsewhere", q, assemble.Quote(m))
	}
	return canon, nil
}

// within reports whether path is dir or below it (both absolute and clean).
func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}
