package assemble

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	caslayer "github.com/rootsdev/roots/cas/layer"
)

// Times given to entries: t0 by default, tImplicit to the parents a layer did not name.
var (
	t0        = time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	t1        = time.Date(2011, 12, 13, 14, 15, 16, 17, time.UTC)
	tImplicit = time.Date(1999, 9, 9, 9, 9, 9, 9, time.UTC)
)

type kind int

const (
	kDir kind = iota
	kFile
	kSymlink
	kWhiteout // 0/0 character device, listed in Whiteouts
	kChar
	kFifo
	kHardlink // in a layer: a hardlink within the tree; in a want: same inode as data
	kImplicit // a directory that is only a parent
)

func (k kind) String() string {
	return [...]string{"dir", "file", "symlink", "whiteout", "char", "fifo", "hardlink", "implicit dir"}[k]
}

// ent is one entry of a layer, or of the expected destination.
type ent struct {
	path      string
	kind      kind
	mode      uint32 // permission bits
	data      string // file content, symlink target, hardlink target
	uid, gid  int
	rdev      uint64
	xattrs    map[string]string
	mtime     time.Time // zero: t0
	anyTime   bool
	anyXattrs bool
}

func dir(p string, mode uint32) ent { return ent{path: p, kind: kDir, mode: mode} }
func idir(p string) ent             { return ent{path: p, kind: kImplicit} }
func file(p string, mode uint32, data string) ent {
	return ent{path: p, kind: kFile, mode: mode, data: data}
}
func symlink(p, target string) ent   { return ent{path: p, kind: kSymlink, data: target} }
func wh(p string) ent                { return ent{path: p, kind: kWhiteout} }
func fifo(p string, mode uint32) ent { return ent{path: p, kind: kFifo, mode: mode} }
func hardlink(p, target string) ent  { return ent{path: p, kind: kHardlink, data: target} }
func chr(p string, mode, major, minor uint32) ent {
	return ent{path: p, kind: kChar, mode: mode, rdev: unix.Mkdev(major, minor)}
}

func (e ent) own(uid, gid int) ent { e.uid, e.gid = uid, gid; return e }
func (e ent) at(t time.Time) ent   { e.mtime = t; return e }
func (e ent) xattr(name, value string) ent {
	m := map[string]string{name: value}
	for k, v := range e.xattrs {
		m[k] = v
	}
	e.xattrs = m
	return e
}

func (e ent) time() time.Time {
	if e.mtime.IsZero() {
		return t0
	}
	return e.mtime
}

// layer describes one tree to build.
type layer struct {
	ents      []ent
	opaque    []string
	whiteouts []string // whiteouts without a device (the form a non-root unpack records)
	links     []Link
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it makes device nodes, sets owners and trusted.* xattrs (CI runs as root)")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// buildTree makes the tree of l in dir the way the cache holds one. "$OUT" in a symlink target
// stands for out.
func buildTree(t *testing.T, dir string, l layer, out string) Tree {
	t.Helper()
	tree := Tree{Dir: dir, Record: caslayer.Record{Opaque: l.opaque, Links: l.links}}
	must(t, os.MkdirAll(dir, 0o755))
	explicit := map[string]ent{}
	for _, e := range l.ents {
		p := filepath.Join(dir, e.path)
		if e.path != "." {
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		}
		switch e.kind {
		case kDir:
			explicit[e.path] = e
			must(t, os.MkdirAll(p, 0o755))
		case kImplicit:
			must(t, os.MkdirAll(p, 0o755))
		case kFile:
			must(t, os.WriteFile(p, []byte(e.data), 0o600))
		case kSymlink:
			must(t, os.Symlink(strings.ReplaceAll(e.data, "$OUT", out), p))
		case kWhiteout:
			must(t, unix.Mknod(p, unix.S_IFCHR, 0))
			tree.Whiteouts = append(tree.Whiteouts, e.path)
		case kChar:
			must(t, unix.Mknod(p, unix.S_IFCHR|e.mode, int(e.rdev)))
		case kFifo:
			must(t, unix.Mkfifo(p, e.mode))
		case kHardlink:
			must(t, os.Link(filepath.Join(dir, e.data), p))
		}
	}
	tree.Whiteouts = append(tree.Whiteouts, l.whiteouts...)
	for _, e := range l.ents {
		if e.kind == kDir || e.kind == kImplicit || e.kind == kHardlink || e.kind == kWhiteout {
			continue
		}
		p := filepath.Join(dir, e.path)
		setMetaForTest(t, p, e)
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, times(e.time()), unix.AT_SYMLINK_NOFOLLOW))
	}
	for _, o := range l.opaque {
		if fi, err := os.Lstat(filepath.Join(dir, o)); err == nil && fi.IsDir() {
			must(t, unix.Lsetxattr(filepath.Join(dir, o), "trusted.overlay.opaque", []byte("y"), 0))
		}
	}
	// Directories last, deepest first; those the layer did not name are implicit.
	var dirs []string
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			dirs = append(dirs, rel)
		}
		return err
	}))
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, rel := range dirs {
		p := filepath.Join(dir, rel)
		e, ok := explicit[rel]
		if !ok {
			tree.Implicit = append(tree.Implicit, rel)
			e = ent{mode: 0o755, mtime: tImplicit}
		}
		setMetaForTest(t, p, e)
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, times(e.time()), unix.AT_SYMLINK_NOFOLLOW))
	}
	return tree
}

func setMetaForTest(t *testing.T, p string, e ent) {
	t.Helper()
	must(t, os.Lchown(p, e.uid, e.gid))
	if e.kind != kSymlink {
		must(t, unix.Chmod(p, e.mode))
	}
	for k, v := range e.xattrs {
		must(t, unix.Lsetxattr(p, k, []byte(v), 0))
	}
}

func times(t time.Time) []unix.Timespec {
	ts := unix.NsecToTimespec(t.UnixNano())
	return []unix.Timespec{ts, ts}
}

// got is one entry of an assembled destination.
type got struct {
	kind     kind
	mode     uint32
	uid, gid uint32
	size     int64
	data     string
	rdev     uint64
	mtime    time.Time
	dev, ino uint64
	xattrs   map[string]string
}

// snapshot reads every entry below root ("." included) without following symlinks.
func snapshot(t *testing.T, root string) map[string]got {
	t.Helper()
	m := map[string]got{}
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		must(t, unix.Lstat(p, &st))
		g := got{mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, size: st.Size, rdev: uint64(st.Rdev),
			mtime: time.Unix(st.Mtim.Unix()).UTC(), dev: uint64(st.Dev), ino: uint64(st.Ino), xattrs: readXattrsForTest(t, p)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			g.kind = kDir
		case unix.S_IFREG:
			g.kind = kFile
			b, err := os.ReadFile(p)
			must(t, err)
			g.data = string(b)
		case unix.S_IFLNK:
			g.kind = kSymlink
			g.data, err = os.Readlink(p)
			must(t, err)
		case unix.S_IFCHR:
			g.kind = kChar
		case unix.S_IFIFO:
			g.kind = kFifo
		}
		m[rel] = g
		return nil
	}))
	return m
}

func readXattrsForTest(t *testing.T, p string) map[string]string {
	t.Helper()
	xs, err := linkXattrsAll(p)
	must(t, err)
	if len(xs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, x := range xs {
		m[x.name] = string(x.value)
	}
	return m
}

// linkXattrsAll is linkXattrs without the overlay filter, so tests see markers that leaked.
func linkXattrsAll(p string) ([]xattr, error) {
	n, err := unix.Llistxattr(p, nil)
	if err != nil || n == 0 {
		return nil, err
	}
	buf := make([]byte, n)
	n, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var xs []xattr
	for _, name := range bytes.Split(bytes.TrimRight(buf[:n], "\x00"), []byte{0}) {
		v := make([]byte, 4096)
		m, err := unix.Lgetxattr(p, string(name), v)
		if err != nil {
			return nil, err
		}
		xs = append(xs, xattr{name: string(name), value: v[:m]})
	}
	return xs, nil
}

// compare checks that the destination holds exactly want (plus "." as a 0755 dir unless want
// names it): type, mode, owner, content, link target, device number, mtime, xattrs, and for
// kHardlink wants the inode of the named entry.
func compare(t *testing.T, dest map[string]got, want []ent) {
	t.Helper()
	wants := map[string]ent{".": {path: ".", kind: kDir, mode: 0o755, anyTime: true}}
	for _, w := range want {
		wants[w.path] = w
	}
	for p, w := range wants {
		g, ok := dest[p]
		if !ok {
			t.Errorf("%s: missing, want %s", p, w.kind)
			continue
		}
		wk := w.kind
		if wk == kHardlink {
			target, ok := dest[w.data]
			switch {
			case !ok:
				t.Errorf("%s: hardlink target %s missing", p, w.data)
			case g.dev != target.dev || g.ino != target.ino:
				t.Errorf("%s: inode %d, want the inode of %s (%d)", p, g.ino, w.data, target.ino)
			}
			continue
		}
		if g.kind != wk {
			t.Errorf("%s: is a %s, want a %s", p, g.kind, wk)
			continue
		}
		if wk != kSymlink && g.mode != w.mode {
			t.Errorf("%s: mode %04o, want %04o", p, g.mode, w.mode)
		}
		if int(g.uid) != w.uid || int(g.gid) != w.gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, g.uid, g.gid, w.uid, w.gid)
		}
		if (wk == kFile || wk == kSymlink) && g.data != w.data {
			t.Errorf("%s: data %q, want %q", p, g.data, w.data)
		}
		if wk == kFile && g.size != int64(len(w.data)) {
			t.Errorf("%s: size %d, want %d", p, g.size, len(w.data))
		}
		if wk == kChar && g.rdev != w.rdev {
			t.Errorf("%s: device %x, want %x", p, g.rdev, w.rdev)
		}
		if !w.anyTime && !g.mtime.Equal(w.time()) {
			t.Errorf("%s: mtime %v, want %v", p, g.mtime, w.time())
		}
		if !w.anyXattrs && !equalXattrs(g.xattrs, w.xattrs) {
			t.Errorf("%s: xattrs %v, want %v", p, g.xattrs, w.xattrs)
		}
	}
	for p, g := range dest {
		if _, ok := wants[p]; !ok {
			t.Errorf("%s: unexpected %s in the destination", p, g.kind)
		}
	}
}

func equalXattrs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// treeInodes collects the inodes of every non-directory in the trees.
func treeInodes(t *testing.T, trees []Tree) map[[2]uint64]string {
	t.Helper()
	m := map[[2]uint64]string{}
	for _, tr := range trees {
		must(t, filepath.WalkDir(tr.Dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			var st unix.Stat_t
			must(t, unix.Lstat(p, &st))
			m[[2]uint64{uint64(st.Dev), uint64(st.Ino)}] = p
			return nil
		}))
	}
	return m
}

// mountTmpfs mounts a tmpfs on a new directory (unmounted at cleanup): a second file system.
func mountTmpfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount a tmpfs for the cross-device test: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
