package layer

import (
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// remove removes what is at name in dirfd (rel): a file, a symlink (never followed), or a
// directory with its whole subtree. Nothing there is no error.
func (w *writer) remove(dirfd int, rel, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	isDir := err == unix.EISDIR
	if isDir {
		err = removeAll(dirfd, name)
	}
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "remove", Path: rel, Err: err}
	}
	w.removed(rel, isDir)
	return nil
}

// removeAll removes the directory name in dirfd and everything below it, working from
// descriptors only: a symlink inside is removed, never followed.
func removeAll(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	if err == nil {
		for _, child := range names {
			err = unix.Unlinkat(fd, child, 0)
			if err == unix.EISDIR {
				err = removeAll(fd, child)
			}
			if err != nil && err != unix.ENOENT {
				break
			}
			err = nil
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// readNames lists the directory fd (O_RDONLY) without closing it.
func readNames(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "")
	defer f.Close()
	return f.Readdirnames(-1)
}

// prune removes everything below the directory dir (dirfd, O_PATH) that the current layer did
// not write or walk through: the Applier's end of an opaque directory. A lower directory that
// the layer only walked through stays, with the layer's contents, but as a new directory: its
// lower metadata is dropped and it is made 0755 root:root at the end, as an implicit one.
func (w *writer) prune(dirfd int, dir string) error {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	names, err := readNames(fd)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		rel := join(dir, name)
		made, ok := w.written.get(rel)
		if !ok {
			if err := w.remove(fd, rel, name); err != nil {
				return err
			}
			continue
		}
		cfd, err := unix.Openat(fd, name, dirFlags, 0)
		if err == unix.ENOTDIR || err == unix.ELOOP {
			continue // the layer's own file or symlink
		}
		if err != nil {
			return err
		}
		if !made {
			n := w.dirs.ensure(rel)
			n.meta, n.implicit = nil, true
		}
		err = w.prune(cfd, rel)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

func closeFd(fd int) { unix.Close(fd) }
