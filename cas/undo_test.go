package cas

import (
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestAdditionsUndo: Undo removes the blobs, trees and image records noted while absent, and
// only those: a layer (blob and tree) that was there before stays, a record that was replaced
// is back with its bytes and mtime, tmp/ holds nothing of them once the cache is tidied.
func TestAdditionsUndo(t *testing.T) {
	c := openCache(t)
	ctx := t.Context()
	old, oldBlob := testLayer(t, map[string]string{"old": "there before"})
	if _, err := c.Tree(ctx, old, serve(oldBlob, new(atomic.Int32))); err != nil {
		t.Fatal(err)
	}
	name := "r.example/team/app/1"
	if err := c.RecordImage(name, ImageRecord{Digest: digest.FromString("before"), Platform: "linux/amd64"}); err != nil {
		t.Fatal(err)
	}
	record := c.path("images", filepath.FromSlash(name)+"@linux-amd64")
	when := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(record, when, when); err != nil {
		t.Fatal(err)
	}
	recBefore, _ := os.ReadFile(record)
	listing := func() []string {
		objs, err := c.Objects()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range objs {
			out = append(out, o.Kind+" "+o.Name)
		}
		slices.Sort(out)
		return out
	}
	before := listing()

	a := c.Track()
	fresh, freshBlob := testLayer(t, map[string]string{"new": "made by the job"})
	for _, l := range []Layer{old, fresh} {
		a.Blob(l.Digest)
		a.Tree(l.DiffID)
	}
	if _, err := c.Tree(ctx, fresh, serve(freshBlob, new(atomic.Int32))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tree(ctx, old, serve(oldBlob, new(atomic.Int32))); err != nil {
		t.Fatal(err)
	}
	cfg := []byte(`{"config":1}`)
	a.Blob(digest.FromBytes(cfg))
	if err := c.PutBlob(digest.FromBytes(cfg), cfg); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{name, "r.example/team/other/sha256-x"} {
		if err := a.Image(n, "linux/amd64"); err != nil {
			t.Fatal(err)
		}
		if err := c.RecordImage(n, ImageRecord{Digest: digest.FromString("after"), Platform: "linux/amd64"}); err != nil {
			t.Fatal(err)
		}
	}
	if slices.Equal(before, listing()) {
		t.Fatal("the job added nothing")
	}

	if err := a.Undo(); err != nil {
		t.Fatal(err)
	}
	if after := listing(); !slices.Equal(before, after) {
		t.Errorf("after Undo the cache holds\n%v\nwant\n%v", after, before)
	}
	if b, _ := os.ReadFile(record); string(b) != string(recBefore) {
		t.Errorf("the replaced record is %s, want %s", b, recBefore)
	}
	if fi, err := os.Stat(record); err != nil || !fi.ModTime().Equal(when) {
		t.Errorf("the replaced record's mtime: %v, %v; want %v", fi, err, when)
	}
	if _, err := os.Lstat(c.path("images", "r.example", "team", "other")); !os.IsNotExist(err) {
		t.Errorf("the new record's directory stays: %v", err)
	}
	if _, ok, err := c.Lookup(ctx, old, WithRecord); !ok || err != nil {
		t.Errorf("the tree that was there before: %v, %v", ok, err)
	}
	if err := c.tidy(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(c.path("tmp")); len(ents) != 0 {
		t.Errorf("tmp/ holds %d entries after tidy", len(ents))
	}
}
