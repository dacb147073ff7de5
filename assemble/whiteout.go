package assemble

import (
	"fmt"
	"github.com/rootsdev/roots/internal/disk"

	"golang.org/x/sys/unix"
)

// whiteout removes p (and everything below it) from the destination, its parent resolved inside
// the destination (lib/x over lib -> usr/lib removes usr/lib/x). A missing path, or one behind a
// non-directory, is already gone: nothing is done.
func (a *assembler) whiteout(p string) error {
	if p == a.held {
		return nil // the private directory of held links: no image path
	}
	dir, name := splitLast(p)
	dfd, real, n, err := a.resolveDir(dir, false, false)
	if absent(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("whiteout %s: %w", p, err)
	}
	defer unix.Close(dfd)
	if real == "." && name == a.held {
		return nil
	}
	if err := a.clear(dfd, name, n); err != nil {
		return pathErr("whiteout", p, err)
	}
	return nil
}

// opaque empties the destination directory p (resolved inside the destination), which this
// layer makes opaque; the directory itself stays, with its metadata. A missing path or a
// non-directory is left alone: the layer's own entries replace it. The private directory of held
// links (at the root) stays.
func (a *assembler) opaque(p string) error {
	fd, real, n, err := a.resolveDir(p, false, false)
	if absent(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opaque %s: %w", p, err)
	}
	defer unix.Close(fd)
	n.children = nil
	keep := ""
	if real == "." {
		keep = a.held
	}
	if err := disk.RemoveContents(fd, a.buf, keep); err != nil {
		return pathErr("opaque", p, err)
	}
	return nil
}
