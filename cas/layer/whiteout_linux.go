package layer

import (
	"golang.org/x/sys/unix"
)

// whiteout handles ".wh.NAME": rel (the path NAME names) is deleted from the layers below.
// Its parent is walked like any entry's, so that both uses make the same parents.
//
// Tree: recorded, and as root also written as a 0/0 character device (overlayfs form); what
// this layer itself wrote at rel is removed. Applier: rel is removed from the rootfs, whatever it
// is (file, subtree, symlink — dangling or not); nothing there is no error.
func (w *writer) whiteout(rel string) error {
	dir, name := split(rel)
	dirfd, owned, err := w.walk.dir(dir)
	if err != nil {
		return err
	}
	if owned {
		defer unix.Close(dirfd)
	}
	if !w.tree {
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

// opaqueDir handles ".wh..wh..opq" in rel: the directory's contents in the layers below are
// hidden; this layer's own entries in it stay, whatever their order in the tar.
//
// Tree: recorded, and as root written as trusted.overlay.opaque="y". Applier: at the end of the
// layer, everything below rel that the layer did not write is removed (see endLayer).
func (w *writer) opaqueDir(rel string) error {
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
