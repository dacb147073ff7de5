package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/internal/testtree"
)

// tNano is a sub-second mtime, which only PAX holds.
var tNano = time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)

// longName is a file name that makes its path longer than ustar's 100 bytes.
var longName = strings.Repeat("n", 150)

// exportSource makes the source tree of the export tests in root, one entry of every kind an
// image holds (and a socket, which it cannot), and returns the changes that write all of it:
// each path a Write, "opq" an Opaque, and Deletes of "gone" and "dir/gone2".
func exportSource(t *testing.T, root string) []Change {
	t.Helper()
	layer := tarOf(t, "", []ent{
		dir(".").M(0o755),
		reg("bigids", "b").O(3000000, 3000001),
		blk("blk", 8, 1).M(0o660),
		chr("chr", 1, 3).M(0o620),
		dir("dir").M(0o750).O(1, 2),
		reg("dir/sub", "sub"),
		reg("empty", "").M(0o600),
		fifo("fifo").M(0o640),
		reg("file", "hello"),
		reg("hard1", "linked"),
		hard("hard2", "hard1"),
		reg("ids", "i").O(70000, 70001),
		dir("long"),
		reg("long/"+longName, "l"),
		reg("nano", "n").T(tNano).F(tar.FormatPAX),
		dir("opq"),
		reg("opq/new", "new"),
		dir("ovl").X("user.keep", "1"),
		reg("setuid", "s").M(0o4755),
		sym("sym", "../elsewhere/x"),
		reg("xattr", "x").X("user.test", "v").X("security.capability", capNetBind),
	})
	if _, err := applyAll(t, root, [][]byte{layer}); err != nil {
		t.Fatal(err)
	}
	// What an image never holds: overlayfs' own attributes, and a socket.
	must(t, unix.Lsetxattr(filepath.Join(root, "ovl"), "trusted.overlay.opaque", []byte("y"), 0))
	must(t, unix.Lsetxattr(filepath.Join(root, "ovl"), "user.overlay.x", []byte("1"), 0))
	must(t, unix.Mknod(filepath.Join(root, "sock"), unix.S_IFSOCK|0o755, 0))
	must(t, unix.UtimesNano(root, []unix.Timespec{unix.NsecToTimespec(t0.UnixNano()), unix.NsecToTimespec(t0.UnixNano())}))
	changes := []Change{{".", Write}, {"gone", Delete}, {"dir/gone2", Delete}}
	for p := range testtree.Scan(t, root) {
		k := Write
		if p == "opq" {
			k = Opaque
		}
		changes = append(changes, Change{p, k})
	}
	return changes
}

// exportBase is the rootfs the exported layer goes onto: what the Deletes and the Opaque remove,
// and older versions of some files.
func exportBase(t *testing.T) []byte {
	return tarOf(t, "", []ent{
		reg("gone", "gone"),
		dir("dir"),
		reg("dir/gone2", "gone2"),
		reg("dir/sub", "old sub"),
		dir("opq"),
		reg("opq/old1", "1"),
		reg("opq/old2", "2"),
		reg("file", "old"),
		dir("hard2"), // a directory that the hardlink replaces
		reg("hard2/below", "b"),
	})
}

func exportOf(t *testing.T, root string, changes []Change) ([]byte, Exported) {
	t.Helper()
	var buf bytes.Buffer
	got, err := Export(context.Background(), &buf, root, changes)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return buf.Bytes(), got
}

// wantHdr is what a test expects of one tar header.
type wantHdr struct {
	name         string
	typ          byte
	mode         int64
	uid, gid     int
	body         string
	link         string
	major, minor int64
	mtime        time.Time // zero: t0
	xattrs       map[string]string
	pax          bool
}

func whdr(name string, typ byte, mode int64) wantHdr {
	return wantHdr{name: name, typ: typ, mode: mode}
}

// markerHdr is a whiteout or opaque marker: an empty file, mode 0, mtime the epoch.
func markerHdr(name string) wantHdr {
	return wantHdr{name: name, typ: tar.TypeReg, mtime: time.Unix(0, 0)}
}

func (w wantHdr) own(uid, gid int) wantHdr           { w.uid, w.gid = uid, gid; return w }
func (w wantHdr) data(body string) wantHdr           { w.body = body; return w }
func (w wantHdr) usePAX() wantHdr                    { w.pax = true; return w }
func (w wantHdr) x(xattrs map[string]string) wantHdr { w.xattrs = xattrs; w.pax = true; return w }

// TestExportHeaders: every kind of entry, in order, with every header field; markers for
// Delete and Opaque; the socket skipped; overlayfs attributes left out.
func TestExportHeaders(t *testing.T) {
	requireRootExport(t)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o755))
	changes := exportSource(t, src)
	b, got := exportOf(t, src, changes)

	want := []wantHdr{
		whdr("./", tar.TypeDir, 0o755),
		whdr("bigids", tar.TypeReg, 0o644).own(3000000, 3000001).data("b").usePAX(),
		{name: "blk", typ: tar.TypeBlock, mode: 0o660, major: 8, minor: 1},
		{name: "chr", typ: tar.TypeChar, mode: 0o620, major: 1, minor: 3},
		whdr("dir/", tar.TypeDir, 0o750).own(1, 2),
		markerHdr("dir/.wh.gone2"),
		whdr("dir/sub", tar.TypeReg, 0o644).data("sub"),
		whdr("empty", tar.TypeReg, 0o600),
		whdr("fifo", tar.TypeFifo, 0o640),
		whdr("file", tar.TypeReg, 0o644).data("hello"),
		markerHdr(".wh.gone"),
		whdr("hard1", tar.TypeReg, 0o644).data("linked"),
		{name: "hard2", typ: tar.TypeLink, mode: 0o644, link: "hard1"},
		whdr("ids", tar.TypeReg, 0o644).own(70000, 70001).data("i"),
		whdr("long/", tar.TypeDir, 0o755),
		whdr("long/"+longName, tar.TypeReg, 0o644).data("l").usePAX(),
		{name: "nano", typ: tar.TypeReg, mode: 0o644, body: "n", mtime: tNano, pax: true},
		whdr("opq/", tar.TypeDir, 0o755),
		markerHdr("opq/.wh..wh..opq"),
		whdr("opq/new", tar.TypeReg, 0o644).data("new"),
		whdr("ovl/", tar.TypeDir, 0o755).x(map[string]string{"user.keep": "1"}),
		whdr("setuid", tar.TypeReg, 0o4755).data("s"),
		{name: "sym", typ: tar.TypeSymlink, mode: 0o777, link: "../elsewhere/x"},
		whdr("xattr", tar.TypeReg, 0o644).data("x").x(map[string]string{"user.test": "v", "security.capability": capNetBind}),
	}
	tr := tar.NewReader(bytes.NewReader(b))
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Errorf("%d entries, want %d", i, len(want))
			}
			break
		}
		must(t, err)
		if i >= len(want) {
			t.Errorf("entry %d: unexpected %q", i, h.Name)
			continue
		}
		body, err := io.ReadAll(tr)
		must(t, err)
		checkHeader(t, h, string(body), want[i])
	}
	wantOut := Exported{Entries: len(want), Files: 11, Bytes: int64(len("bsubhellolinkedilnnewsx")), Skipped: []string{"sock"}}
	if !reflect.DeepEqual(got, wantOut) {
		t.Errorf("Exported = %+v, want %+v", got, wantOut)
	}
}

func checkHeader(t *testing.T, h *tar.Header, body string, w wantHdr) {
	t.Helper()
	mtime := w.mtime
	if mtime.IsZero() {
		mtime = t0
	}
	format := tar.FormatUSTAR
	if w.pax {
		format = tar.FormatPAX
	}
	var xattrs map[string]string
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattr); ok {
			if xattrs == nil {
				xattrs = map[string]string{}
			}
			xattrs[name] = v
		}
	}
	type fields struct {
		Name, Link, Uname, Gname, Body string
		Type                           byte
		Mode                           int64
		UID, GID                       int
		Size, Major, Minor             int64
		Mtime                          string
		Atime, Ctime                   bool
		Xattrs                         map[string]string
		Format                         tar.Format
	}
	got := fields{h.Name, h.Linkname, h.Uname, h.Gname, body, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size,
		h.Devmajor, h.Devminor, h.ModTime.UTC().Format(time.RFC3339Nano), !h.AccessTime.IsZero(), !h.ChangeTime.IsZero(), xattrs, h.Format}
	want := fields{w.name, w.link, "", "", w.body, w.typ, w.mode, w.uid, w.gid, int64(len(w.body)),
		w.major, w.minor, mtime.UTC().Format(time.RFC3339Nano), false, false, w.xattrs, format}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", w.name, got, want)
	}
}

// TestExportRoundTrip: the layer that Export writes, applied onto the base rootfs (Applier) or
// unpacked as a tree (Unpack), gives back the source, every aspect of every entry.
func TestExportRoundTrip(t *testing.T) {
	requireRootExport(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	must(t, os.Mkdir(src, 0o755))
	changes := exportSource(t, src)
	b, _ := exportOf(t, src, changes)
	scan := func(dir string) map[string]testtree.Entry {
		return testtree.Scan(t, dir, testtree.WithRoot(), testtree.SkipXattrs("trusted.overlay."), testtree.SkipXattrs("user.overlay."))
	}
	want := scan(src)
	delete(want, "sock") // a tar cannot hold it

	t.Run("Applier", func(t *testing.T) {
		rootfs := filepath.Join(tmp, "rootfs")
		must(t, os.Mkdir(rootfs, 0o755))
		if _, err := applyAll(t, rootfs, [][]byte{exportBase(t), b}); err != nil {
			t.Fatal(err)
		}
		for _, d := range testtree.Diff(want, scan(rootfs)) {
			t.Error(d)
		}
	})
	t.Run("Unpack", func(t *testing.T) {
		tree := filepath.Join(tmp, "tree")
		must(t, os.Mkdir(tree, 0o755))
		rec, err := Unpack(context.Background(), bytes.NewReader(b), tree)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rec.Whiteouts, []string{"dir/gone2", "gone"}) || !reflect.DeepEqual(rec.Opaque, []string{"opq"}) {
			t.Errorf("Record whiteouts %q, opaque %q; want [dir/gone2 gone], [opq]", rec.Whiteouts, rec.Opaque)
		}
		got := scan(tree)
		delete(got, "gone") // the whiteout devices
		delete(got, "dir/gone2")
		for _, d := range testtree.Diff(want, got) {
			t.Error(d)
		}
	})
}

// TestExportDeterministic: the same changes, in any order, give the same bytes.
func TestExportDeterministic(t *testing.T) {
	requireRootExport(t)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o755))
	changes := exportSource(t, src)
	first, _ := exportOf(t, src, changes)
	for i := range 3 {
		shuffled := append([]Change(nil), changes...)
		rand.New(rand.NewSource(int64(i))).Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if again, _ := exportOf(t, src, shuffled); !bytes.Equal(first, again) {
			t.Fatalf("export %d differs from the first (%d and %d bytes)", i+1, len(again), len(first))
		}
	}
}

// TestExportConfined: a path below a symlink planted in the source is an error, never followed
// out of it; a symlink itself is written as a link, not followed.
func TestExportConfined(t *testing.T) {
	tmp := t.TempDir()
	src, out := filepath.Join(tmp, "src"), filepath.Join(tmp, "outside")
	must(t, os.MkdirAll(filepath.Join(src, "real"), 0o755))
	must(t, os.MkdirAll(out, 0o755))
	must(t, os.WriteFile(filepath.Join(out, "secret"), []byte("SECRET-OUTSIDE"), 0o644))
	must(t, os.Symlink("/etc", filepath.Join(src, "etc")))
	must(t, os.Symlink("../outside", filepath.Join(src, "up")))
	must(t, os.Symlink("../../outside", filepath.Join(src, "real", "deep")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(src, "pw")))
	tests := []struct {
		name    string
		changes []Change
		err     error // nil: succeeds
	}{
		{"AbsoluteSymlinkParent", []Change{{"etc/passwd", Write}}, unix.ENOTDIR},
		{"RelativeSymlinkParentOut", []Change{{"up/secret", Write}}, unix.ENOTDIR},
		{"DeepSymlinkParentOut", []Change{{"real/deep/secret", Write}}, unix.ENOTDIR},
		{"OpaqueThroughSymlink", []Change{{"up", Opaque}}, ErrInvalidChange},
		{"SymlinkWrittenAsLink", []Change{{"pw", Write}, {"up", Write}}, nil},
		{"DotDot", []Change{{"../outside/secret", Write}}, ErrInvalidChange},
		{"Absolute", []Change{{"/etc/passwd", Write}}, ErrInvalidChange},
		{"NotClean", []Change{{"real//x", Write}}, ErrInvalidChange},
		{"WhiteoutName", []Change{{"real/.wh.x", Write}}, ErrInvalidChange},
		{"DeleteRoot", []Change{{".", Delete}}, ErrInvalidChange},
		{"Twice", []Change{{"pw", Write}, {"pw", Delete}}, ErrInvalidChange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := Export(context.Background(), &buf, src, tt.changes)
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("Export: %v, want %v", err, tt.err)
			}
			if bytes.Contains(buf.Bytes(), []byte("SECRET-OUTSIDE")) || bytes.Contains(buf.Bytes(), []byte("root:x:0:0")) {
				t.Fatalf("the layer holds a file from outside the source")
			}
			if err != nil {
				return
			}
			tr := tar.NewReader(&buf)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				must(t, err)
				if h.Typeflag != tar.TypeSymlink {
					t.Errorf("%s: type %q, want a symlink", h.Name, h.Typeflag)
				}
			}
		})
	}
}

// TestExportSourceChanged: a file that holds more than its size says (a /proc file, whose size
// is 0) fails the export as changed while read.
func TestExportSourceChanged(t *testing.T) {
	var buf bytes.Buffer
	_, err := Export(context.Background(), &buf, "/proc/self", []Change{{"status", Write}})
	if !errors.Is(err, ErrSourceChanged) {
		t.Fatalf("Export of /proc/self/status: %v, want ErrSourceChanged", err)
	}
}

// TestComparePaths: a directory comes right before what it holds, component by component.
func TestComparePaths(t *testing.T) {
	sorted := []string{".", "a", "a/b", "a/b/c", "a/c", "a b", "a-b", "a.b", "aa", "b"}
	for i := range sorted {
		for j := range sorted {
			got := ComparePaths(sorted[i], sorted[j])
			if (i < j) != (got < 0) || (i == j) != (got == 0) {
				t.Errorf("ComparePaths(%q, %q) = %d", sorted[i], sorted[j], got)
			}
		}
	}
}

func requireRootExport(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it makes devices, sets owners and security.capability (CI runs as root)")
	}
}
