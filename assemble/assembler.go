package assemble

import (
	"context"
	"errors"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// assembler is one assembly in progress: the destination, its directory metadata, and the
// state of the tree being added.
type assembler struct {
	root     int      // the destination's descriptor
	top      *node    // the destination's root directory
	rootMeta *dirMeta // the root's metadata: the topmost tree's that does not list "." implicit
	copy     bool     // copy files instead of linking them
	copyDirs bool     // copy the regular files below CopiedDirs
	euid     int
	buf      []byte    // getdents buffer
	copyBuf  []byte    // read/write buffer for copies that neither reflink nor copy_file_range can do
	pool     *walkPool // the walkers of the tree being linked (nil: none, walk on this goroutine)

	// The tree being added. A tree's directories are walked by several goroutines (walkers,
	// shallow copies of the assembler with buffers of their own) when linking: these fields are
	// read-only during the walk, or shared behind copyMu.
	tree      *Tree
	crossDev  *atomic.Bool               // a link failed with EXDEV: copy the rest of the tree
	whiteouts map[string]map[string]bool // parent dir → names whited out in it
	implicit  map[string]bool
	held      string            // the private directory of the tree's held Links, at the root ("": none)
	linkDirs  map[string]bool   // directories this tree's Links made as parents of their names (destination paths)
	follows   *follows          // directories of the tree whose destination is a symlink to follow
	copies    map[fileID]string // this tree's multiply-linked files → their first copy (copyMu)
	copyMu    *sync.Mutex       // held by a walker while it copies a multiply-linked file
}

// start opens dir for an Assembly: Hardlink (copy false) or Copy (copy true).
func start(dir string, mode fileMode) (*Assembly, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("assemble: %w", pathErr("open", dir, err))
	}
	a := &assembler{
		root: root, top: &node{}, copy: mode == copyAll, copyDirs: mode == linkMost,
		euid: os.Geteuid(), buf: make([]byte, disk.BufSize),
	}
	return &Assembly{a: a, dir: dir}, nil
}

func (a *assembler) close() { unix.Close(a.root) }

// addTree applies one tree in the order of the layer.Record contract, which is what makes the
// result equal to applying the layer's tar directly: (1) its Links' targets are held, as the
// lower layers left them; (2) its whiteouts; (3) its opaque directories; (4) its Links are put
// at their names; (5) its own entries, parents first. first says the destination is still
// empty, so entries need no look before they are made.
func (a *assembler) addTree(ctx context.Context, t *Tree, first bool) error {
	a.begin(t)
	held, err := a.holdLinks(t.Links)
	if err != nil {
		return err
	}
	for _, p := range t.Whiteouts {
		if err := a.whiteout(p); err != nil {
			a.releaseLinks(held)
			return err
		}
	}
	for _, p := range t.Opaque {
		if err := a.opaque(p); err != nil {
			a.releaseLinks(held)
			return err
		}
	}
	if held >= 0 {
		if err := a.placeLinks(held, t.Links); err != nil {
			return err
		}
	}

	tfd, err := a.openTree(t)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	if err := a.walkTree(ctx, tfd, first && len(t.Links) == 0); err != nil {
		return err
	}
	return a.addFollowed(ctx, tfd)
}

// begin sets up the state of adding the tree t.
func (a *assembler) begin(t *Tree) {
	a.tree, a.crossDev, a.copies, a.copyMu = t, new(atomic.Bool), map[fileID]string{}, new(sync.Mutex)
	a.whiteouts = make(map[string]map[string]bool)
	for _, p := range t.Whiteouts {
		dir, name := splitLast(p)
		if a.whiteouts[dir] == nil {
			a.whiteouts[dir] = make(map[string]bool)
		}
		a.whiteouts[dir][name] = true
	}
	a.implicit = make(map[string]bool, len(t.Implicit))
	for _, p := range t.Implicit {
		a.implicit[p] = true
	}
	a.linkDirs, a.follows = nil, &follows{}
}

// openTree opens the tree's directory and takes the root's metadata from it, unless the tree
// marks "." implicit.
func (a *assembler) openTree(t *Tree) (int, error) {
	tfd, err := unix.Open(t.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, pathErr("open", t.Dir, err)
	}
	if !a.implicit["."] {
		if a.rootMeta, err = readMeta(tfd); err != nil {
			unix.Close(tfd)
			return -1, pathErr("stat", t.Dir, err)
		}
	}
	return tfd, nil
}

// walkTree adds the entries of the tree's root directory tfd to the destination's root, walking
// directories on as many goroutines as there are CPUs: the kernel's work for a link, and the
// reads and writes of a copy, run in parallel.
func (a *assembler) walkTree(ctx context.Context, tfd int, fresh bool) error {
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 {
		return a.walkDir(ctx, tfd, a.root, ".", ".", a.top, fresh)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p := &walkPool{tasks: make(chan walkTask, 4*workers), cancel: cancel}
	p.pending.Add(1)
	p.tasks <- walkTask{tfd: -1, fresh: fresh} // the root: its descriptors belong to the caller
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := *a
			w.pool, w.buf, w.copyBuf = p, make([]byte, disk.BufSize), nil
			for t := range p.tasks {
				if t.tfd < 0 {
					p.done(w.walkDir(ctx, tfd, a.root, ".", ".", a.top, t.fresh))
				} else {
					p.done(w.walkDir(ctx, t.tfd, t.dfd, t.rel, t.drel, t.n, t.fresh))
					unix.Close(t.tfd)
					unix.Close(t.dfd)
				}
			}
		}()
	}
	p.pending.Wait()
	close(p.tasks)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// walkPool hands directories to the walkers of one tree.
type walkPool struct {
	tasks   chan walkTask
	pending sync.WaitGroup // tasks not yet done
	cancel  context.CancelCauseFunc
}

// walkTask is one directory to walk: walkDir's arguments. The walker closes tfd and dfd.
type walkTask struct {
	tfd, dfd  int
	rel, drel string
	n         *node
	fresh     bool
}

// done ends a task; its error (the first) stops the others.
func (p *walkPool) done(err error) {
	if err != nil {
		p.cancel(err)
	}
	p.pending.Done()
}

// hand passes a directory to another walker if one can take it now, and reports whether it did.
func (p *walkPool) hand(t walkTask) bool {
	p.pending.Add(1)
	select {
	case p.tasks <- t:
		return true
	default:
		p.pending.Done()
		return false
	}
}

// walkDir adds the entries of the tree directory tfd (at rel in the tree) to the destination
// directory dfd (at drel, which is rel unless a symlink was followed on the way), whose node is n.
// fresh says dfd was just made, so its entries are created without looking first.
func (a *assembler) walkDir(ctx context.Context, tfd, dfd int, rel, drel string, n *node, fresh bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := disk.ReadDir(tfd, a.buf)
	if err != nil {
		return pathErr("read", rel, err)
	}
	wh := a.whiteouts[rel]
	for _, e := range ents {
		if wh[e.Name] {
			skip, err := isWhiteoutDevice(tfd, e.Name)
			if err != nil {
				return pathErr("stat", joinPath(rel, e.Name), err)
			}
			if skip {
				continue
			}
		}
		typ := e.Type
		if typ == unix.DT_UNKNOWN {
			if typ, err = statType(tfd, e.Name); err != nil {
				return pathErr("stat", joinPath(rel, e.Name), err)
			}
		}
		if typ == unix.DT_DIR {
			err = a.addDir(ctx, tfd, dfd, e.Name, joinPath(rel, e.Name), joinPath(drel, e.Name), n, fresh)
		} else {
			err = a.addFile(tfd, dfd, e.Name, typ, drel, n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// addDir adds the tree directory name (at rel in the tree, drel in the destination) to the
// destination directory dfd (node parent) and walks it. A non-directory in the way is replaced,
// but for a symlink in the way of a directory the tree has only as a parent (implicit): that is
// followed, and the directory's entries go where it leads once the rest of the tree is added
// (see addFollowed). The directory's metadata is taken from this tree unless the tree marks it
// implicit and a lower layer made it (a directory made new on the way to one of this tree's
// Links takes the tree's, which is 0755 root:root too when the tree marks it implicit, with
// times that do not depend on when assembly ran).
func (a *assembler) addDir(ctx context.Context, tfd, dfd int, name, rel, drel string, parent *node, fresh bool) error {
	follow := a.implicit[rel] && !a.linkDirs[drel]
	cdfd, created, err := destDir(dfd, name, fresh, follow)
	if err == errFollow {
		a.follows.add(followed{rel: rel, link: drel})
		return nil
	}
	if err != nil {
		return pathErr("mkdir", drel, err)
	}
	ctfd, err := disk.OpenDir(tfd, name)
	if err != nil {
		unix.Close(cdfd)
		return pathErr("open", rel, err)
	}
	// The node of a directory is changed only by the walker of its parent (here) and then by
	// the one walking the directory: nodes need no lock.
	n := parent.children[name]
	if created || n == nil {
		n = parent.add(name)
	}
	if created || !a.implicit[rel] || a.linkDirs[drel] {
		if n.meta, err = readMeta(ctfd); err != nil {
			unix.Close(ctfd)
			unix.Close(cdfd)
			return pathErr("stat", rel, err)
		}
	}
	if a.pool != nil && a.pool.hand(walkTask{tfd: ctfd, dfd: cdfd, rel: rel, drel: drel, n: n, fresh: created}) {
		return nil
	}
	defer unix.Close(ctfd)
	defer unix.Close(cdfd)
	return a.walkDir(ctx, ctfd, cdfd, rel, drel, n, created)
}

// destDir opens the directory name in dfd, making it first if it is missing and replacing a
// symlink or other non-directory that is in the way — but a symlink is errFollow when follow is
// set. It reports whether it made the directory.
func destDir(dfd int, name string, fresh, follow bool) (fd int, created bool, err error) {
	if !fresh {
		fd, err = disk.OpenDir(dfd, name)
		switch {
		case err == nil:
			return fd, false, nil
		case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
			if follow {
				if typ, serr := statType(dfd, name); serr == nil && typ == unix.DT_LNK {
					return -1, false, errFollow
				}
			}
			if err := unix.Unlinkat(dfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				return -1, false, err
			}
		case !errors.Is(err, unix.ENOENT):
			return -1, false, err
		}
	}
	err = unix.Mkdirat(dfd, name, 0o700)
	if errors.Is(err, unix.EEXIST) && fresh {
		return destDir(dfd, name, false, follow)
	}
	if err != nil {
		return -1, false, err
	}
	fd, err = disk.OpenDir(dfd, name)
	return fd, true, err
}

// addFile links (or copies) the tree's non-directory name into the destination directory dfd,
// replacing whatever is there.
func (a *assembler) addFile(tfd, dfd int, name string, typ uint8, rel string, n *node) error {
	if a.copy || a.crossDev.Load() || a.copyDirs && typ == unix.DT_REG && copied(rel) {
		return a.copyEntry(tfd, name, dfd, name, typ, rel, n)
	}
	err := unix.Linkat(tfd, name, dfd, name, 0)
	if errors.Is(err, unix.EEXIST) {
		if err = a.clear(dfd, name, n); err == nil {
			err = unix.Linkat(tfd, name, dfd, name, 0)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EXDEV):
		a.crossDev.Store(true)
		return a.copyEntry(tfd, name, dfd, name, typ, rel, n)
	case errors.Is(err, unix.EMLINK):
		return a.copyEntry(tfd, name, dfd, name, typ, rel, n)
	}
	return pathErr("link", joinPath(rel, name), err)
}

// clear removes name from the destination directory dfd (node n), subtree and all.
func (a *assembler) clear(dfd int, name string, n *node) error {
	err := unix.Unlinkat(dfd, name, 0)
	if errors.Is(err, unix.EISDIR) {
		n.forget(name)
		err = disk.RemoveAt(dfd, name, unix.DT_DIR, a.buf)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// isWhiteoutDevice reports whether name in dirfd is an overlay whiteout: a 0/0 character device.
func isWhiteoutDevice(dirfd int, name string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, err
	}
	return disk.IsWhiteout(&st), nil
}

// splitLast splits a checked path into its parent directory ("." at the top) and last component.
func splitLast(p string) (dir, name string) {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i], p[i+1:]
		}
	}
	return ".", p
}

// copied reports whether the destination directory rel is one of CopiedDirs or below one.
func copied(rel string) bool {
	for _, d := range CopiedDirs {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}
