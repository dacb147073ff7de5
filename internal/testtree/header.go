package testtree

import (
	"archive/tar"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// HeaderOf is the PAX tar header of the file p, named name: type, mode, owner, mtime to the
// nanosecond, size, link target, device numbers and xattrs (but those whose names start with
// one of skipXattrs). Hardlinks are the caller's: a regular file is TypeReg. ok is false for
// what a tar cannot hold (a socket).
func HeaderOf(t testing.TB, p, name string, skipXattrs ...string) (h tar.Header, ok bool) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	h = tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFDIR:
		h.Typeflag = tar.TypeDir
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatal(err)
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return h, false
	}
	xattrs, err := readXattrs(p, skipXattrs)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	for k, v := range xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = v
	}
	return h, true
}
