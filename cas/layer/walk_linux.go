package layer

import (
	"golang.org/x/sys/unix"
)

// dirFlags open a directory for use as the dirfd of *at calls only. O_NOFOLLOW with O_PATH
// opens a symlink itself, and O_DIRECTORY then refuses it (ENOTDIR): a symlink is never followed.
const dirFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// maxCachedDepth bounds the open descriptors a walker keeps; deeper levels are opened and closed
// on the way down, so that a hostile 100,000-deep name cannot exhaust the process's descriptors.
const maxCachedDepth = 64

// walker opens directories below a root one component at a time, never following a symlink.
// It keeps the chain of directories of the last walk open: entries of a layer come in directory
// order, so most walks reuse the whole chain and cost no syscall at all.
//
// A walker with a writer creates what is missing and replaces what is in the way: a missing
// component becomes an implicit directory (0755), and a component that is a non-directory other
// than a symlink is removed and replaced by one. A symlink is never followed: the walk fails with
// a *symlinkError, and the caller resolves the path inside the root (see resolve) and walks the
// result. A walker without a writer only looks.
type walker struct {
	root  int
	w     *writer
	names []string
	fds   []int
	stale bool // something was removed: the cached chain may hold deleted directories
}

// dir returns a descriptor for the directory rel ("" is the root). If owned, the descriptor
// is the caller's to close; otherwise it stays valid until the next call on the walker.
func (k *walker) dir(rel string) (fd int, owned bool, err error) {
	fd, owned, err = k.walk(rel)
	if err == errRewalk {
		k.reset()
		fd, owned, err = k.walk(rel)
	}
	return fd, owned, err
}

func (k *walker) walk(rel string) (fd int, owned bool, err error) {
	if k.stale {
		k.reset()
	}
	fd = k.root
	depth := 0
	for pos := 0; pos < len(rel); depth++ {
		end := pos
		for end < len(rel) && rel[end] != '/' {
			end++
		}
		name := rel[pos:end]
		pos = end + 1
		if !owned && depth < len(k.names) {
			if k.names[depth] == name {
				fd = k.fds[depth]
				continue
			}
			k.truncate(depth)
		}
		next, err := k.step(fd, rel[:end], name)
		if owned {
			unix.Close(fd)
		}
		if err != nil {
			return -1, false, err
		}
		if !owned && depth < maxCachedDepth {
			k.names = append(k.names, name)
			k.fds = append(k.fds, next)
		} else {
			owned = true
		}
		fd = next
	}
	if !owned {
		// The caller may now replace or remove a child of rel: nothing below rel stays cached.
		k.truncate(depth)
	}
	return fd, owned, nil
}

// step opens the directory name in dirfd (whose path is rel), creating or replacing it when the
// walker has a writer.
func (k *walker) step(dirfd int, rel, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, dirFlags, 0)
	if err == nil {
		if k.w != nil {
			k.w.visited(rel)
		}
		return fd, nil
	}
	if k.w == nil {
		return -1, err
	}
	if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
		if err := k.w.settleStep(rel); err != nil {
			return -1, err
		}
	}
	switch err {
	case unix.ENOENT:
	case unix.ENOTDIR, unix.ELOOP:
		// A symlink is followed by the caller (see resolve); another non-directory is replaced
		// by a directory.
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, &symlinkError{rel: rel}
		}
		if err := unix.Unlinkat(dirfd, name, 0); err != nil {
			return -1, err
		}
		k.w.removed(rel, false)
	default:
		return -1, err
	}
	if err := unix.Mkdirat(dirfd, name, 0o755); err != nil {
		return -1, err
	}
	if err := k.w.dropInheritedDirACL(dirfd, name); err != nil {
		return -1, err
	}
	if fd, err = unix.Openat(dirfd, name, dirFlags, 0); err != nil {
		return -1, err
	}
	if err := k.w.implicitDir(rel, fd); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (k *walker) truncate(depth int) {
	for _, fd := range k.fds[depth:] {
		unix.Close(fd)
	}
	k.names, k.fds = k.names[:depth], k.fds[:depth]
}

func (k *walker) reset() {
	k.truncate(0)
	k.stale = false
}
