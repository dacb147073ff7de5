package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/internal/testtree"
)

// fuzzSeeds covers every tar entry type and the hostile names the unpacker must confine.
// Symlinks point at "../sentinel", which from the target is the sentinel directory.
func fuzzSeeds(t testing.TB) [][]byte {
	long := strings.Repeat("l", 120)
	return [][]byte{
		tarOf(t, "", []ent{dir("d"), reg("d/f", "file"), hard("d/h", "d/f"), sym("d/s", "f"),
			chr("c", 1, 3), blk("b", 8, 0), fifo("p"), reg("x", "x").X("user.a", "b").F(tar.FormatPAX),
			{Name: "cont", Type: tar.TypeCont, Mode: 0o644, Body: "c"}}),
		tarOf(t, "", []ent{reg(long+"/"+long, "gnu").F(tar.FormatGNU), hard("gl", long+"/"+long).F(tar.FormatGNU),
			sym("gs", strings.Repeat("t", 150)).F(tar.FormatGNU)}),
		tarOf(t, "", []ent{reg(strings.Repeat("p/", 100)+"f", "pax").F(tar.FormatPAX), reg("mt", "m").T(t1).F(tar.FormatPAX)}),
		tarOf(t, "", []ent{rawEnt(testtree.PAX('g', [2]string{"comment", "global"})), reg("after-global", "g")}),
		tarOf(t, "", []ent{rawEnt(testtree.PAXSparse("sparse", 1<<20, frag{Off: 0, Data: "a"}, frag{Off: 600000, Data: "b"}))}),
		tarOf(t, "", []ent{rawEnt(testtree.GNUSparse("gsparse", 1<<20, frag{Off: 4096, Data: "a"}, frag{Off: 1 << 19, Data: "b"}))}),
		tarOf(t, "", []ent{sym("out", "../sentinel"), reg("out/file", "pwned"), sym("up", "../../sentinel"),
			reg("up/file", "pwned"), reg("../sentinel/file", "pwned"), reg("/../../sentinel/dir/x", "pwned")}),
		tarOf(t, "", []ent{sym("out", "../sentinel"), hard("h", "out/file"), hard("h2", "../sentinel/file"),
			reg("out/.wh.file", ""), reg("out/.wh..wh..opq", ""), dir("out").M(0)}),
		tarOf(t, "", []ent{dir("w"), reg("w/a", "a"), reg("w/.wh.a", ""), reg("w/.wh..wh..opq", ""), reg(".wh.gone", ""),
			reg("w", "file"), dir("w").M(0o500), reg("w/b", "b"), sym("w", "../sentinel/dir")}),
		tarOf(t, "", []ent{reg("a", "a").O(1000, 1000).M(0o4755), dir("ro").M(0o500), reg("ro/f", "f"), hard("a2", "a")}),
		tarOf(t, "", []ent{rawEnt(testtree.Header("vol", 'V', 0o644, 0, true, nil))}),
		tarOf(t, "", []ent{reg(".wh.", ""), reg(".wh..wh.x", "")}),
	}
}

func FuzzUnpack(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	lower := tarOf(f, "", []ent{sym("out", "../sentinel"), sym("up", "../../sentinel"), sym("d", "../sentinel/dir"),
		dir("lowdir"), reg("lowdir/f", "low"), sym("dangling", "../sentinel/nothing")})
	f.Fuzz(func(t *testing.T, layer []byte) {
		if tooBig(layer) {
			return
		}
		done := make(chan struct{})
		defer close(done)
		go func() { // a hang is a failure too: crash with every stack, so the input is kept
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				panic(string(buf[:n]))
			}
		}()
		base := t.TempDir()
		sentinel := filepath.Join(base, "sentinel")
		must(t, os.MkdirAll(filepath.Join(sentinel, "dir"), 0o755))
		must(t, os.WriteFile(filepath.Join(sentinel, "file"), []byte("sentinel"), 0o644))
		must(t, os.Symlink("file", filepath.Join(sentinel, "link")))
		before := listing(t, sentinel, true)

		ctx := context.Background()
		tree := filepath.Join(base, "tree")
		must(t, os.Mkdir(tree, 0o755))
		Unpack(ctx, bytes.NewReader(layer), tree)
		rootfs := filepath.Join(base, "rootfs")
		must(t, os.Mkdir(rootfs, 0o755))
		if a, err := NewApplier(rootfs); err == nil {
			if a.Apply(ctx, bytes.NewReader(lower)) == nil && a.Apply(ctx, bytes.NewReader(layer)) == nil {
				a.Finish()
			}
			a.Close()
		}

		names, err := os.ReadDir(base)
		must(t, err)
		if len(names) != 3 {
			t.Errorf("%d entries beside the targets, want 3 (rootfs, sentinel, tree)", len(names))
		}
		if d := diff(before, listing(t, sentinel, true)); d != "" {
			t.Errorf("sentinel changed:\n%s", d)
		}
	})
}

// tooBig skips inputs that declare huge files: archive/tar expands sparse holes to zeros, so
// they only make the fuzzer slow.
func tooBig(layer []byte) bool {
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return false
		}
		if hdr.Size > 64<<20 {
			return true
		}
		io.Copy(io.Discard, io.LimitReader(tr, 0))
	}
}
