package cas

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
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
