package layer

import (
	"archive/tar"
	"context"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"slices"

	"golang.org/x/sys/unix"
)

// file writes a regular file: created exclusively and without following a symlink; what was
// at the path (a file, a symlink, a directory and its subtree) is removed first.
func (w *writer) file(ctx context.Context, dirfd int, rel, name string, tr *tar.Reader, hdr *tar.Header, m *metadata) error {
	return w.create(dirfd, rel, name, m, func(fd int) error { return w.content(ctx, fd, tr, hdr) })
}

// create makes the regular file name in dirfd (at rel), its data written by content, as file says.
func (w *writer) create(dirfd int, rel, name string, m *metadata, content func(fd int) error) error {
	const flags = unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_WRONLY | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags, m.perm&0o777)
	if err == unix.EEXIST {
		if err = w.remove(dirfd, rel, name); err == nil {
			fd, err = unix.Openat(dirfd, name, flags, m.perm&0o777)
		}
	}
	if err != nil {
		return err
	}
	err = content(fd)
	if err == nil {
		err = w.dropInheritedACL(object{fd: fd})
	}
	if err == nil {
		err = w.setMeta(object{fd: fd, rel: rel}, m, !w.createdExact(m.perm))
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	w.wroteNonDir(dirfd, name, rel)
	return nil
}

// symlink writes a symlink. Its target is data: it is never resolved here.
func (w *writer) symlink(dirfd int, rel, name, target string, m *metadata) error {
	err := unix.Symlinkat(target, dirfd, name)
	if err == unix.EEXIST {
		if err = w.remove(dirfd, rel, name); err == nil {
			err = unix.Symlinkat(target, dirfd, name)
		}
	}
	if err != nil {
		return err
	}
	if err := w.setMeta(object{fd: -1, dirfd: dirfd, name: name, rel: rel, kind: "symlink"}, m, false); err != nil {
		return err
	}
	w.wroteNonDir(dirfd, name, rel)
	return nil
}

// mknod writes a character or block device or a FIFO.
func (w *writer) mknod(dirfd int, rel, name string, hdr *tar.Header, m *metadata) error {
	major, minor, err := device(hdr)
	if err != nil {
		return err
	}
	mode, kind := m.perm&0o777, "fifo"
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode, kind = mode|unix.S_IFCHR, "char device"
	case tar.TypeBlock:
		mode, kind = mode|unix.S_IFBLK, "block device"
	default:
		mode |= unix.S_IFIFO
	}
	dev := int(unix.Mkdev(major, minor))
	err = unix.Mknodat(dirfd, name, mode, dev)
	if err == unix.EEXIST {
		if err = w.remove(dirfd, rel, name); err == nil {
			err = unix.Mknodat(dirfd, name, mode, dev)
		}
	}
	if err == unix.EPERM && mode&unix.S_IFMT != unix.S_IFIFO {
		w.unapplied(rel, deviceWhat(hdr)) // root without CAP_MKNOD (a user namespace)
		return nil
	}
	if err == nil {
		err = w.dropInheritedACL(object{fd: -1, dirfd: dirfd, name: name})
	}
	if err != nil {
		return err
	}
	if err := w.setMeta(object{fd: -1, dirfd: dirfd, name: name, rel: rel, kind: kind}, m, !w.createdExact(m.perm)); err != nil {
		return err
	}
	w.wroteNonDir(dirfd, name, rel)
	return nil
}

// mkdir writes a directory. An existing directory is kept with its children; anything else at
// the path is replaced. The metadata is applied at the end, after the children.
func (w *writer) mkdir(dirfd int, rel, name string, m *metadata) error {
	created := true
	err := unix.Mkdirat(dirfd, name, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			created = false
		} else if err = w.remove(dirfd, rel, name); err == nil {
			err = unix.Mkdirat(dirfd, name, 0o700)
		}
	}
	if err == nil && created {
		err = w.dropInheritedDirACL(dirfd, name)
	}
	if err != nil {
		return err
	}
	w.made(rel)
	n := w.dirs.ensure(rel)
	n.meta, n.implicit, n.bare, n.whiteout, n.link = m, false, false, false, false
	if created && w.tree && n.hidden {
		fd, err := unix.Openat(dirfd, name, dirFlags, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return w.newDir(n, fd)
	}
	return nil
}

// hardlink links rel to target, resolved from the root of the target directory like any entry
// name. A target written earlier by this layer is linked; in a tree, a target the layer does
// not have is recorded in Record.Links for assembly; an Applier links the rootfs's file.
func (w *writer) hardlink(dirfd int, rel, name, linkname string) error {
	target := confine(linkname)
	if afd, aname, ok, err := w.aufsTarget(target); ok {
		if err != nil {
			return err
		}
		defer unix.Close(afd)
		err = unix.Linkat(afd, aname, dirfd, name, 0)
		if err == unix.EEXIST {
			if err = w.remove(dirfd, rel, name); err == nil {
				err = unix.Linkat(afd, aname, dirfd, name, 0)
			}
		}
		if err == unix.ENOENT {
			return fmt.Errorf("%s: %w", display(target), ErrLinkTargetMissing)
		}
		if err == nil {
			w.wroteNonDir(dirfd, name, rel)
		}
		return err
	}
	switch {
	case target == "":
		return fmt.Errorf("to the root directory: %w", ErrInvalidLink)
	case target == rel:
		return fmt.Errorf("to itself: %w", ErrInvalidLink)
	}
	if err := checkPath(target); err != nil {
		return err
	}
	if kind, _, _ := classify(target); kind != notMarker {
		return fmt.Errorf("to whiteout marker %s: %w", display(target), ErrInvalidLink)
	}
	tdir, tname := split(target)
	tfd, owned, err := w.look.dir(tdir)
	if err == unix.ELOOP || err == unix.ENOTDIR {
		// A symlink on the way is followed inside the root, as for an entry's parent.
		resolved, rerr := w.resolve(tdir, false)
		if rerr != nil {
			return rerr
		}
		if resolved != tdir {
			tdir, target = resolved, join(resolved, tname)
			tfd, owned, err = w.look.dir(tdir)
			if target == rel {
				if err == nil && owned {
					unix.Close(tfd)
				}
				return fmt.Errorf("to itself: %w", ErrInvalidLink)
			}
		}
	}
	if w.tree && w.isWhiteoutDevice(target) {
		if err == nil && owned {
			unix.Close(tfd)
		}
		return fmt.Errorf("%s (deleted by this layer): %w", display(target), ErrLinkTargetMissing)
	}
	walkErr := err
	if err == nil {
		err = unix.Linkat(tfd, tname, dirfd, name, 0)
		if err == unix.EEXIST {
			if err = w.remove(dirfd, rel, name); err == nil {
				err = unix.Linkat(tfd, tname, dirfd, name, 0)
			}
		}
		if err == unix.EPERM {
			var st unix.Stat_t
			if unix.Fstatat(tfd, tname, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				err = fmt.Errorf("to directory %s: %w", display(target), ErrInvalidLink)
			}
		}
		if owned {
			unix.Close(tfd)
		}
	}
	switch err {
	case nil:
		w.wroteNonDir(dirfd, name, rel)
		return nil
	case unix.ENOENT, unix.ENOTDIR, unix.ELOOP:
	default:
		return err
	}
	// The target is not there. In a tree it may be in a lower layer — unless this layer has a
	// non-directory on its path, or has deleted or replaced it or a parent. A target that is the
	// name of one of this layer's Links is that Link's lower file.
	switch {
	case !w.tree || walkErr == unix.ENOTDIR || walkErr == unix.ELOOP:
		return fmt.Errorf("%s: %w", display(target), ErrLinkTargetMissing)
	case w.isLink(target):
		target = w.linkTarget(target)
	case w.dirs.anyHidden(target):
		return fmt.Errorf("%s: %w", display(target), ErrLinkTargetMissing)
	}
	if err := w.remove(dirfd, rel, name); err != nil {
		return err
	}
	// The tree holds nothing at rel: the node says that the path is the layer's (a later
	// whiteout of it is moot) and that the lower contents there are hidden.
	*w.dirs.ensure(rel) = node{hidden: true, link: true}
	w.rec.Links = append(w.rec.Links, Link{Name: rel, Target: target})
	return nil
}

// isLink reports whether rel is the name of one of the layer's Links (which a tree does not hold).
func (w *writer) isLink(rel string) bool {
	n := w.dirs.get(rel)
	return n != nil && n.link
}

// linkTarget returns the Target of the layer's last Link named rel.
func (w *writer) linkTarget(rel string) string {
	for i := len(w.rec.Links) - 1; i >= 0; i-- {
		if w.rec.Links[i].Name == rel {
			return w.rec.Links[i].Target
		}
	}
	return rel
}

// liveLinks returns the Links that the layer's later entries did not replace (a file or a
// directory at the Name, or a non-directory in place of a parent), the last of each Name, in
// archive order: at each Name the tree holds nothing and the Link is the layer's last word.
func (w *writer) liveLinks() []Link {
	var live []Link
	seen := make(map[string]bool, len(w.rec.Links))
	for i := len(w.rec.Links) - 1; i >= 0; i-- {
		l := w.rec.Links[i]
		if !seen[l.Name] && w.isLink(l.Name) {
			live = append(live, l)
		}
		seen[l.Name] = true
	}
	slices.Reverse(live)
	return live
}

// isWhiteoutDevice reports whether a tree holds this layer's whiteout device at rel.
func (w *writer) isWhiteoutDevice(rel string) bool {
	n := w.dirs.get(rel)
	if n == nil || !n.whiteout || !w.isRoot {
		return false
	}
	dir, name := split(rel)
	fd, owned, err := w.look.dir(dir)
	if err != nil {
		return false
	}
	if owned {
		defer unix.Close(fd)
	}
	var st unix.Stat_t
	return unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && disk.IsWhiteout(&st)
}
