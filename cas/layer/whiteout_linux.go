package layer

import (
	"github.com/rootsdev/roots/internal/disk"
	"golang.org/x/sys/unix"
)

// whiteout handles ".wh.NAME": rel (the path NAME names) is deleted from the layers below.
// Its parent is resolved and walked like any entry's, so that both uses make the same parents
// (lib/.wh.x over lib -> usr/lib deletes usr/lib/x). A whiteout below a symlink or file that this
// layer made is moot: the layer's entry stays.
//
// A whiteout applies to the lower layers only (layer.md: "Whiteout files MUST only apply to
// resources in lower/parent layers"), so what this layer itself already has at rel stays: a
// non-directory (an entry or a Link) hides the lower path anyway and the whiteout is moot; a
// directory (an entry or a parent of entries) keeps this layer's contents and hides the lower
// ones, which is what an opaque marker does (see opaqueDir).
//
// Otherwise, tree: recorded, and as root also written as a 0/0 character device (overlayfs
// form). Applier: rel is removed from the rootfs, whatever it is (file, subtree, symlink —
// dangling or not); nothing there is no error.
func (w *writer) whiteout(rel string) error {
	dir, name := split(rel)
	dir, err := w.resolve(dir, true)
	if err == errMoot {
		return nil
	}
	if err != nil {
		return err
	}
	rel = join(dir, name)
	dirfd, owned, err := w.walk.dir(dir)
	if err != nil {
		return err
	}
	if owned {
		defer unix.Close(dirfd)
	}
	has, isDir, err := w.layerHas(dirfd, rel, name)
	switch {
	case err != nil:
		return err
	case has && isDir:
		return w.opaqueDir(rel)
	case has:
		return nil
	case !w.tree:
		return w.remove(dirfd, rel, name)
	}
	if w.isRoot {
		err = unix.Mknodat(dirfd, name, unix.S_IFCHR, 0)
		if err == unix.EEXIST {
			if err = w.remove(dirfd, rel, name); err == nil {
				err = unix.Mknodat(dirfd, name, unix.S_IFCHR, 0)
			}
		}
	} else {
		err = w.remove(dirfd, rel, name)
	}
	if err != nil {
		return err
	}
	w.dirs.cut(rel)
	n := w.dirs.ensure(rel)
	n.whiteout, n.hidden = true, true
	return nil
}

// layerHas reports whether the layer being written already has something of its own at rel
// (name in dirfd), and whether that is a directory. Applier: a path the layer wrote or walked
// through that is still there. Tree: anything in the tree but the layer's own whiteout device,
// or the name of a Link (which the tree does not hold).
func (w *writer) layerHas(dirfd int, rel, name string) (has, isDir bool, err error) {
	if !w.tree {
		if _, ok := w.written.get(rel); !ok {
			return false, false, nil
		}
	}
	n := w.dirs.get(rel)
	var st unix.Stat_t
	switch err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err {
	case nil:
	case unix.ENOENT:
		return w.tree && n != nil && n.link, false, nil
	default:
		return false, false, err
	}
	if w.tree && n != nil && n.whiteout && disk.IsWhiteout(&st) {
		return false, false, nil
	}
	return true, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// opaqueDir handles ".wh..wh..opq" in rel: the directory's contents in the layers below are
// hidden; this layer's own entries in it stay, whatever their order in the tar.
//
// Tree: recorded, and as root written as trusted.overlay.opaque="y". Applier: at the end of the
// layer, everything below rel that the layer did not write is removed (see endLayer).
func (w *writer) opaqueDir(rel string) error {
	rel, err := w.resolve(rel, true)
	if err == errMoot {
		return nil
	}
	if err != nil {
		return err
	}
	fd, owned, err := w.walk.dir(rel)
	if err != nil {
		return err
	}
	if owned {
		defer unix.Close(fd)
	}
	if !w.tree {
		w.opaque = append(w.opaque, rel)
		return nil
	}
	n := w.dirs.ensure(rel)
	if n.opaque {
		return nil
	}
	n.opaque = true
	return w.markOpaque(fd)
}
