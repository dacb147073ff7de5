package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// bufPool holds the 1 MiB copy buffers; layers unpack in parallel and each needs one.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// writer writes the entries of layers into one directory. The same code serves both uses, so
// that a tree and an applied rootfs cannot drift apart: tree (Unpack) keeps markers in the
// Record and in overlayfs form; otherwise (Applier) whiteouts and opaque directories delete.
type writer struct {
	tree   bool
	isRoot bool
	euid   int
	egid   int
	// Shortcuts that save a chmod and a chown per file, taken only in a fresh target (see
	// probeFresh): umask is the process umask (0o777: always chmod), and rootOwns says that
	// new objects are 0:0 already (a root:root process; directories get their setgid bits
	// only at the end), so that owner 0:0 needs no chown.
	umask    uint32
	rootOwns bool
	// stripACL: the target is not fresh, and what is created in it may inherit a default ACL:
	// remove the inherited ACLs (the entry's own xattrs come after).
	stripACL bool

	root int    // O_PATH descriptor of the target directory
	walk walker // parents of entries: creates and replaces
	look walker // hardlink targets and directory metadata: only looks
	dirs node   // tracked paths (see node)
	rec  Record // Links, Unapplied, Size, Files
	buf  *[]byte

	// Applier, per layer: every path the layer wrote or walked through (what its whiteouts spare
	// and its opaque directories keep), true for what the layer made (an entry, or a directory it
	// created) and false for a lower directory it only walked through; and its opaque directories.
	written *pathSet
	opaque  []string

	obs   Observer   // told of the tree's changes as they are made (Unpack only; nil: none)
	obsMu sync.Mutex // the pool's goroutines tell obs too
	recMu sync.Mutex // they may add to rec.Unapplied
	pool  *pool      // writes small files in parallel (see pool_linux.go); nil: none
}

func newWriter(dir string, tree bool) (*writer, error) {
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	w := &writer{
		tree: tree,
		euid: os.Geteuid(),
		egid: os.Getegid(),
		root: root,
		buf:  bufPool.Get().(*[]byte),
	}
	w.isRoot = w.euid == 0
	w.umask, w.rootOwns, w.stripACL = 0o777, false, true
	if probeFresh(root) {
		w.umask = readUmask()
		w.rootOwns = w.isRoot && w.egid == 0
		w.stripACL = false
	}
	w.walk = walker{root: root, w: w}
	w.look = walker{root: root}
	w.dirs.implicit = true // until an entry names the root
	return w, nil
}

func (w *writer) close() {
	w.walk.reset()
	w.look.reset()
	if w.root >= 0 {
		unix.Close(w.root)
		w.root = -1
	}
	if w.buf != nil {
		bufPool.Put(w.buf)
		w.buf = nil
	}
}

// layer writes every entry of the tar stream r, then reads r to its end so that a caller
// hashing r sees every byte (the diff id covers the padding after the end-of-archive marker).
func (w *writer) layer(ctx context.Context, r io.Reader) (err error) {
	w.startPool()
	defer w.stopPool(true) // after a failure; else stopped below
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := w.entry(ctx, hdr, tr); err != nil {
			if fe := (*fileError)(nil); errors.As(err, &fe) {
				return err // the pool's error, named by its own entry
			}
			return fmt.Errorf("%s: %w", display(hdr.Name), err)
		}
	}
	if err := w.stopPool(false); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read tar: %w", err)
	}
	if err := w.endAUFS(); err != nil {
		return fmt.Errorf("remove %s: %w", aufsPlnk, err)
	}
	return nil
}

// entry writes one tar entry; tr is positioned on its data.
func (w *writer) entry(ctx context.Context, hdr *tar.Header, tr *tar.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("type %q: %w", hdr.Typeflag, ErrUnsupportedEntry)
	}
	rel := confine(hdr.Name)
	if rel == "" {
		return w.rootEntry(hdr)
	}
	if isAUFSMeta(rel) {
		if err := w.drain(); err != nil {
			return err
		}
		return w.aufsEntry(ctx, rel, hdr, tr)
	}
	if err := checkPath(rel); err != nil {
		return err
	}
	kind, target, err := classify(rel)
	if err != nil {
		return err
	}
	w.rec.Files++
	if kind != notMarker || hdr.Typeflag == tar.TypeLink {
		// Whiteouts, opaque markers and hardlinks look at what the layer wrote before.
		if err := w.drain(); err != nil {
			return err
		}
	}
	switch kind {
	case whiteoutMarker:
		return w.whiteout(target)
	case opaqueDirMarker:
		return w.opaqueDir(target)
	}
	m, err := headerMeta(hdr)
	if err != nil {
		return err
	}
	if (hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock) && !w.isRoot {
		// Leave the path alone, as a tree would (it has nothing there), and say so.
		w.unapplied(rel, deviceWhat(hdr))
		return nil
	}
	// What the pool was given at rel, above or below it is written before rel is walked to
	// and before it is written (the walk may resolve rel elsewhere: then it is walked again).
	if err := w.settle(rel); err != nil {
		return err
	}
	dir, name := split(rel)
	dirfd, owned, resolved, err := w.walkTo(dir)
	if err == nil && resolved != dir && w.pool.conflicts(join(resolved, name)) {
		if owned {
			unix.Close(dirfd)
		}
		if err := w.drain(); err != nil {
			return err
		}
		w.walk.reset()
		dirfd, owned, resolved, err = w.walkTo(dir)
	}
	if err != nil {
		return err
	}
	if owned {
		defer unix.Close(dirfd)
	}
	dir = resolved
	rel = join(dir, name)
	if w.pooled(hdr, &m) {
		w.rec.Size += hdr.Size
		w.madeNonDir(rel)
		if err := w.pool.add(dirfd, dir, rel, name, tr, hdr, &m); err != nil {
			return err
		}
		if w.pool.busy() {
			return w.pool.drain()
		}
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return w.mkdir(dirfd, rel, name, &m)
	case tar.TypeSymlink:
		return w.symlink(dirfd, rel, name, hdr.Linkname, &m)
	case tar.TypeLink:
		return w.hardlink(dirfd, rel, name, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return w.mknod(dirfd, rel, name, hdr, &m)
	default:
		w.rec.Size += hdr.Size
		return w.file(ctx, dirfd, rel, name, tr, hdr, &m)
	}
}

// rootEntry handles an entry for the root ("./", "/", "." and every name that confines to it).
// A directory entry's metadata replaces the root's (layer.md: when the entry and the existing
// path are both directories, the existing path's attributes are replaced); it is applied with the
// other directories' at the end, the topmost layer's winning. Any other type cannot replace the
// root and is ignored.
func (w *writer) rootEntry(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeDir {
		return nil
	}
	m, err := headerMeta(hdr)
	if err != nil {
		return err
	}
	w.rec.Files++
	w.dirs.meta, w.dirs.implicit = &m, false
	return nil
}

func deviceWhat(hdr *tar.Header) string {
	kind := "char"
	if hdr.Typeflag == tar.TypeBlock {
		kind = "block"
	}
	return fmt.Sprintf("%s device %d:%d", kind, hdr.Devmajor, hdr.Devminor)
}

func (w *writer) unapplied(rel, what string) {
	w.recMu.Lock()
	defer w.recMu.Unlock()
	w.rec.Unapplied = append(w.rec.Unapplied, Unapplied{Path: recordPath(rel), What: what})
}

// visited is called for every existing directory a walk opens on the way to an entry.
func (w *writer) visited(rel string) {
	if w.written != nil {
		w.written.visit(rel)
	}
}

// made is called for every path the layer writes: an entry, or a directory a walk created.
func (w *writer) made(rel string) {
	if w.written != nil {
		w.written.make(rel)
	}
}

// implicitDir is called when a walk has created the directory rel (fd) as a parent. Where the
// layer had removed or replaced something (its own whiteout, file or directory), the directory
// is a new one, not the lower one that was there: it is no implicit parent but gets 0755
// root:root of its own, as an Applier gives it (in a tree it is opaque too, see newDir).
func (w *writer) implicitDir(rel string, fd int) error {
	w.made(rel)
	n := w.dirs.ensure(rel)
	n.meta, n.whiteout, n.link = nil, false, false
	if w.tree && n.hidden {
		n.bare = true
	} else {
		n.implicit = true
	}
	return w.newDir(n, fd)
}

// newDir: in a tree, a directory created where the layer had hidden lower contents (it
// replaced or deleted something there) must hide them still, so it is opaque.
func (w *writer) newDir(n *node, fd int) error {
	if !w.tree || !n.hidden || n.opaque {
		return nil
	}
	n.opaque = true
	return w.markOpaque(fd)
}

// removed is called after something at rel was removed from the target. In a tree, what is
// removed is the layer's own (an entry, or its whiteout device, which something of the layer
// replaces now): its lower contents stay hidden, and a whiteout there is no Whiteout any more
// (the layer has something at rel; a whiteout re-made at rel sets it again).
func (w *writer) removed(rel string, isDir bool) {
	if w.obs != nil {
		w.obsMu.Lock()
		w.obs.Removed(rel, isDir)
		w.obsMu.Unlock()
	}
	if isDir {
		w.dirs.cut(rel)
		w.walk.stale = true
		w.look.stale = true
	}
	if w.tree {
		n := w.dirs.ensure(rel)
		n.hidden, n.whiteout = true, false
	}
}

// wroteNonDir is called after a file, symlink, device or hardlink was written at rel (name in
// the directory dirfd).
func (w *writer) wroteNonDir(dirfd int, name, rel string) {
	if w.obs != nil && !isAUFSMeta(rel) {
		w.obsMu.Lock()
		w.obs.Wrote(dirfd, name, rel)
		w.obsMu.Unlock()
	}
	w.madeNonDir(rel)
}

// madeNonDir is wroteNonDir's bookkeeping, done when a file is handed to the pool.
func (w *writer) madeNonDir(rel string) {
	w.made(rel)
	if n := w.dirs.get(rel); n != nil {
		// A non-directory hides the lower path entirely: the layer's whiteout of it is moot, and
		// a Link made there before is replaced.
		n.whiteout, n.link = false, false
	}
}
