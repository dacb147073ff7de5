package assemble

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	caslayer "github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/internal/disk"
)

// Stream returns an observer (caslayer.Observer) that links the first tree of a Hardlink
// assembly into the destination while cas/layer unpacks it: each non-directory is linked as
// soon as it is written, so that a large bottom layer is not linked only after it is wholly
// unpacked. The links are made on a goroutine of the stream's own, in the order the unpacker
// reported its changes, so that the unpacker's core does not wait for them. Give the tree to
// Add when it is made, as always: Add waits for the stream to catch up, then only makes the
// directories the stream did not need and takes their metadata, copies what is copied
// (CopiedDirs), and applies the tree's record. Where the stream cannot follow — a link that
// fails (another filesystem), a tree with whiteouts, opaque directories or Links (the order of
// the record.Layer contract puts them before the entries), an unpack that started again — Add
// empties the destination and assembles the tree as usual. The destination is the same
// either way.
//
// Stream returns nil for a Copy assembly and once a tree was added. The observer must be used
// for the first tree only, by one goroutine, and before Add.
func (s *Assembly) Stream() *Stream {
	if s.a.copy || s.n > 0 || s.err != nil || s.done || s.stream != nil {
		return nil
	}
	st := &Stream{a: s.a, ops: make(chan []streamOp, streamQueue), done: make(chan struct{}), tdir: -1}
	go st.link()
	s.stream = st
	return st
}

// The unpacker hands its changes over in batches of streamBatch (a channel send per change
// woke the linking goroutine per file: a futex call each), and may be streamQueue batches
// ahead of the links.
const (
	streamBatch = 128
	streamQueue = 8
)

// A Stream is Assembly.Stream's observer.
type Stream struct {
	a    *assembler
	ops  chan []streamOp // the unpacker's changes, in order, to the linking goroutine
	done chan struct{}   // closed when the linking goroutine has applied every change
	once sync.Once

	// The unpacker's side.
	used  bool       // something was linked, removed or reset: Add must finish or redo it
	batch []streamOp // changes not sent yet
	odir  string     // the tree directory of the last Wrote, whose descriptor the links hold
	oset  bool       // odir is set
	quit  atomic.Bool
	fixed bool // close was called: nothing more is sent

	// The linking goroutine's side; Add reads them once done is closed.
	broken   bool // the stream gave up: Add empties the destination and adds the tree as usual
	followed bool // Add finished what the stream linked (it did not start over)
	path     []streamDir
	tdir     int // the tree directory the links come from (-1: none)
}

// A streamOp is one change of the tree, as the unpacker reported it.
type streamOp struct {
	kind  opKind
	rel   string // the path in the tree
	isDir bool   // removed: a directory
	tdir  int    // wrote: the tree directory of rel from now on (a descriptor the stream owns), or -1: as before
}

type opKind uint8

const (
	opWrote opKind = iota
	opRemoved
	opReset
)

// streamDir is one directory of the destination open along the stream's current path.
type streamDir struct {
	name string
	fd   int
	n    *node
}

var _ caslayer.Observer = (*Stream)(nil)

// Wrote links the tree's new non-directory into the destination.
func (st *Stream) Wrote(dirfd int, name, rel string) {
	if st.quit.Load() || st.fixed {
		return
	}
	st.used = true
	op := streamOp{kind: opWrote, rel: rel, tdir: -1}
	if dir, _ := splitLast(rel); dir != st.odir || !st.oset {
		// The links of a new directory come from a descriptor of their own: dirfd is the
		// unpacker's, valid during this call only.
		fd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			st.send(streamOp{kind: opReset})
			return
		}
		st.odir, st.oset, op.tdir = dir, true, fd
	}
	st.send(op)
}

// Removed removes from the destination what the unpacker removed from the tree.
func (st *Stream) Removed(rel string, isDir bool) {
	if st.quit.Load() || st.fixed {
		return
	}
	st.used = true
	st.oset = false // what was open may be gone: the next Wrote opens its directory again
	st.send(streamOp{kind: opRemoved, rel: rel, isDir: isDir})
}

// Reset gives up: the tree is unpacked again from the start.
func (st *Stream) Reset() {
	if st.fixed {
		return
	}
	st.used = true
	st.oset = false
	st.send(streamOp{kind: opReset})
}

func (st *Stream) send(op streamOp) {
	st.batch = append(st.batch, op)
	if len(st.batch) == streamBatch {
		st.flush()
	}
}

// flush sends the batch.
func (st *Stream) flush() {
	if len(st.batch) > 0 {
		st.ops <- st.batch
		st.batch = make([]streamOp, 0, streamBatch)
	}
}

// link applies the unpacker's changes to the destination, in order, until close.
func (st *Stream) link() {
	defer close(st.done)
	for batch := range st.ops {
		for _, op := range batch {
			if op.kind == opWrote && op.tdir >= 0 {
				st.setTreeDir(op.tdir)
			}
			if st.broken {
				continue
			}
			switch op.kind {
			case opWrote:
				st.wrote(op.rel)
			case opRemoved:
				st.removed(op.rel, op.isDir)
			case opReset:
				st.giveUp()
			}
		}
	}
	st.setTreeDir(-1)
	st.truncate(0)
}

// setTreeDir makes fd the tree directory the links come from, closing the one before.
func (st *Stream) setTreeDir(fd int) {
	if st.tdir >= 0 {
		unix.Close(st.tdir)
	}
	st.tdir = fd
}

// wrote links the tree's non-directory rel, in the tree directory st.tdir, into the
// destination. A name the tree no longer has was removed since it was written: a Removed
// follows it, and a Wrote if something new took its place.
func (st *Stream) wrote(rel string) {
	dir, name := splitLast(rel)
	if st.a.copyDirs && copied(dir) {
		return // Add copies it
	}
	pfd, _, err := st.dir(dir, true)
	if err == nil {
		err = unix.Linkat(st.tdir, name, pfd, name, 0)
		if errors.Is(err, unix.ENOENT) {
			return
		}
	}
	if err != nil {
		st.giveUp()
	}
}

// removed removes rel from the destination.
func (st *Stream) removed(rel string, isDir bool) {
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

func (st *Stream) giveUp() {
	st.broken = true
	st.quit.Store(true) // the unpacker stops sending
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

// close waits until the stream has linked everything it was sent, and stops it. The observer
// must not be called any more.
func (st *Stream) close() {
	st.once.Do(func() {
		st.flush()
		st.fixed = true
		close(st.ops)
	})
	<-st.done
}

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
