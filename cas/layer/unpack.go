//go:build linux

package layer

import (
	"context"
	"fmt"
	"io"
)

// Unpack writes the uncompressed tar stream r into dir, an existing empty directory, as a tree:
// the layer's own entries with their real metadata (owner, mode with setuid/setgid/sticky,
// mtime, xattrs, device numbers, symlinks, hardlinks within the layer). Directory metadata is
// applied after all their children; a directory entry for the root ("./") gives dir its
// metadata, and "." is then not in Record.Implicit.
//
// Whiteouts and opaque markers are recorded in the Record and, when running as root, also
// written in overlayfs form (whiteout: a 0/0 character device at NAME; opaque: xattr
// trusted.overlay.opaque="y" on the directory), so that the tree is a valid overlay lowerdir.
// A whiteout of a path the layer itself has is no Whiteout (see Record). Hardlinks to files of
// lower layers, parents that exist only as parents, and (without root) owners, devices and
// xattrs that could not be applied go to the Record too.
//
// Unpack reads r to EOF, including the bytes after the tar end-of-archive marker, so that a
// caller hashing r gets the full diff id. On error dir holds a partial tree: remove it.
func Unpack(ctx context.Context, r io.Reader, dir string) (Record, error) {
	w, err := newWriter(dir, true)
	if err != nil {
		return Record{}, fmt.Errorf("unpack: %w", err)
	}
	defer w.close()
	if err := w.layer(ctx, r); err != nil {
		return Record{}, fmt.Errorf("unpack: %w", err)
	}
	if err := w.applyDirs(); err != nil {
		return Record{}, fmt.Errorf("unpack: directory metadata: %w", err)
	}
	rec := w.rec
	rec.Links = w.liveLinks()
	rec.Whiteouts = w.dirs.collect(func(n *node) bool { return n.whiteout })
	rec.Opaque = w.dirs.collect(func(n *node) bool { return n.opaque })
	rec.Implicit = w.dirs.collect(func(n *node) bool { return n.implicit })
	return rec, nil
}
