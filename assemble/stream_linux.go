package assemble

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	caslayer "github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/internal/disk"
)

// Stream returns an observer (caslayer.Observer) that links the first tree of a Hardlink
// assembly into the destination while cas/layer unpacks it: each non-directory is linked as
// soon as it is written, on the unpacker's goroutine, so that a large bottom layer is not
// linked only after it is wholly unpacked. Give the tree to Add when it is made, as always:
// Add then only makes the directories the stream did not need and takes their metadata,
// copies what is copied (CopiedDirs), and applies the tree's record. Where the stream cannot
// follow — a link that fails (another filesystem), a tree with whiteouts, opaque directories
// or Links (the order of the record.Layer contract puts them before the entries), an unpack
// that started again — Add empties the destination and assembles the tree as usual. The
// destination is the same either way.
//
// Stream returns nil for a Copy assembly and once a tree was added. The observer must be used
// for the first tree only, and before Add.
func (s *Assembly) Stream() *Stream {
	if s.a.copy || s.n > 0 || s.err != nil || s.done || s.stream != nil {
		return nil
	}
	s.stream = &Stream{a: s.a}
	return s.stream
}

// A Stream is Assembly.Stream's observer.
type Stream struct {
	a        *assembler
	used     bool // something was linked, removed or reset: Add must finish or redo it
	broken   bool // the stream gave up: Add empties the destination and adds the tree as usual
	followed bool // Add finished what the stream linked (it did not start over)
	path     []streamDir
}

// streamDir is one directory of the destination open along the stream's current path.
type streamDir struct {
	name string
	fd   int
	n    *node
}

var _ caslayer.Observer = (*Stream)(nil)

// Wrote links the tree's new non-directory into the destination.
func (st *Stream) Wrote(dirfd int, name, rel string) {
	if st.broken {
		return
	}
	st.used = true
	dir, _ := splitLast(rel)
	if st.a.copyDirs && copied(dir) {
		return // Add copies it
	}
	pfd, _, err := st.dir(dir, true)
	if err == nil {
		err = unix.Linkat(dirfd, name, pfd, name, 0)
	}
	if err != nil {
		st.giveUp()
	}
}

// Removed removes from the destination what the unpacker removed from the tree.
func (st *Stream) Removed(rel string, isDir bool) {
	if st.broken {
		return
	}
	st.used = true
	dir, name := splitLast(rel)
	// Nothing at or below rel stays open.
	for i := range st.path {
		if p := st.pathAt(i); p == rel || hasPathPrefix(p, rel) {
			st.truncate(i)
			break
		}
	}
	pfd, n, err := st.dir(dir, false)
	if errors.Is(err, unix.ENOENT) {
		return // never linked: nothing to remove
	}
	if err == nil {
		err = unix.Unlinkat(pfd, name, 0)
		if errors.Is(err, unix.EISDIR) {
			n.forget(name)
			err = disk.RemoveAt(pfd, name, unix.DT_DIR, st.a.buf)
		}
		if errors.Is(err, unix.ENOENT) {
			err = nil
		}
	}
	if err != nil {
		st.giveUp()
	}
}

// Reset gives up: the tree is unpacked again from the start.
func (st *Stream) Reset() {
	st.used = true
	st.giveUp()
}

func (st *Stream) giveUp() {
	st.broken = true
	st.truncate(0)
}

// pathAt is the destination path of st.path[i].
func (st *Stream) pathAt(i int) string {
	p := st.path[0].name
	for _, d := range st.path[1 : i+1] {
		p += "/" + d.name
	}
	return p
}

// truncate closes the open directories from depth i on.
func (st *Stream) truncate(i int) {
	for _, d := range st.path[i:] {
		unix.Close(d.fd)
	}
	st.path = st.path[:i]
}

// dir opens the destination directory rel ("." the root), making the missing ones (0700 until
// Finish gives them their metadata) when create is set, and returns it with its node.
func (st *Stream) dir(rel string, create bool) (int, *node, error) {
	parts := splitPath(rel)
	k := 0
	for k < len(parts) && k < len(st.path) && st.path[k].name == parts[k] {
		k++
	}
	st.truncate(k)
	fd, n := st.a.root, st.a.top
	if k > 0 {
		fd, n = st.path[k-1].fd, st.path[k-1].n
	}
	for _, name := range parts[k:] {
		cfd, err := disk.OpenDir(fd, name)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(fd, name, 0o700); err == nil {
				cfd, err = disk.OpenDir(fd, name)
			}
		}
		if err != nil {
			return -1, nil, err
		}
		c := n.children[name]
		if c == nil {
			c = n.add(name)
		}
		st.path = append(st.path, streamDir{name: name, fd: cfd, n: c})
		fd, n = cfd, c
	}
	return fd, n, nil
}

// close releases the stream's descriptors.
func (st *Stream) close() { st.truncate(0) }

// hasPathPrefix reports whether p is below dir.
func hasPathPrefix(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}

// addStreamed adds the first tree, t, which st followed while it was unpacked (see Stream).
func (a *assembler) addStreamed(ctx context.Context, t *Tree, st *Stream) error {
	st.close()
	if !st.used {
		return a.addTree(ctx, t, true) // a tree that was not made while streaming: a cached one
	}
	st.followed = !st.broken && len(t.Whiteouts) == 0 && len(t.Opaque) == 0 && len(t.Links) == 0
	if !st.followed {
		fd, err := disk.OpenDir(a.root, ".")
		if err != nil {
			return pathErr("open", ".", err)
		}
		err = disk.RemoveContents(fd, a.buf, "")
		unix.Close(fd)
		if err != nil {
			return pathErr("empty", ".", err)
		}
		a.top, a.rootMeta = &node{}, nil
		return a.addTree(ctx, t, true)
	}
	a.begin(t)
	tfd, err := a.openTree(t)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	return a.finishDir(ctx, tfd, a.root, ".", a.top)
}

// finishDir completes the destination directory dfd (node n, at rel) of a streamed first tree
// from the tree's directory tfd: every directory is made if the stream did not need it and
// takes the tree's metadata (nothing was below it: each is this tree's), and the entries of
// CopiedDirs are added, which the stream left out.
func (a *assembler) finishDir(ctx context.Context, tfd, dfd int, rel string, n *node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := disk.ReadDir(tfd, a.buf)
	if err != nil {
		return pathErr("read", rel, err)
	}
	for _, e := range ents {
		typ := e.Type
		if typ == unix.DT_UNKNOWN {
			if typ, err = statType(tfd, e.Name); err != nil {
				return pathErr("stat", joinPath(rel, e.Name), err)
			}
		}
		if typ != unix.DT_DIR {
			if a.copyDirs && copied(rel) {
				if err := a.addFile(tfd, dfd, e.Name, typ, rel, n); err != nil {
					return err
				}
			}
			continue
		}
		crel := joinPath(rel, e.Name)
		if err := a.finishChild(ctx, tfd, dfd, e.Name, crel, n); err != nil {
			return err
		}
	}
	return nil
}

// finishChild is finishDir for the directory name in tfd and dfd.
func (a *assembler) finishChild(ctx context.Context, tfd, dfd int, name, rel string, parent *node) error {
	cdfd, _, err := destDir(dfd, name, false, false)
	if err != nil {
		return pathErr("mkdir", rel, err)
	}
	defer unix.Close(cdfd)
	ctfd, err := disk.OpenDir(tfd, name)
	if err != nil {
		return pathErr("open", rel, err)
	}
	defer unix.Close(ctfd)
	n := parent.children[name]
	if n == nil {
		n = parent.add(name)
	}
	if n.meta, err = readMeta(ctfd); err != nil {
		return pathErr("stat", rel, err)
	}
	return a.finishDir(ctx, ctfd, cdfd, rel, n)
}
