package assemble

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// whiteout removes p (and everything below it) from the destination. A missing path, or one that
// is only reachable through a symlink or non-directory, is already gone: nothing is done.
func (a *assembler) whiteout(p string) error {
	parts := splitPath(p)
	dfd, err := openPath(a.root, parts[:len(parts)-1])
	if absent(err) {
		return nil
	}
	if err != nil {
		return pathErr("whiteout", p, err)
	}
	defer unix.Close(dfd)
	if err := a.clear(dfd, parts[len(parts)-1], a.top.lookup(parts[:len(parts)-1])); err != nil {
		return pathErr("whiteout", p, err)
	}
	return nil
}

// opaque empties the destination directory p, which this layer makes opaque. A missing path or a
// non-directory is left alone: the layer's own entries replace it.
func (a *assembler) opaque(p string) error {
	parts := splitPath(p)
	fd, err := openPath(a.root, parts)
	if absent(err) {
		return nil
	}
	if err != nil {
		return pathErr("opaque", p, err)
	}
	defer unix.Close(fd)
	if err := removeContents(fd, a.buf); err != nil {
		return pathErr("opaque", p, err)
	}
	if n := a.top.lookup(parts); n != nil {
		n.children = nil
	}
	return nil
}

// link makes l.Name a hardlink of the destination's l.Target, both reached without following
// symlinks. Whatever is at l.Name is replaced.
func (a *assembler) link(l Link) error {
	if l.Name == l.Target {
		return nil // a file linked to itself is already there
	}
	tparts, nparts := splitPath(l.Target), splitPath(l.Name)
	tdir, err := openPath(a.root, tparts[:len(tparts)-1])
	if absent(err) {
		return fmt.Errorf("link %s to %s: %w", l.Name, l.Target, ErrLinkTarget)
	}
	if err != nil {
		return pathErr("link", l.Name, err)
	}
	defer unix.Close(tdir)
	nparent := nparts[:len(nparts)-1]
	ndir, err := openPath(a.root, nparent)
	if err != nil {
		return fmt.Errorf("link %s to %s: parent directory: %w", l.Name, l.Target, err)
	}
	defer unix.Close(ndir)
	tname, nname := tparts[len(tparts)-1], nparts[len(nparts)-1]
	n := a.top.lookup(nparent)

	err = unix.Linkat(tdir, tname, ndir, nname, 0)
	if errors.Is(err, unix.EEXIST) {
		if err = a.clear(ndir, nname, n); err == nil {
			err = unix.Linkat(tdir, tname, ndir, nname, 0)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EPERM) && isDir(tdir, tname):
		return fmt.Errorf("link %s to %s: %w", l.Name, l.Target, ErrLinkTarget)
	case errors.Is(err, unix.EMLINK), errors.Is(err, unix.EXDEV):
		return a.copyEntry(tdir, tname, ndir, nname, unix.DT_UNKNOWN, dirOf(l.Name), n)
	}
	return fmt.Errorf("link %s to %s: %w", l.Name, l.Target, err)
}

// isDir reports whether name in dirfd is a directory (link(2) refuses those with EPERM).
func isDir(dirfd int, name string) bool {
	typ, err := statType(dirfd, name)
	return err == nil && typ == unix.DT_DIR
}

// dirOf is the parent directory of a checked path ("." at the top).
func dirOf(p string) string {
	dir, _ := splitLast(p)
	return dir
}
