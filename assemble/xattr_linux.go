package assemble

import (
	"bytes"
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// xattr is one extended attribute.
type xattr struct {
	name  string
	value []byte
}

// xattrIO reads and writes the extended attributes of one file, through a descriptor or a path.
type xattrIO struct {
	list func(dest []byte) (int, error)
	get  func(name string, dest []byte) (int, error)
}

// fdXattrs reads the xattrs of an open file.
func fdXattrs(fd int) ([]xattr, error) {
	return readXattrs(xattrIO{
		list: func(d []byte) (int, error) { return unix.Flistxattr(fd, d) },
		get:  func(n string, d []byte) (int, error) { return unix.Fgetxattr(fd, n, d) },
	})
}

// linkXattrs reads the xattrs of path without following a symlink in its last component.
func linkXattrs(path string) ([]xattr, error) {
	return readXattrs(xattrIO{
		list: func(d []byte) (int, error) { return unix.Llistxattr(path, d) },
		get:  func(n string, d []byte) (int, error) { return unix.Lgetxattr(path, n, d) },
	})
}

// skipXattr reports whether an attribute is overlayfs bookkeeping (the opaque marker of a tree,
// for one), which must not leak into an assembled root where it would change an overlay's view.
func skipXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// readXattrs lists and reads all attributes, retrying when one grows between the size probe and the read.
func readXattrs(io xattrIO) ([]xattr, error) {
	names, err := sized(func(d []byte) (int, error) { return io.list(d) })
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil || len(names) == 0 {
		return nil, err
	}
	var xs []xattr
	for _, n := range bytes.Split(bytes.TrimRight(names, "\x00"), []byte{0}) {
		name := string(n)
		if name == "" || skipXattr(name) {
			continue
		}
		v, err := sized(func(d []byte) (int, error) { return io.get(name, d) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, pathErr("getxattr", name, err)
		}
		xs = append(xs, xattr{name: name, value: v})
	}
	return xs, nil
}

// sized calls a list/get style function twice: once for the size, once for the bytes.
func sized(call func(dest []byte) (int, error)) ([]byte, error) {
	for {
		n, err := call(nil)
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = call(buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// setXattrs writes xs with set. Without root, attributes the kernel refuses (trusted.*, some
// security.*) are left out, as are owners: an unprivileged assembly cannot keep them.
func (a *assembler) setXattrs(xs []xattr, set func(name string, value []byte) error) error {
	for _, x := range xs {
		if err := set(x.name, x.value); err != nil && !a.unprivileged(err) {
			return pathErr("setxattr", x.name, err)
		}
	}
	return nil
}
