package disk

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// IsWhiteout reports whether st is an overlay whiteout: a 0/0 character device, the form a tree
// made as root holds its whiteouts in, and what overlayfs takes for one.
func IsWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// OverlayMounted reports whether path is the root of an overlay mount (not a directory inside
// one: its parent is on another device). A missing path is not one.
func OverlayMounted(path string) (bool, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return false, nil
		}
		return false, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	if fs.Type != unix.OVERLAYFS_SUPER_MAGIC {
		return false, nil
	}
	var st, pst unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := unix.Stat(filepath.Dir(path), &pst); err != nil {
		return false, &os.PathError{Op: "stat", Path: filepath.Dir(path), Err: err}
	}
	return st.Dev != pst.Dev, nil
}
