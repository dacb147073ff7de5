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

	// Applier, per layer: every path the layer wrote or walked through, and its opaque dirs.
	written map[string]struct{}
	opaque  []string
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
func (w *writer) layer(ctx context.Context, r io.Reader) error {
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
			return fmt.Errorf("%s: %w", display(hdr.Name), err)
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read tar: %w", err)
	}
	return nil
}

// entry writes one tar entry.
func (w *writer) entry(ctx context.Context, hdr *tar.Header, r io.Reader) error {
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
		return nil // the target directory itself: its metadata is the caller's
	}
	if err := checkPath(rel); err != nil {
		return err
	}
	kind, target, err := classify(rel)
	if err != nil {
		return err
	}
	w.rec.Files++
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
	dir, name := split(rel)
	dirfd, owned, err := w.walk.dir(dir)
	if err != nil {
		return err
	}
	if owned {
		defer unix.Close(dirfd)
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
		return w.file(ctx, dirfd, rel, name, r, hdr.Size, &m)
	}
}

func deviceWhat(hdr *tar.Header) string {
	kind := "char"
	if hdr.Typeflag == tar.TypeBlock {
		kind = "block"
	}
	return fmt.Sprintf("%s device %d:%d", kind, hdr.Devmajor, hdr.Devminor)
}

func (w *writer) unapplied(rel, what string) {
	w.rec.Unapplied = append(w.rec.Unapplied, Unapplied{Path: rel, What: what})
}

// visited is called for every directory a walk opens on the way to an entry.
func (w *writer) visited(rel string) {
	if w.written != nil {
		w.written[rel] = struct{}{}
	}
}

// implicitDir is called when a walk has created the directory rel (fd) as a parent.
func (w *writer) implicitDir(rel string, fd int) error {
	w.visited(rel)
	n := w.dirs.ensure(rel)
	n.implicit = true
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

// removed is called after something at rel was removed from the target.
func (w *writer) removed(rel string, isDir bool) {
	if isDir {
		w.dirs.cut(rel)
		w.walk.stale = true
		w.look.stale = true
	}
	if w.tree {
		w.dirs.ensure(rel).hidden = true
	}
}

// wroteNonDir is called after a file, symlink, device or hardlink was written at rel.
func (w *writer) wroteNonDir(rel string) {
	w.visited(rel)
	if n := w.dirs.get(rel); n != nil {
		// A non-directory hides the lower path entirely: the layer's whiteout of it is moot,
		// and dropping it keeps assembly (which makes Links before whiteouts) right.
		n.whiteout = false
	}
}
