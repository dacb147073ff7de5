package assemble

import (
	"context"
	"errors"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	caslayer "github.com/rootsdev/roots/cas/layer"
)

// In-root resolution. A path a layer names resolves against the rootfs that the layers below
// left, as tar extraction onto the rootfs does: a symlink among its parents is followed inside
// the destination, as if the destination were "/" (an absolute target starts at its root, ".."
// stops there), so that lib/x over lib -> usr/lib lands in usr/lib/x. The last component of a
// path is never followed. A tree cannot know its lower layers, so this happens here: for an
// implicit directory of a tree that meets a symlink in the destination, and for the parents of
// whiteouts, opaque directories and Links.

// ErrSymlinkLoop reports a path whose symlinks in the destination loop, or chain deeper than
// caslayer.MaxSymlinks: the unpacker's error, for the same rule.
var ErrSymlinkLoop = caslayer.ErrSymlinkLoop

// errFollow is destDir's answer for a symlink that the caller follows.
var errFollow = errors.New("symlink to follow")

// resolveDir opens the destination directory at p ("." is the root), every symlink on the way
// followed inside the destination. With create, a missing component is made (0755 root:root at
// the end) and a non-directory other than a symlink is replaced by a directory; the directories
// it makes are recorded in linkDirs when links is set (see addDir). Without create, a missing
// component or a non-directory is an error that absent recognises. It returns the directory's
// descriptor (the caller closes it), its path with the symlinks resolved, and its node.
func (a *assembler) resolveDir(p string, create, links bool) (fd int, real string, n *node, err error) {
	var done []string
	fds := []int{}
	nodes := []*node{a.top}
	cur := func() int {
		if len(fds) == 0 {
			return a.root
		}
		return fds[len(fds)-1]
	}
	defer func() {
		for _, f := range fds {
			if f != fd {
				unix.Close(f)
			}
		}
	}()
	todo := splitPath(p)
	follows := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done, nodes = done[:len(done)-1], nodes[:len(nodes)-1]
				unix.Close(fds[len(fds)-1])
				fds = fds[:len(fds)-1]
			}
			continue
		}
		rel := strings.Join(append(done[:len(done):len(done)], c), "/")
		next, err := disk.OpenDir(cur(), c)
		created := false
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			var st unix.Stat_t
			if serr := unix.Fstatat(cur(), c, &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
				return -1, "", nil, pathErr("stat", rel, serr)
			}
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				follows++
				if follows > caslayer.MaxSymlinks {
					return -1, "", nil, fmt.Errorf("%s: %w", p, ErrSymlinkLoop)
				}
				target, rerr := readlinkat(cur(), c)
				if rerr != nil {
					return -1, "", nil, pathErr("readlink", rel, rerr)
				}
				if strings.HasPrefix(target, "/") {
					for _, f := range fds {
						unix.Close(f)
					}
					done, fds, nodes = nil, fds[:0], nodes[:1]
				}
				todo = append(splitPath(strings.TrimPrefix(target, "/")), todo...)
				continue
			}
			if create {
				parent := nodes[len(nodes)-1]
				if err = a.clear(cur(), c, parent); err == nil {
					err = unix.ENOENT
				}
			}
		}
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(cur(), c, 0o700); err == nil || errors.Is(err, unix.EEXIST) {
				created = err == nil
				next, err = disk.OpenDir(cur(), c)
			}
		}
		if err != nil {
			return -1, "", nil, pathErr("open", rel, err)
		}
		parent := nodes[len(nodes)-1]
		child := parent.children[c]
		if created || child == nil {
			child = parent.add(c)
		}
		if created {
			child.meta = implicitMeta()
			if links {
				if a.linkDirs == nil {
					a.linkDirs = make(map[string]bool)
				}
				a.linkDirs[rel] = true
			}
		}
		done, fds, nodes = append(done, c), append(fds, next), append(nodes, child)
	}
	fd = cur()
	if len(fds) == 0 {
		if fd, err = disk.OpenDir(a.root, "."); err != nil {
			return -1, "", nil, pathErr("open", ".", err)
		}
	}
	real = "."
	if len(done) > 0 {
		real = strings.Join(done, "/")
	}
	return fd, real, nodes[len(nodes)-1], nil
}

// followed is a directory of the tree whose destination path is a symlink: its entries are
// added below the symlink's resolution once the tree's other entries are (see addTree).
type followed struct {
	rel  string // in the tree
	link string // in the destination: the symlink
}

// follows collects the followed directories of one tree; the tree's walkers share it.
type follows struct {
	mu   sync.Mutex
	list []followed
}

func (f *follows) add(x followed) {
	f.mu.Lock()
	f.list = append(f.list, x)
	f.mu.Unlock()
}

func (f *follows) next() (followed, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.list) == 0 {
		return followed{}, false
	}
	x := f.list[0]
	f.list = f.list[1:]
	return x, true
}

// addFollowed adds the entries of every followed directory of the tree (root descriptor tfd)
// below the symlink's resolution, one at a time (two may resolve to the same directory), and
// the directories followed on the way below them.
func (a *assembler) addFollowed(ctx context.Context, tfd int) error {
	a.pool = nil
	for {
		x, ok := a.follows.next()
		if !ok {
			return nil
		}
		ctfd, err := openPath(tfd, splitPath(x.rel))
		if err != nil {
			return pathErr("open", x.rel, err)
		}
		dfd, real, n, err := a.resolveDir(x.link, true, false)
		if err != nil {
			unix.Close(ctfd)
			return err
		}
		err = a.walkDir(ctx, ctfd, dfd, x.rel, real, n, false)
		unix.Close(ctfd)
		unix.Close(dfd)
		if err != nil {
			return err
		}
	}
}
