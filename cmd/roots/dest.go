package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/assemble/mountinfo"
)

// checkDest refuses, before anything changes, a DEST that a pull must never replace or fill:
// "/", ".", "..", an empty name, the current directory or one of its parents, the cache, a
// directory inside the cache or one holding it (usage errors), and a directory below which
// something is mounted (a chroot's /dev bound to the host's, a tmpfs): replacing it would
// delete what the mount holds. A roots overlay mounted at DEST itself is fine: --force ends it.
// It returns DEST as an absolute path with its parent's symlinks resolved.
func checkDest(arg, cacheDir string) (string, error) {
	if arg == "" {
		return "", usagef(`DEST is "": name the directory to create`)
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return "", err
	}
	if abs == "/" {
		return "", usagef("DEST %s is the root directory: name a new directory", quote(arg))
	}
	dest, err := canonical(abs)
	if err != nil {
		return "", err
	}
	if cwd, err := os.Getwd(); err == nil {
		if cwd, err = filepath.EvalSymlinks(cwd); err == nil && within(cwd, dest) {
			return "", usagef("DEST %s is the current directory or one of its parents: name a new directory", quote(arg))
		}
	}
	if cacheDir != "" {
		cache := cacheDir
		if c, err := filepath.EvalSymlinks(cacheDir); err == nil {
			cache = c
		}
		switch {
		case cache == dest:
			return "", usagef("DEST %s is the cache: name a directory outside it", quote(arg))
		case within(cache, dest):
			return "", usagef("DEST %s holds the cache %s: name a directory outside it", quote(arg), quote(cache))
		case within(dest, cache):
			return "", usagef("DEST %s is inside the cache %s: name a directory outside it", quote(arg), quote(cache))
		}
	}
	if _, err := os.Lstat(dest); errors.Is(err, fs.ErrNotExist) {
		return dest, nil
	}
	mounts, err := mountinfo.Below(dest)
	if err != nil {
		return "", err
	}
	for _, m := range mounts {
		if m == dest {
			if ours, err := assemble.OverlayMounted(dest); err == nil && ours {
				continue
			}
			return "", fmt.Errorf("DEST %s is a mount point: roots replaces no mount (unmount it, or pull elsewhere)", quote(arg))
		}
		return "", fmt.Errorf("DEST %s has %s mounted below it: unmount it first (roots umount ends a roots overlay), or pull elsewhere", quote(arg), quote(m))
	}
	return dest, nil
}

// within reports whether path is dir or below it (both absolute and clean).
func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

// quote is assemble.Quote: paths in messages stay one readable line.
func quote(p string) string { return assemble.Quote(p) }
