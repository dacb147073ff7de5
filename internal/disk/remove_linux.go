package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrMountPoint reports a directory that a removal would have entered, but that is another
// mount than its parent (a bind mount, a tmpfs, a chroot's /dev): roots never removes anything
// on a filesystem it did not make.
var ErrMountPoint = errors.New("is a mount point")

// RemoveAll removes path and everything below it, like os.RemoveAll, but robust against hostile
// trees: it never follows a symlink (only path's parent is resolved normally), never enters
// another mount (ErrMountPoint: a bind mount or tmpfs below path keeps what it holds), and
// directories that deny their owner access (0000, 0500) are made u+rwx before they are read or
// emptied. A missing path is not an error.
func RemoveAll(path string) error {
	path = filepath.Clean(path)
	parent, name := filepath.Dir(path), filepath.Base(path)
	if name == "/" || name == "." || name == ".." {
		return fmt.Errorf("remove %s: refusing to remove a root or dot path", path)
	}
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "remove", Path: path, Err: err}
	}
	defer unix.Close(pfd)
	if err := RemoveAt(pfd, name, unix.DT_UNKNOWN, make([]byte, BufSize)); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// RemoveAt removes name from the directory dirfd, with everything below it if it is a
// directory, as RemoveAll does. typ is its DT_ type if known, DT_UNKNOWN otherwise; buf is
// ReadDir's buffer. A missing entry is not an error.
func RemoveAt(dirfd int, name string, typ uint8, buf []byte) error {
	if typ != unix.DT_DIR {
		err := unix.Unlinkat(dirfd, name, 0)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EISDIR) {
			return err
		}
	}
	fd, err := openForRemoval(dirfd, name)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := sameMount(dirfd, fd); err != nil {
		unix.Close(fd)
		return err
	}
	err = RemoveContents(fd, buf, "")
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// RemoveContents empties the directory fd, but for the entry keep ("": none), as RemoveAll
// does. When an entry cannot be removed for lack of permission on fd, fd is made u+rwx once and
// the removal retried.
func RemoveContents(fd int, buf []byte, keep string) error {
	ents, err := ReadDir(fd, buf)
	if err != nil {
		return err
	}
	opened := false
	for _, e := range ents {
		if e.Name == keep {
			continue
		}
		err := RemoveAt(fd, e.Name, e.Type, buf)
		if errors.Is(err, unix.EACCES) && !opened {
			opened = true
			if unix.Fchmod(fd, 0o700) == nil {
				err = RemoveAt(fd, e.Name, e.Type, buf)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
	}
	return nil
}

// openForRemoval opens the directory name in dirfd for reading; when its mode denies that, it is
// first made u+rwx through an O_PATH descriptor (which cannot be a symlink's target).
func openForRemoval(dirfd int, name string) (int, error) {
	fd, err := OpenDir(dirfd, name)
	if !errors.Is(err, unix.EACCES) {
		return fd, err
	}
	pfd, perr := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if perr != nil {
		return -1, err
	}
	cerr := unix.Chmod(ProcPath(pfd, ""), 0o700)
	unix.Close(pfd)
	if cerr != nil {
		return -1, err
	}
	return OpenDir(dirfd, name)
}

// sameMount returns ErrMountPoint unless the directory fd is on the same mount as its parent
// dirfd (the mount IDs of statx(2), which tell a bind mount of the same filesystem apart too).
func sameMount(dirfd, fd int) error {
	var p, c unix.Statx_t
	if err := unix.Statx(dirfd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &p); err != nil {
		return err
	}
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &c); err != nil {
		return err
	}
	if p.Mask&unix.STATX_MNT_ID == 0 || c.Mask&unix.STATX_MNT_ID == 0 {
		if p.Dev_major != c.Dev_major || p.Dev_minor != c.Dev_minor {
			return ErrMountPoint
		}
		return nil
	}
	if p.Mnt_id != c.Mnt_id {
		return ErrMountPoint
	}
	return nil
}
