package layer

import (
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// object is something just written: open (fd), or named in its parent directory (symlinks,
// devices), where every call works on the name itself and never follows it.
type object struct {
	fd    int // -1 when not open
	dirfd int
	name  string
	rel   string // "" for the target directory itself
	kind  string // "symlink", "fifo", "char device", "block device"; "" for a file or directory
}

// setMeta applies an entry's metadata in the order that keeps it: owner first (chown clears
// setuid, setgid and file capabilities), then mode, then xattrs (security.capability included),
// then the times (last, as writing the content changed them). chmod is false when the object
// was created with its final mode already.
func (w *writer) setMeta(o object, m *metadata, chmod bool) error {
	if err := w.chown(o, m.uid, m.gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if chmod {
		var err error
		if o.fd >= 0 {
			err = unix.Fchmod(o.fd, m.perm)
		} else {
			// Only devices and FIFOs just created by mknodat: never a symlink.
			err = unix.Fchmodat(o.dirfd, o.name, m.perm, 0)
		}
		if err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	for _, x := range m.xattrs {
		if err := w.setxattr(o, x); err != nil {
			return fmt.Errorf("xattr %s: %w", x.name, err)
		}
	}
	ts := [2]unix.Timespec{{Sec: m.sec, Nsec: m.nsec}, {Sec: m.sec, Nsec: m.nsec}}
	var err error
	if o.fd >= 0 {
		err = futimens(o.fd, &ts)
	} else {
		err = unix.UtimesNanoAt(o.dirfd, o.name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// chown sets an owner. Without root only one's own ids can be set: any other owner is
// recorded as unapplied, as is an EPERM or EINVAL from a root without those ids (a user namespace).
func (w *writer) chown(o object, uid, gid int) error {
	if w.rootOwns && uid == 0 && gid == 0 && o.rel != "" {
		return nil // created by this writer as 0:0 (the target directory itself was not)
	}
	if !w.isRoot {
		if uid != w.euid || gid != w.egid {
			w.unapplied(o.rel, fmt.Sprintf("owner %d:%d", uid, gid))
		}
		return nil
	}
	var err error
	if o.fd >= 0 {
		err = unix.Fchown(o.fd, uid, gid)
	} else {
		err = unix.Fchownat(o.dirfd, o.name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err == unix.EPERM || err == unix.EINVAL {
		w.unapplied(o.rel, fmt.Sprintf("owner %d:%d", uid, gid))
		return nil
	}
	return err
}

// setxattr sets one extended attribute. One the target refuses for lack of privilege or
// support (trusted.* without root, security.capability in a user namespace, ...) is recorded as
// unapplied. Linux allows user.* attributes on regular files and directories only, even to root:
// one on a symlink, FIFO or device is recorded as "xattr NAME: not supported on a KIND".
func (w *writer) setxattr(o object, x xattr) error {
	if o.kind != "" && strings.HasPrefix(x.name, "user.") {
		w.unapplied(o.rel, "xattr "+x.name+": not supported on a "+o.kind)
		return nil
	}
	var err error
	if o.fd >= 0 {
		err = unix.Fsetxattr(o.fd, x.name, []byte(x.value), 0)
	} else {
		// No fd-relative lsetxattr before Linux 6.13: name the object through its parent's
		// descriptor; the last component is not followed.
		p := "/proc/self/fd/" + strconv.Itoa(o.dirfd) + "/" + o.name
		err = unix.Lsetxattr(p, x.name, []byte(x.value), 0)
	}
	switch err {
	case unix.EPERM, unix.EACCES, unix.ENOTSUP:
		w.unapplied(o.rel, "xattr "+x.name)
		return nil
	}
	return err
}

// futimens sets the times of an open file (utimensat with a NULL path).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// markOpaque makes the directory fd (O_PATH) opaque in overlayfs form; without root the
// Record alone says it.
func (w *writer) markOpaque(fd int) error {
	if !w.isRoot {
		return nil
	}
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Fsetxattr(dfd, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		return fmt.Errorf("mark opaque: %w", err)
	}
	return nil
}

// applyDirs sets the metadata of every tracked directory, children before parents, so that a
// 0500 or 0000 directory is made so only once nothing more is written below it. An explicit
// entry gets its own metadata; a directory made only as a parent (implicit or bare) is made
// 0755 root:root (the umask and a setgid parent are not allowed to change that). The root comes
// last (see applyRoot).
func (w *writer) applyDirs() error {
	w.look.reset()
	err := w.dirs.postOrder("", func(rel string, n *node) error {
		if n.meta == nil && !n.implicit && !n.bare {
			return nil
		}
		dir, name := split(rel)
		pfd, owned, err := w.look.dir(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", display(rel), err)
		}
		if owned {
			defer unix.Close(pfd)
		}
		fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", display(rel), err)
		}
		defer unix.Close(fd)
		if n.meta != nil {
			err = w.setMeta(object{fd: fd, rel: rel}, n.meta, true)
		} else {
			if w.isRoot {
				if err = unix.Fchown(fd, 0, 0); err == unix.EPERM || err == unix.EINVAL {
					err = nil
				}
			}
			if err == nil {
				err = unix.Fchmod(fd, 0o755)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", display(rel), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return w.applyRoot()
}

// applyRoot gives the target directory the metadata of the topmost entry for the root; without
// one it keeps what it has. Without root, the owner keeps rwx on it (mode MODE is then recorded
// as unapplied): a cache tree's root must stay writable to be renamed into place (rename(2)
// updates its ".." entry) and readable to be assembled.
func (w *writer) applyRoot() error {
	if w.dirs.meta == nil {
		return nil
	}
	m := *w.dirs.meta
	if !w.isRoot && m.perm&0o700 != 0o700 {
		w.unapplied("", fmt.Sprintf("mode %04o", m.perm))
		m.perm |= 0o700
	}
	fd, err := unix.Openat(w.root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf(".: %w", err)
	}
	defer unix.Close(fd)
	if err := w.setMeta(object{fd: fd}, &m, true); err != nil {
		return fmt.Errorf(".: %w", err)
	}
	return nil
}
