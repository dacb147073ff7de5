package cas

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// TestUnexposedTreeIsTrusted: a tree that no hardlinked destination ever
// shared is reused without a walk, so even a deliberate change inside the
// cache goes unseen; once exposed, the same change is found and repaired.
func TestUnexposedTreeIsTrusted(t *testing.T) {
	c := openCache(t)
	ctx := context.Background()
	l, blob := testLayer(t, map[string]string{"etc/passwd": "root"})
	var calls atomic.Int32
	tr, err := c.Tree(ctx, l, serve(blob, &calls))
	if err != nil {
		t.Fatal(err)
	}
	if c.Exposed(l.DiffID) || exists(c.linkedPath(l.DiffID)) {
		t.Fatal("a new tree is marked linked")
	}
	if err := os.WriteFile(filepath.Join(tr.Dir, "etc/passwd"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := c.Tree(ctx, l, serve(blob, &calls))
	if err != nil || !got.Cached || got.Repaired {
		t.Fatalf("reuse of an unexposed tree: cached=%v repaired=%v err=%v, want trusted as is", got.Cached, got.Repaired, err)
	}
	x, err := c.Expose(ctx, []digest.Digest{l.DiffID})
	if err != nil {
		t.Fatal(err)
	}
	x.Release()
	got, err = c.Tree(ctx, l, serve(blob, &calls))
	if err != nil || got.Cached || !got.Repaired {
		t.Fatalf("reuse of the exposed changed tree: cached=%v repaired=%v err=%v, want repaired", got.Cached, got.Repaired, err)
	}
	if b, _ := os.ReadFile(filepath.Join(got.Dir, "etc/passwd")); string(b) != "root" {
		t.Fatalf("repaired content %q", b)
	}
}

// TestExposureStamp: the stamp stays while a destination links the tree's
// files or is being assembled, goes on the first reuse after, and goes with
// the tree when it is purged.
func TestExposureStamp(t *testing.T) {
	c := openCache(t)
	ctx := context.Background()
	l, blob := testLayer(t, map[string]string{"bin/sh": "sh"})
	var calls atomic.Int32
	tr, err := c.Tree(ctx, l, serve(blob, &calls))
	if err != nil {
		t.Fatal(err)
	}
	reuse := func(what string, wantExposed bool) {
		t.Helper()
		got, err := c.Tree(ctx, l, serve(blob, &calls))
		if err != nil || !got.Cached || got.Repaired {
			t.Fatalf("%s: cached=%v repaired=%v err=%v", what, got.Cached, got.Repaired, err)
		}
		if c.Exposed(l.DiffID) != wantExposed {
			t.Fatalf("%s: exposed=%v, want %v", what, !wantExposed, wantExposed)
		}
	}

	// A destination is being assembled: its link lock is held.
	x, err := c.Expose(ctx, []digest.Digest{l.DiffID})
	if err != nil {
		t.Fatal(err)
	}
	reuse("during assembly", true)
	dest := filepath.Join(t.TempDir(), "sh")
	if err := os.Link(filepath.Join(tr.Dir, "bin/sh"), dest); err != nil {
		t.Fatal(err)
	}
	x.Release()
	reuse("with a destination linking it", true)
	os.Remove(dest)
	reuse("after the destination is gone", false)
	reuse("unexposed", false)

	// A failed assembly that was removed undoes the stamps it made.
	if x, err = c.Expose(ctx, []digest.Digest{l.DiffID}); err != nil {
		t.Fatal(err)
	}
	x.Undo(ctx)
	if c.Exposed(l.DiffID) {
		t.Fatal("Undo left the stamp")
	}

	// Purge takes the stamp with the tree; check removes a stray one.
	if x, err = c.Expose(ctx, []digest.Digest{l.DiffID}); err != nil {
		t.Fatal(err)
	}
	x.Release()
	c.Close()
	if _, err := Purge(ctx, c.Root(), Policy{MaxSize: 0}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"trees/sha256", "linked"} {
		if ents, _ := os.ReadDir(c.path(d)); len(ents) != 0 {
			t.Fatalf("purge left %d entries in %s", len(ents), d)
		}
	}
	stray := c.linkedPath(l.DiffID)
	os.WriteFile(stray, nil, 0o644)
	rep, err := Check(ctx, c.Root())
	if err != nil || exists(stray) || len(rep.Findings) != 0 {
		t.Fatalf("check with a stray stamp: err=%v, stamp left=%v, findings %v", err, exists(stray), rep.Findings)
	}
}

// TestLookupDirOnly: an overlay's lookup trusts a tree on its record's format
// attribute and reads the record only where it must: the attribute missing or
// of another version, or a tree a hardlinked destination may have changed.
func TestLookupDirOnly(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name       string
		change     func(t *testing.T, c *Cache, l Layer, dir string)
		found      bool
		withRecord bool // the record was read by the lookup
	}{
		{"marked", func(*testing.T, *Cache, Layer, string) {}, true, false},
		{"attribute missing", func(t *testing.T, _ *Cache, _ Layer, dir string) {
			if err := unix.Lremovexattr(dir+".json", formatAttr); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"attribute of another format", func(t *testing.T, _ *Cache, _ Layer, dir string) {
			if err := unix.Lsetxattr(dir+".json", formatAttr, []byte("1"), 0); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"record of another format", func(t *testing.T, _ *Cache, _ Layer, dir string) {
			rec, err := readTreeRecord(dir + ".json")
			if err != nil {
				t.Fatal(err)
			}
			rec.Format = 1
			b, _ := json.Marshal(rec)
			if err := os.WriteFile(dir+".json", b, 0o600); err != nil {
				t.Fatal(err)
			}
			unix.Lsetxattr(dir+".json", formatAttr, []byte("1"), 0)
		}, false, false},
		{"record gone", func(t *testing.T, _ *Cache, _ Layer, dir string) {
			os.Remove(dir + ".json")
		}, false, false},
		{"linked and changed", func(t *testing.T, c *Cache, l Layer, dir string) {
			x, err := c.Expose(ctx, []digest.Digest{l.DiffID})
			if err != nil {
				t.Fatal(err)
			}
			x.Release()
			os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("changed"), 0o644)
		}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := openCache(t)
			l, blob := testLayer(t, map[string]string{"etc/passwd": "root"})
			var calls atomic.Int32
			made, err := c.Tree(ctx, l, serve(blob, &calls))
			if err != nil {
				t.Fatal(err)
			}
			if len(made.Record.Implicit) == 0 {
				t.Fatal("the test layer's record is empty: nothing to compare")
			}
			if !formatMarked(made.Dir + ".json") {
				t.Fatal("a new tree's record has no format attribute")
			}
			tc.change(t, c, l, made.Dir)
			got, ok, err := c.Lookup(ctx, l, DirOnly)
			if err != nil || ok != tc.found {
				t.Fatalf("Lookup DirOnly: found %v, err %v; want found %v", ok, err, tc.found)
			}
			if !ok {
				return
			}
			if got.Dir != made.Dir || !got.Cached {
				t.Fatalf("Lookup DirOnly: %+v", got)
			}
			if read := got.Record.Implicit != nil; read != tc.withRecord {
				t.Fatalf("a DirOnly lookup read the record: %v, want %v", read, tc.withRecord)
			}
			if err := got.LoadRecord(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Record, made.Record) {
				t.Fatalf("LoadRecord: %+v, want %+v", got.Record, made.Record)
			}
			// A record read for want of its attribute gets it.
			if again, _, err := c.Lookup(ctx, l, DirOnly); err != nil || again.Record.Implicit != nil {
				t.Fatalf("second DirOnly lookup read the record (err %v): the attribute was not set", err)
			}
		})
	}
}
