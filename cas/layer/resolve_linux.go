package layer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxSymlinks is how many symlinks the resolution of one path inside a rootfs may follow: the
// kernel's MAXSYMLINKS. Assembly follows the same limit.
const MaxSymlinks = 40

// ErrSymlinkLoop: a path whose symlinks loop, or chain deeper than MaxSymlinks, inside the rootfs.
var ErrSymlinkLoop = fmt.Errorf("too many levels of symbolic links (a loop, or a chain of more than %d)", MaxSymlinks)

// errMoot: a whiteout or opaque marker below something the layer itself made a non-directory
// (umoci writes a type change as the new symlink plus a whiteout below it): the new entry stays.
var errMoot = errors.New("below a non-directory of this layer")

// symlinkError is what a writing walk returns when a component of the path is a symlink: the
// caller resolves the path (resolve) and walks again.
type symlinkError struct{ rel string }

func (e *symlinkError) Error() string { return e.rel + ": a symlink on the way" }

// walkTo is walk.dir for the parent directory of an entry: a symlink on the way is followed
// inside the target (see resolve). It returns the directory's descriptor and its path with the
// symlinks resolved.
func (w *writer) walkTo(dir string) (fd int, owned bool, resolved string, err error) {
	fd, owned, err = w.walk.dir(dir)
	var sl *symlinkError
	if !errors.As(err, &sl) {
		return fd, owned, dir, err
	}
	if resolved, err = w.resolve(dir, false); err != nil {
		return -1, false, "", err
	}
	fd, owned, err = w.walk.dir(resolved)
	if errors.As(err, &sl) { // the tree changed under the walk: only a loop does that
		err = ErrSymlinkLoop
	}
	return fd, owned, resolved, err
}

// resolve returns the directory path dir ("" is the root) with every symlink on it followed
// inside the target directory as if that were "/", as tar extraction onto a rootfs does: an
// absolute link starts again at the root, and ".." never climbs above it. A tree holds only
// its own layer, so there resolve follows the layer's own links; the layers below are resolved
// at assembly. Nothing is created: a missing component, or a non-directory that is not a
// symlink (which a walk replaces by a directory), is taken as it is, and so is the rest.
//
// With marker (the parent of a whiteout or opaque marker), a symlink or other non-directory that
// this layer itself made on the way makes the marker moot: errMoot.
func (w *writer) resolve(dir string, marker bool) (string, error) {
	var done []string
	todo := splitAll(dir)
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		parent := strings.Join(done, "/")
		rel := join(parent, c)
		var st unix.Stat_t
		pfd, owned, err := w.look.dir(parent)
		if err == nil {
			err = unix.Fstatat(pfd, c, &st, unix.AT_SYMLINK_NOFOLLOW)
		}
		switch {
		case err == unix.ENOENT || err == unix.ENOTDIR:
			done = append(done, c) // made by the walk, with all that follows
		case err != nil:
			if owned {
				unix.Close(pfd)
			}
			return "", &os.PathError{Op: "resolve", Path: rel, Err: err}
		case st.Mode&unix.S_IFMT == unix.S_IFDIR:
			done = append(done, c)
		case marker && w.layerMade(rel):
			if owned {
				unix.Close(pfd)
			}
			return "", errMoot
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			links++
			if links > MaxSymlinks {
				if owned {
					unix.Close(pfd)
				}
				return "", fmt.Errorf("%s: %w", display(dir), ErrSymlinkLoop)
			}
			target, err := readlinkat(pfd, c)
			if err != nil {
				if owned {
					unix.Close(pfd)
				}
				return "", &os.PathError{Op: "readlink", Path: rel, Err: err}
			}
			if strings.HasPrefix(target, "/") {
				done = done[:0]
			}
			todo = append(splitAll(target), todo...)
		default:
			done = append(done, c) // a lower file: the walk replaces it by a directory
		}
		if owned {
			unix.Close(pfd)
		}
	}
	return strings.Join(done, "/"), nil
}

// layerMade reports whether the layer being written made rel (rather than a layer below it).
func (w *writer) layerMade(rel string) bool {
	if w.tree {
		return true // a tree holds nothing else
	}
	made, _ := w.written.get(rel)
	return made
}

// splitAll splits a slash path into its components, empty ones included.
func splitAll(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// readlinkat reads the target of the symlink name in dirfd. Linux keeps a target to PATH_MAX.
func readlinkat(dirfd int, name string) (string, error) {
	var buf [unix.PathMax]byte
	n, err := unix.Readlinkat(dirfd, name, buf[:])
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
