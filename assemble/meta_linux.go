package assemble

import (
	"context"
	"github.com/rootsdev/roots/internal/disk"
	"golang.org/x/sys/unix"
)

// node mirrors one directory of the destination: where its metadata comes from, and its
// subdirectories. Removing a directory from the destination removes its node, so metadata of
// a deleted lower directory can never reach a directory that a higher layer makes again.
type node struct {
	meta     *dirMeta // nil: leave the directory as it is
	children map[string]*node
}

// add makes a fresh node for the subdirectory name, replacing any old one.
func (n *node) add(name string) *node {
	if n.children == nil {
		n.children = make(map[string]*node)
	}
	c := &node{}
	n.children[name] = c
	return c
}

// lookup returns the node at parts below n, or nil.
func (n *node) lookup(parts []string) *node {
	for _, p := range parts {
		if n == nil {
			return nil
		}
		n = n.children[p]
	}
	return n
}

// forget drops the subdirectory name (after it left the destination).
func (n *node) forget(name string) {
	if n != nil {
		delete(n.children, name)
	}
}

// dirMeta is the metadata a directory of the destination takes from a tree's directory.
type dirMeta struct {
	uid, gid     uint32
	mode         uint32 // permission bits with setuid, setgid and sticky
	atime, mtime unix.Timespec
	times        bool // set atime and mtime (an implicit directory keeps the times it gets)
	xattrs       []xattr
}

// implicitMeta is the metadata of a directory that exists only as a parent: 0755 root:root.
func implicitMeta() *dirMeta {
	return &dirMeta{mode: 0o755}
}

// readMeta reads the metadata of the open tree directory fd.
func readMeta(fd int) (*dirMeta, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	xs, err := fdXattrs(fd)
	if err != nil {
		return nil, err
	}
	return &dirMeta{
		uid: st.Uid, gid: st.Gid, mode: st.Mode & 0o7777,
		atime: st.Atim, mtime: st.Mtim, times: true, xattrs: xs,
	}, nil
}

// applyMeta sets the metadata of every directory of the destination, children before parents,
// then the root's: that of the topmost tree whose root is not implicit (a layer's entry for "./"
// gave it), else 0755 with the owner and times the root has.
func (a *assembler) applyMeta(ctx context.Context) error {
	if err := a.applyChildren(ctx, a.root, a.top, "."); err != nil {
		return err
	}
	m := a.rootMeta
	if m == nil {
		if err := unix.Fchmod(a.root, 0o755); err != nil {
			return pathErr("chmod", ".", err)
		}
		return nil
	}
	if err := a.setMeta(a.root, m, "."); err != nil {
		return err
	}
	if err := futimens(a.root, &[2]unix.Timespec{m.atime, m.mtime}); err != nil {
		return pathErr("utimes", ".", err)
	}
	return nil
}

// applyChildren sets the metadata below the destination directory fd (at rel), deepest first.
func (a *assembler) applyChildren(ctx context.Context, fd int, n *node, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for name, c := range n.children {
		crel := joinPath(rel, name)
		cfd, err := disk.OpenDir(fd, name)
		if err != nil {
			return pathErr("open", crel, err)
		}
		err = a.applyChildren(ctx, cfd, c, crel)
		if err == nil && c.meta != nil {
			err = a.setMeta(cfd, c.meta, crel)
		}
		unix.Close(cfd)
		if err != nil {
			return err
		}
		if c.meta != nil && c.meta.times {
			ts := []unix.Timespec{c.meta.atime, c.meta.mtime}
			if err := unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return pathErr("utimes", crel, err)
			}
		}
	}
	return nil
}

// setMeta gives the open destination directory fd its owner, mode and xattrs, in that order
// (chown clears set-id bits and file capabilities).
func (a *assembler) setMeta(fd int, m *dirMeta, rel string) error {
	if err := unix.Fchown(fd, int(m.uid), int(m.gid)); err != nil && !a.unprivileged(err) {
		return pathErr("chown", rel, err)
	}
	if err := unix.Fchmod(fd, m.mode); err != nil {
		return pathErr("chmod", rel, err)
	}
	err := a.setXattrs(m.xattrs, func(name string, v []byte) error { return unix.Fsetxattr(fd, name, v, 0) })
	if err != nil {
		return pathErr("xattrs", rel, err)
	}
	return nil
}
