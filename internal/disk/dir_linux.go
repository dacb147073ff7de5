package disk

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"golang.org/x/sys/unix"
)

// DirFlags opens a directory for reading without following a symlink in its last component.
const DirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// Dirent is one directory entry as getdents(2) returns it: Type (DT_*) may be DT_UNKNOWN.
type Dirent struct {
	Name string
	Type uint8
}

// OpenDir opens the directory name in dirfd, refusing a symlink (ELOOP) or non-directory
// (ENOTDIR).
func OpenDir(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, DirFlags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// ReadDir reads all entries of the directory fd (without "." and ".."), using buf for
// getdents; a buffer of 64 KiB reads most directories in one call.
func ReadDir(fd int, buf []byte) ([]Dirent, error) {
	var ents []Dirent
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
			ents = append(ents, Dirent{Name: string(name), Type: typ})
		}
	}
}

// BufSize is the getdents buffer one walk needs.
const BufSize = 64 << 10

// ProcPath names the entry name of the directory fd through /proc, for the few calls that have
// no *at form (xattrs of symlinks and devices, chmod of an O_PATH descriptor). The last
// component is still not followed by l* calls.
func ProcPath(fd int, name string) string {
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	if name != "" {
		p += "/" + name
	}
	return p
}
