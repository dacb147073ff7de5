package assemble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirFlags opens a directory for reading without following a symlink in its last component.
const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// dirent is one directory entry as getdents(2) returns it: the type may be DT_UNKNOWN.
type dirent struct {
	name string
	typ  uint8
}

// openDir opens the directory name in dirfd, refusing a symlink (ELOOP) or non-directory (ENOTDIR).
func openDir(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, dirFlags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openPath opens the directory at parts below root one component at a time, so that no symlink is
// ever followed. The caller closes the descriptor.
func openPath(root int, parts []string) (int, error) {
	fd, err := openDir(root, ".")
	if err != nil {
		return -1, err
	}
	for _, p := range parts {
		next, err := openDir(fd, p)
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

// readDir reads all entries of the directory fd (without "." and ".."), using buf for getdents.
func readDir(fd int, buf []byte) ([]dirent, error) {
	var ents []dirent
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return ents, nil
		}
		// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
		for off := 0; off+19 <= n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen == 0 || off+reclen > n {
				break
			}
			typ := buf[off+18]
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			off += reclen
			if len(name) == 0 || (name[0] == '.' && (len(name) == 1 || len(name) == 2 && name[1] == '.')) {
				continue
			}
			ents = append(ents, dirent{name: string(name), typ: typ})
		}
	}
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

// procPath names the entry name of the directory fd through /proc, for the few calls that have no
// *at form (xattrs of symlinks and devices). The last component is still not followed by l* calls.
func procPath(fd int, name string) string {
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	if name != "" {
		p += "/" + name
	}
	return p
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
