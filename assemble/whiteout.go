package assemble

import (
	"golang.org/x/sys/unix"
)

// whiteout removes p (and everything below it) from the destination. A missing path, or one that
// is only reachable through a symlink or non-directory, is already gone: nothing is done.
func (a *assembler) whiteout(p string) error {
	if p == a.held {
		return nil // the private directory of held links: no image path
	}
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

// opaque empties the destination directory p, which this layer makes opaque; the directory
// itself stays, with its metadata. A missing path or a non-directory is left alone: the layer's
// own entries replace it. The private directory of held links (at the root) stays.
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
	if n := a.top.lookup(parts); n != nil {
		n.children = nil
	}
	keep := ""
	if len(parts) == 0 {
		keep = a.held
	}
	if err := removeContents(fd, a.buf, keep); err != nil {
		return pathErr("opaque", p, err)
	}
	return nil
}
