package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/internal/testtree"
)

// t0 is the mtime of every test entry unless it says otherwise.
var t0 = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

// ent is one tar entry of a test layer; the constructors are testtree's.
type ent = testtree.Ent

var (
	reg, dir, sym, hard = testtree.TarReg, testtree.TarDir, testtree.TarSym, testtree.TarHard
	chr, blk, fifo      = testtree.TarChr, testtree.TarBlk, testtree.TarFifo
	rawEnt              = testtree.TarRaw
)

// unpackOrApply unpacks layer into target as a tree (use "unpack") or applies it onto target
// with an Applier (use "apply").
func unpackOrApply(t testing.TB, use, target string, layer []byte) (Record, error) {
	t.Helper()
	if use == "unpack" {
		return Unpack(context.Background(), bytes.NewReader(layer), target)
	}
	return applyAll(t, target, [][]byte{layer})
}

// tarOf builds an uncompressed layer; "$OUT" stands for out.
func tarOf(t testing.TB, out string, ents []ent) []byte {
	t.Helper()
	return testtree.Layer(t, out, t0, ents)
}

// frag is a piece of data at an offset of a sparse file.
type frag = testtree.Frag

// env holds target directories and sentinels around them: files, a directory and symlinks
// beside and above the targets, which no layer may touch. Layout:
//
//	base/outside/{secret, dir/file, link -> secret}   ("$OUT" in test entries)
//	base/above/{beside, out -> ../outside}
//	base/above/<target>/                              (one per Unpack or Applier)
type env struct {
	base string
	out  string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	base := t.TempDir()
	e := &env{base: base, out: filepath.Join(base, "outside")}
	must(t, os.MkdirAll(filepath.Join(e.out, "dir"), 0o755))
	must(t, os.WriteFile(filepath.Join(e.out, "secret"), []byte("secret"), 0o600))
	must(t, os.WriteFile(filepath.Join(e.out, "dir", "file"), []byte("file"), 0o644))
	must(t, os.Symlink("secret", filepath.Join(e.out, "link")))
	must(t, os.MkdirAll(filepath.Join(base, "above"), 0o755))
	must(t, os.WriteFile(filepath.Join(base, "above", "beside"), []byte("beside"), 0o644))
	must(t, os.Symlink("../outside", filepath.Join(base, "above", "out")))
	must(t, os.Chmod(base, 0o755))
	t.Cleanup(func() {
		// Without root, read-only directories a test made must be opened up to be removed.
		filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return e
}

// target makes a new empty target directory.
func (e *env) target(t testing.TB, name string) string {
	t.Helper()
	d := filepath.Join(e.base, "above", name)
	must(t, os.Mkdir(d, 0o755))
	return d
}

// confined runs fn, which writes into target, and fails the test if anything else in the
// environment — sentinels and other targets alike — changed.
func (e *env) confined(t testing.TB, target string, fn func()) {
	t.Helper()
	before := e.others(t, target)
	fn()
	if d := diff(before, e.others(t, target)); d != "" {
		t.Errorf("something outside %s changed:\n%s", filepath.Base(target), d)
	}
}

func (e *env) others(t testing.TB, target string) []string {
	t.Helper()
	rel, _ := filepath.Rel(e.base, target)
	var lines []string
	for _, l := range listing(t, e.base, true) {
		if !strings.HasPrefix(l, rel+"/") && !strings.HasPrefix(l, rel+" ") {
			lines = append(lines, l)
		}
	}
	return lines
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// listing describes every path below root, one line each, in path order:
//
//	path type perm [uid:gid] [content | =first-hardlink | -> target | major:minor] [x:name=value...] [t=mtime]
//
// Content is quoted when short, else size and hash; an mtime equal to t0 is not shown; a
// recent one (an implicit directory) is "t=now".
func listing(t testing.TB, root string, owners bool) []string {
	t.Helper()
	var lines []string
	first := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		line, err := entryLine(t, p, rel, owners, first)
		if err != nil {
			return err
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// rootLine describes root itself as listing describes an entry, named ".".
func rootLine(t testing.TB, root string, owners bool) string {
	t.Helper()
	line, err := entryLine(t, root, ".", owners, map[uint64]string{})
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// entryLine is one line of listing: p, named rel; first maps the inodes of hardlinked files to
// the first path seen.
func entryLine(t testing.TB, p, rel string, owners bool, first map[uint64]string) (string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "", err
	}
	line := rel
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		line += " dir"
	case unix.S_IFREG:
		line += " file"
	case unix.S_IFLNK:
		line += " symlink"
	case unix.S_IFCHR:
		line += " char"
	case unix.S_IFBLK:
		line += " block"
	case unix.S_IFIFO:
		line += " fifo"
	default:
		line += " other"
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		line += fmt.Sprintf(" %04o", st.Mode&0o7777)
	}
	if owners {
		line += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if f, ok := first[st.Ino]; ok {
			line += " =" + f
			break
		}
		if st.Nlink > 1 {
			first[st.Ino] = rel
		}
		if st.Size > 64<<20 {
			line += fmt.Sprintf(" size=%d (not hashed)", st.Size)
			break
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		if len(b) <= 64 {
			line += fmt.Sprintf(" %q", b)
		} else {
			line += fmt.Sprintf(" size=%d sha=%x", len(b), sha256.Sum256(b))
		}
	case unix.S_IFLNK:
		to, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		line += fmt.Sprintf(" -> %q", to)
	case unix.S_IFCHR, unix.S_IFBLK:
		line += fmt.Sprintf(" %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	line += xattrs(t, p)
	mt := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	switch {
	case mt.Equal(t0):
	case time.Since(mt) < time.Hour:
		line += " t=now"
	default:
		line += " t=" + mt.UTC().Format(time.RFC3339Nano)
	}
	return line, nil
}

func xattrs(t testing.TB, p string) string {
	m := xattrMap(t, p)
	var names []string
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	var s string
	for _, name := range names {
		s += fmt.Sprintf(" x:%s=%q", name, m[name])
	}
	return s
}

func xattrMap(t testing.TB, p string) map[string]string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	m := map[string]string{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || name == "security.selinux" {
			continue
		}
		v := make([]byte, 64<<10)
		k, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		m[name] = string(v[:k])
	}
	return m
}

// diff shows the lines only in want (-) and only in got (+).
func diff(want, got []string) string {
	in := func(l []string) map[string]int {
		m := map[string]int{}
		for _, s := range l {
			m[s]++
		}
		return m
	}
	w, g := in(want), in(got)
	var out []string
	for _, s := range want {
		if g[s] == 0 {
			out = append(out, "- "+s)
		}
	}
	for _, s := range got {
		if w[s] == 0 {
			out = append(out, "+ "+s)
		}
	}
	return strings.Join(out, "\n")
}

// applyAll applies layers with an Applier onto dir.
func applyAll(t testing.TB, dir string, layers [][]byte) (Record, error) {
	t.Helper()
	a, err := NewApplier(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i, l := range layers {
		if err := a.Apply(context.Background(), bytes.NewReader(l)); err != nil {
			return Record{}, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return a.Finish()
}

// retar turns a tree and its Record back into a layer, in assembly's order (Links, whiteouts,
// opaque markers, then the tree's entries parents first, the root's "." first of all; implicit
// directories and overlay-form markers left out). Applying those layers with an Applier is a reference assembly: if it
// equals applying the original layers, the tree and Record hold everything the layer said.
func retar(t testing.TB, tree string, rec Record) []byte {
	t.Helper()
	var ents []ent
	for _, l := range rec.Links {
		ents = append(ents, hard(l.Name, l.Target))
	}
	wh := map[string]bool{}
	for _, p := range rec.Whiteouts {
		wh[p] = true
		d, b := split(p)
		ents = append(ents, reg(join(d, ".wh."+b), ""))
	}
	for _, p := range rec.Opaque {
		if p == "." {
			p = ""
		}
		ents = append(ents, reg(join(p, ".wh..wh..opq"), ""))
	}
	implicit := map[string]bool{}
	for _, p := range rec.Implicit {
		implicit[p] = true
	}
	first := map[uint64]string{}
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		if p == tree {
			rel = "." // the root's entry, unless it is implicit
		}
		h, _ := testtree.HeaderOf(t, p, rel, "trusted.overlay.")
		e := ent{Name: rel, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Mtime: h.ModTime, Link: h.Linkname,
			Major: h.Devmajor, Minor: h.Devminor, PAX: h.PAXRecords, Format: tar.FormatPAX}
		switch h.Typeflag {
		case tar.TypeDir:
			if implicit[rel] {
				return nil
			}
		case tar.TypeReg:
			ino := testtree.Stat(t, p).Ino
			if f, ok := first[ino]; ok {
				ents = append(ents, hard(rel, f))
				return nil
			}
			first[ino] = rel
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Body = string(b)
		case tar.TypeChar, tar.TypeBlock:
			if wh[rel] && h.Devmajor == 0 && h.Devminor == 0 {
				return nil
			}
		}
		ents = append(ents, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tarOf(t, "", ents)
}
