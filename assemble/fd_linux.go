package assemble

import (
	"errors"
	"github.com/rootsdev/roots/internal/disk"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openPath opens the directory at parts below root one component at a time, so that no symlink is
// ever followed. The caller closes the descriptor.
func openPath(root int, parts []string) (int, error) {
	fd, err := disk.OpenDir(root, ".")
	if err != nil {
		return -1, err
	}
	for _, p := range parts {
		next, err := disk.OpenDir(fd, p)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// absent reports whether err means that a path is not there as a directory walk would see it:
// missing, or behind a symlink or non-directory.
func absent(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP)
}

// statType returns the DT_ type of name in dirfd, for file systems whose getdents says DT_UNKNOWN.
func statType(dirfd int, name string) (uint8, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return unix.DT_DIR, nil
	case unix.S_IFREG:
		return unix.DT_REG, nil
	case unix.S_IFLNK:
		return unix.DT_LNK, nil
	case unix.S_IFCHR:
		return unix.DT_CHR, nil
	case unix.S_IFBLK:
		return unix.DT_BLK, nil
	case unix.S_IFIFO:
		return unix.DT_FIFO, nil
	case unix.S_IFSOCK:
		return unix.DT_SOCK, nil
	}
	return unix.DT_UNKNOWN, nil
}

// pathErr wraps err with the operation and the relative path it concerns.
func pathErr(op, path string, err error) error {
	return &os.PathError{Op: op, Path: path, Err: err}
}

// futimens sets the access and modification times of the open file fd (utimensat with a NULL
// path, which needs no path and no AT_EMPTY_PATH support).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
