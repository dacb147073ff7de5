package cas

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootsdev/roots/cas/layer"
	r "github.com/rootsdev/roots/fetch/registrytest"
)

// TestFingerprintSummedWhileUnpacking: the "v2:" fingerprint an fpObserver sums while a layer
// unpacks is the one a walk of the finished tree computes, for every kind of entry; where the
// observer cannot follow (a removal, a whiteout, an opaque directory) it says so and the tree
// is walked instead.
func TestFingerprintSummedWhileUnpacking(t *testing.T) {
	tests := []struct {
		name    string
		entries []r.Entry
		summed  bool // the observer's sum stands (no walk needed)
	}{
		{"Files", []r.Entry{r.File("a", "1"), r.File("b/c", "22"), r.File("b/d/e", strings.Repeat("x", 3<<20))}, true},
		{"EveryType", []r.Entry{
			r.Dir("d", 0o750), r.File("d/f", "body"), r.Symlink("d/s", "f"), r.Hardlink("d/h", "d/f"),
			{Name: "fifo", Type: tar.TypeFifo, Mode: 0o600}, {Name: "cdev", Type: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
			{Name: "suid", Body: []byte("x"), Mode: 0o4755}, {Name: "owned", Body: []byte("y"), Uid: 1000, Gid: 1000},
		}, true},
		{"ImplicitParents", []r.Entry{r.File("x/y/z/deep", "1"), r.File("x/top", "2")}, true},
		{"ReplacedLater", []r.Entry{r.File("a", "1"), r.File("a", "second")}, false},
		{"DirReplacedByFile", []r.Entry{r.File("d/f", "1"), r.File("d", "now a file")}, false},
		{"Whiteout", []r.Entry{r.File("a", "1"), r.File(".wh.gone", "")}, false},
		{"Opaque", []r.Entry{r.File("d/.wh..wh..opq", ""), r.File("d/f", "1")}, false},
		{"AUFSLinks", []r.Entry{
			r.File(".wh..wh.plnk/123.456", "linked"), r.Hardlink("one", ".wh..wh.plnk/123.456"), r.Hardlink("two", ".wh..wh.plnk/123.456"),
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Fatal("needs root (devices and owners in the layer): run the tests as root")
			}
			dir := filepath.Join(t.TempDir(), "tree")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			o := &fpObserver{}
			rec, err := layer.UnpackObserved(context.Background(), bytes.NewReader(r.TarBytes(tt.entries)), dir, o)
			if err != nil {
				t.Fatal(err)
			}
			w, err := walkFingerprint(context.Background(), dir, "")
			if err != nil {
				t.Fatal(err)
			}
			w1, err := walkFingerprint(context.Background(), dir, "v1:")
			if err != nil {
				t.Fatal(err)
			}
			got := o.fingerprint(rec)
			switch {
			case tt.summed && got == "":
				t.Fatalf("the observer gave up; want its sum (record %+v)", rec)
			case !tt.summed && got != "":
				t.Fatalf("the observer summed %s; want it to give up (record %+v)", got, rec)
			case got != "" && got != w.fp():
				t.Fatalf("summed %s, the walk %s", got, w.fp())
			}
			if w1.fp() != w.fp() {
				t.Fatalf("the walk in name order sums %s, the parallel one %s", w1.fp(), w.fp())
			}
			if !w1.matches(w.fp()) || !w1.matches(w1.v1) || w1.matches("v2:00") || w1.matches("") || w.matches("") {
				t.Fatalf("matches: want both forms of the walk's fingerprint, nothing else")
			}
		})
	}
}

// TestFingerprintWalkParallel: the parallel walk of a tree of many directories sums what the
// walk in name order does, counts the same names and links, and sees a change in any file.
func TestFingerprintWalkParallel(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 60; i++ {
		for j := 0; j < 5; j++ {
			d := filepath.Join(dir, fmt.Sprint("d", i), fmt.Sprint("e", j))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for k := 0; k < 4; k++ {
				if err := os.WriteFile(filepath.Join(d, fmt.Sprint("f", k)), []byte(fmt.Sprint(i, j, k)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := os.Link(filepath.Join(dir, "d0/e0/f0"), filepath.Join(dir, "d59/e4/link")); err != nil {
		t.Fatal(err)
	}
	walk := func(want string) *fpWalk {
		t.Helper()
		w, err := walkFingerprint(context.Background(), dir, want)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	seq, par := walk("v1:"), walk("")
	if seq.fp() != par.fp() || seq.shared != par.shared || seq.shared != 60*5*4+1 || par.outside() || seq.outside() {
		t.Fatalf("in name order %s, %d shared, outside %v; parallel %s, %d shared, outside %v",
			seq.fp(), seq.shared, seq.outside(), par.fp(), par.shared, par.outside())
	}
	if err := os.Link(filepath.Join(dir, "d30/e2/f3"), filepath.Join(t.TempDir(), "outside")); err != nil {
		t.Fatal(err)
	}
	if !walk("").outside() {
		t.Fatal("a link from outside the tree went unseen")
	}
	if err := os.WriteFile(filepath.Join(dir, "d45/e3/f1"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if after := walk(""); after.fp() == par.fp() {
		t.Fatal("a changed file went unseen")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := walkFingerprint(ctx, dir, ""); err == nil {
		t.Fatal("a cancelled walk succeeded")
	}
}
