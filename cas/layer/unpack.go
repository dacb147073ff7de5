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
	return UnpackObserved(ctx, r, dir, nil)
}

// An Observer is told of the changes Unpack makes to a tree, in order, on Unpack's goroutine, as
// they are made: a caller can follow the tree as it grows (assemble links the first layer of a
// destination while it unpacks). A non-directory is told once it is complete, with its final
// metadata; directories are not told (their metadata is set at the end of Unpack). The
// layer's markers (whiteout devices, opaque attributes) and AUFS metadata are not told: the
// Record says what they are. An Observer cannot fail the unpack.
type Observer interface {
	// Wrote: the non-directory name in the tree's directory dirfd, at rel in the tree (its
	// parents resolved), was written. dirfd is valid during the call only.
	Wrote(dirfd int, name, rel string)
	// Removed: what was at rel in the tree (with everything below it when dir) was removed.
	Removed(rel string, dir bool)
	// Reset: the tree was thrown away, to be unpacked again from the start.
	Reset()
}

// UnpackObserved is Unpack telling obs (nil: nobody) of every change it makes to the tree.
func UnpackObserved(ctx context.Context, r io.Reader, dir string, obs Observer) (Record, error) {
	w, err := newWriter(dir, true)
	if err != nil {
		return Record{}, fmt.Errorf("unpack: %w", err)
	}
	w.obs = obs
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
