package layer

import (
	"github.com/rootsdev/roots/internal/disk"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// remove removes what is at name in dirfd (rel): a file, a symlink (never followed), or a
// directory with its whole subtree (disk.RemoveAt). Nothing there is no error.
func (w *writer) remove(dirfd int, rel, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	isDir := err == unix.EISDIR
	if isDir {
		err = disk.RemoveAt(dirfd, name, unix.DT_DIR, make([]byte, disk.BufSize))
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

// readNames lists the directory fd (O_RDONLY) without closing it.
func readNames(fd int) ([]string, error) {
	ents, err := disk.ReadDir(fd, make([]byte, 16<<10))
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name
	}
	return names, err
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
