package layer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/internal/testtree"
)

func TestSparseFileStaysSparse(t *testing.T) {
	const size = 1 << 30
	frags := []frag{{Off: 0, Data: "head"}, {Off: 300 << 20, Data: strings.Repeat("m", 5000)}, {Off: size - 3, Data: "end"}}
	tests := []struct {
		name  string
		entry []byte
	}{
		{"PAXSparse", testtree.PAXSparse("sparse", size, frags...)},
		{"GNUSparse", testtree.GNUSparse("sparse", size, frags...)},
		{"PAXSparseEndingInHole", testtree.PAXSparse("sparse", size, frags[:2]...)},
		{"PlainFileOfZeros", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var layer []byte
			wantFrags := frags
			if tc.entry == nil {
				body := make([]byte, 8<<20)
				copy(body[5<<20:], "data")
				layer = tarOf(t, e.out, []ent{reg("sparse", string(body))})
				wantFrags = []frag{{Off: 5 << 20, Data: "data"}, {Off: 8<<20 - 1, Data: "\x00"}}
			} else {
				layer = tarOf(t, e.out, []ent{rawEnt(tc.entry)})
				if tc.name == "PAXSparseEndingInHole" {
					wantFrags = frags[:2]
				}
			}
			wantSize := wantFrags[len(wantFrags)-1].Off + int64(len(wantFrags[len(wantFrags)-1].Data))
			if tc.name == "PAXSparseEndingInHole" {
				wantSize = size
			}
			for _, use := range []string{"unpack", "apply"} {
				target := e.target(t, use)
				e.confined(t, target, func() {
					_, err := unpackOrApply(t, use, target, layer)
					if err != nil {
						t.Fatal(err)
					}
				})
				p := filepath.Join(target, "sparse")
				var st unix.Stat_t
				must(t, unix.Stat(p, &st))
				if st.Size != wantSize {
					t.Errorf("%s: size %d, want %d", use, st.Size, wantSize)
				}
				if used := st.Blocks * 512; used > 1<<20 {
					t.Errorf("%s: %d bytes on disk for a sparse file", use, used)
				}
				f, err := os.Open(p)
				must(t, err)
				for _, fr := range wantFrags {
					got := make([]byte, len(fr.Data)+2)
					n, _ := f.ReadAt(got, fr.Off-1)
					want := "\x00" + fr.Data + "\x00"
					if fr.Off == 0 {
						n, _ = f.ReadAt(got[1:], 0)
						n++
					}
					if fr.Off+int64(len(fr.Data)) == st.Size {
						want = want[:len(want)-1]
					}
					if string(got[:n]) != want {
						t.Errorf("%s: at %d got %q, want %q", use, fr.Off, got[:n], want)
					}
				}
				f.Close()
			}
		})
	}
}

// TestHugeSparseEntryIsFast: the holes of a sparse entry are never generated, so a 1 TiB entry
// with a few bytes of data is written in a moment (reading its holes as zeros would take minutes).
func TestHugeSparseEntryIsFast(t *testing.T) {
	const size = 1 << 40
	tests := []struct {
		name  string
		frags []frag
	}{
		{"DataAtTheEnd", []frag{{Off: size - 4, Data: "tail"}}},
		{"EndsInAHole", []frag{{Off: 0, Data: "head"}, {Off: size / 2, Data: "middle"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			layer := tarOf(t, e.out, []ent{rawEnt(testtree.PAXSparse("huge", size, tc.frags...)), reg("after", "after")})
			for _, use := range []string{"unpack", "apply"} {
				target := e.target(t, use)
				start := time.Now()
				_, err := unpackOrApply(t, use, target, layer)
				if err != nil {
					t.Fatalf("%s: %v", use, err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("%s: %v for a 1 TiB sparse entry; want its holes skipped, not written", use, d)
				}
				var st unix.Stat_t
				must(t, unix.Stat(filepath.Join(target, "huge"), &st))
				if st.Size != size || st.Blocks*512 > 1<<20 {
					t.Errorf("%s: size %d, %d bytes on disk; want %d, holes", use, st.Size, st.Blocks*512, int64(size))
				}
				f, err := os.Open(filepath.Join(target, "huge"))
				must(t, err)
				for _, fr := range tc.frags {
					got := make([]byte, len(fr.Data))
					if _, err := f.ReadAt(got, fr.Off); err != nil || string(got) != fr.Data {
						t.Errorf("%s: at %d got %q (%v), want %q", use, fr.Off, got, err, fr.Data)
					}
				}
				f.Close()
				if b, err := os.ReadFile(filepath.Join(target, "after")); err != nil || string(b) != "after" {
					t.Errorf("%s: the entry after the sparse one: %q, %v", use, b, err)
				}
			}
		})
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestReadsToEOF(t *testing.T) {
	e := newEnv(t)
	layer := tarOf(t, e.out, []ent{reg("a", "a")})
	layer = append(layer, make([]byte, 10240)...) // padding some tar writers add after the end marker
	layer = append(layer, "trailing"...)
	for _, use := range []string{"unpack", "apply"} {
		t.Run(use, func(t *testing.T) {
			target := e.target(t, use)
			cr := &countingReader{r: bytes.NewReader(layer)}
			var err error
			if use == "unpack" {
				_, err = Unpack(context.Background(), cr, target)
			} else {
				var a *Applier
				a, err = NewApplier(target)
				must(t, err)
				err = a.Apply(context.Background(), cr)
				a.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			if cr.n != len(layer) {
				t.Errorf("read %d bytes of %d", cr.n, len(layer))
			}
		})
	}
}

func TestContextCancelStopsUnpack(t *testing.T) {
	e := newEnv(t)
	ents := []ent{reg("a", "a"), reg("b", strings.Repeat("b", 3<<20))}
	layer := tarOf(t, e.out, ents)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Unpack(ctx, bytes.NewReader(layer), e.target(t, "tree")); !errors.Is(err, context.Canceled) {
		t.Errorf("Unpack: got %v, want context.Canceled", err)
	}
	a, err := NewApplier(e.target(t, "rootfs"))
	must(t, err)
	defer a.Close()
	if err := a.Apply(ctx, bytes.NewReader(layer)); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply: got %v, want context.Canceled", err)
	}
	if err := a.Apply(context.Background(), bytes.NewReader(layer)); err == nil {
		t.Error("Apply after a failed Apply succeeded")
	}
}

func TestTruncatedLayerFails(t *testing.T) {
	e := newEnv(t)
	layer := tarOf(t, e.out, []ent{reg("a", strings.Repeat("a", 5000))})
	if _, err := Unpack(context.Background(), bytes.NewReader(layer[:2000]), e.target(t, "tree")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestErrorNamesTheEntry(t *testing.T) {
	e := newEnv(t)
	layer := tarOf(t, e.out, []ent{reg("ok", ""), dir("d"), hard("bad\nlink", "d")})
	_, err := Unpack(context.Background(), bytes.NewReader(layer), e.target(t, "tree"))
	if !errors.Is(err, ErrInvalidLink) || !strings.Contains(err.Error(), `"bad\nlink"`) {
		t.Errorf("got %v, want ErrInvalidLink naming \"bad\\nlink\"", err)
	}
}

func TestApplierFinish(t *testing.T) {
	e := newEnv(t)
	a, err := NewApplier(e.target(t, "rootfs"))
	must(t, err)
	layer := tarOf(t, e.out, []ent{reg("a", "abc"), reg("b", "de"), dir("d")})
	must(t, a.Apply(context.Background(), bytes.NewReader(layer)))
	must(t, a.Apply(context.Background(), bytes.NewReader(layer)))
	rec, err := a.Finish()
	must(t, err)
	if rec.Size != 10 || rec.Files != 6 || len(rec.Unapplied) != 0 {
		t.Errorf("Finish: %+v, want Size 10, Files 6", rec)
	}
	if _, err := a.Finish(); !errors.Is(err, ErrFinished) {
		t.Errorf("second Finish: %v", err)
	}
	if err := a.Apply(context.Background(), bytes.NewReader(layer)); !errors.Is(err, ErrFinished) {
		t.Errorf("Apply after Finish: %v", err)
	}
	if _, err := NewApplier(filepath.Join(e.base, "missing")); err == nil {
		t.Error("NewApplier on a missing directory succeeded")
	}
}

func TestUnpackRecordCounts(t *testing.T) {
	e := newEnv(t)
	layer := tarOf(t, e.out, []ent{reg("a", "abc"), reg(".wh.x", ""), dir("d"), sym("s", "a"), reg("d/b", "12345")})
	rec, err := Unpack(context.Background(), bytes.NewReader(layer), e.target(t, "tree"))
	must(t, err)
	if rec.Size != 8 || rec.Files != 5 {
		t.Errorf("Size %d Files %d, want 8 and 5", rec.Size, rec.Files)
	}
	_ = fmt.Sprint
}
