package cas

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestChoosePolicy(t *testing.T) {
	now := time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)
	d := func(s string) digest.Digest { return digest.FromString(s) }
	day := 24 * time.Hour
	objs := []Object{
		{Kind: KindBlob, Name: "b-old", Digest: d("b-old"), Size: 100, LastUse: now.Add(-9 * day)},
		{Kind: KindTree, Name: "t-old", Digest: d("t-old"), Size: 300, LastUse: now.Add(-8 * day)},
		{Kind: KindTree, Name: "t-leased", Digest: d("t-leased"), Size: 1000, LastUse: now.Add(-30 * day)},
		{Kind: KindBlob, Name: "b-mid", Digest: d("b-mid"), Size: 200, LastUse: now.Add(-2 * day)},
		{Kind: KindBlob, Name: "manifest", Digest: d("manifest"), Size: 10, LastUse: now.Add(-1 * day)},
		{Kind: KindTree, Name: "t-new", Digest: d("t-new"), Size: 400, LastUse: now.Add(-time.Hour)},
		{Kind: KindImage, Name: "reg/repo/tag", Digest: d("manifest"), Size: 5, LastUse: now.Add(-time.Hour)},
		{Kind: KindImage, Name: "reg/repo/old", Digest: d("gone"), Size: 5, LastUse: now.Add(-20 * day)},
	}
	live := []Lease{{Trees: []digest.Digest{d("t-leased")}}}
	tests := []struct {
		name   string
		policy Policy
		want   []string
	}{
		{"EverythingButLeased", Policy{}, []string{"b-old", "t-old", "b-mid", "manifest", "t-new", "reg/repo/tag", "reg/repo/old"}},
		{"OlderThanWeek", Policy{OlderThan: 7 * day, MaxSize: NoLimit}, []string{"b-old", "t-old", "reg/repo/old"}},
		{"OlderThanNothing", Policy{OlderThan: 100 * day, MaxSize: NoLimit}, nil},
		{"MaxSizeEvictsOldestFirst", Policy{MaxSize: 1500}, []string{"b-old", "t-old", "b-mid"}},
		{"MaxSizeFits", Policy{MaxSize: 1 << 30}, nil},
		{"MaxSizeBelowLeased", Policy{MaxSize: 500}, []string{"b-old", "t-old", "b-mid", "manifest", "t-new", "reg/repo/tag"}},
		{"AgeThenSize", Policy{OlderThan: 5 * day, MaxSize: 1420}, []string{"b-old", "t-old", "b-mid", "reg/repo/old"}},
		{"AgeThenSizeTakesManifestAndRecord", Policy{OlderThan: 5 * day, MaxSize: 1410}, []string{"b-old", "t-old", "b-mid", "manifest", "reg/repo/tag", "reg/repo/old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.Now = now
			rep := choose(objs, live, nil, tt.policy)
			var got []string
			var freed int64
			for _, o := range rep.Removed {
				got = append(got, o.Name)
				freed += o.Size
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("removed %v, want %v", got, want)
			}
			if rep.Freed != freed || rep.Left != 2020-freed {
				t.Fatalf("freed %d left %d, want %d and %d", rep.Freed, rep.Left, freed, 2020-freed)
			}
		})
	}
}

func TestTreeChangedIsRepaired(t *testing.T) {
	c := openCache(t)
	l, blob := testLayer(t, map[string]string{"etc/passwd": "root", "bin/sh": "sh"})
	var calls atomic.Int32
	tr, err := c.Tree(context.Background(), l, serve(blob, &calls))
	if err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		name   string
		change func(path string) error
	}{
		{"Append", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.WriteString("x")
			return f.Close()
		}},
		{"Chmod", func(p string) error { return os.Chmod(p, 0o777) }},
		{"Chown", func(p string) error { return os.Chown(p, 12, 34) }},
		{"Mtime", func(p string) error { return os.Chtimes(p, time.Now(), time.Unix(5, 0)) }},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			if os.Geteuid() != 0 && ch.name == "Chown" {
				t.Skip("chown needs root")
			}
			// Only a tree that a hardlinked destination shares can change (and is checked).
			x, err := c.Expose(context.Background(), []digest.Digest{l.DiffID})
			if err != nil {
				t.Fatal(err)
			}
			x.Release()
			if err := ch.change(filepath.Join(tr.Dir, "etc/passwd")); err != nil {
				t.Fatal(err)
			}
			got, err := c.Tree(context.Background(), l, serve(blob, &calls))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Repaired || got.Cached {
				t.Fatalf("changed tree: repaired=%v cached=%v, want repaired and not cached", got.Repaired, got.Cached)
			}
			if b, _ := os.ReadFile(filepath.Join(got.Dir, "etc/passwd")); string(b) != "root" {
				t.Fatalf("repaired content %q", b)
			}
			again, err := c.Tree(context.Background(), l, serve(blob, &calls))
			if err != nil || !again.Cached || again.Repaired {
				t.Fatalf("tree after the repair: cached=%v repaired=%v err=%v", again.Cached, again.Repaired, err)
			}
			if calls.Load() != 1 {
				t.Fatalf("fetched %d times: the cached blob should serve repairs", calls.Load())
			}
			if ents, _ := os.ReadDir(c.path("tmp")); len(ents) != 2 { // the layer's lock and its link lock
				t.Fatalf("tmp/ holds %d entries after a repair", len(ents))
			}
			if c.Exposed(l.DiffID) {
				t.Fatal("the repaired tree is still marked linked: nothing shares it")
			}
		})
	}
	// Linking and unlinking a tree's file (what assembly and rm -rf DEST do) is no change.
	if x, err := c.Expose(context.Background(), []digest.Digest{l.DiffID}); err != nil {
		t.Fatal(err)
	} else {
		x.Release()
	}
	if err := os.Link(filepath.Join(tr.Dir, "bin/sh"), filepath.Join(t.TempDir(), "sh")); err == nil {
		if got, _ := c.Tree(context.Background(), l, serve(blob, &calls)); !got.Cached {
			t.Fatal("a new hard link to a tree file made the tree count as changed")
		}
	}
}

func TestCheck(t *testing.T) {
	root := t.TempDir()
	c, err := Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	l1, blob1 := testLayer(t, map[string]string{"a": "1"})
	l2, blob2 := testLayer(t, map[string]string{"b": "2"})
	l3, blob3 := testLayer(t, map[string]string{"c": "3"})
	var calls atomic.Int32
	for _, x := range []struct {
		l Layer
		b []byte
	}{{l1, blob1}, {l2, blob2}, {l3, blob3}} {
		if _, err := c.Tree(context.Background(), x.l, serve(x.b, &calls)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	rep, err := Check(context.Background(), root)
	if err != nil || len(rep.Findings) != 0 || rep.Blobs != 3 || rep.Trees != 3 {
		t.Fatalf("check of a sound cache: %+v, %v", rep, err)
	}
	// l1's tree changed (blob fine): unpacked again. l2's blob rotted: removed.
	// l3's tree changed and its blob is gone: removed. An orphan record: removed.
	os.WriteFile(filepath.Join(root, "trees/sha256", l1.DiffID.Encoded(), "a"), []byte("X"), 0o644)
	os.WriteFile(filepath.Join(root, "blobs/sha256", l2.Digest.Encoded()), []byte("rot"), 0o644)
	os.WriteFile(filepath.Join(root, "trees/sha256", l3.DiffID.Encoded(), "c"), []byte("X"), 0o644)
	os.Remove(filepath.Join(root, "blobs/sha256", l3.Digest.Encoded()))
	orphan := filepath.Join(root, "trees/sha256", digest.FromString("orphan").Encoded()+".json")
	os.WriteFile(orphan, []byte("{}"), 0o644)

	rep, err = Check(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range rep.Findings {
		got[f.Object.Kind+" "+f.Object.Name] = f.Action
	}
	want := map[string]string{
		"tree " + l1.DiffID.String():                   "unpacked again from its blob",
		"blob " + l2.Digest.String():                   "removed",
		"tree " + l3.DiffID.String():                   "removed (its blob is not cached; the next pull fetches it)",
		"tree " + digest.FromString("orphan").String(): "removed",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: action %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("findings %v, want %v", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "trees/sha256", l1.DiffID.Encoded(), "a")); string(b) != "1" {
		t.Errorf("repaired tree holds %q", b)
	}
	if exists(filepath.Join(root, "trees/sha256", l3.DiffID.Encoded())) || exists(orphan) {
		t.Error("check left a changed tree without blob, or an orphan record")
	}
	if rep, err := Check(context.Background(), root); err != nil || len(rep.Findings) != 0 {
		t.Fatalf("second check: %+v, %v", rep.Findings, err)
	}
}

func TestFixupMadeOnce(t *testing.T) {
	c := openCache(t)
	trees := []digest.Digest{digest.FromString("a"), digest.FromString("b")}
	var builds atomic.Int32
	dirs := atOnce(t, 4, func() (string, error) {
		return c.Fixup(context.Background(), trees, func(_ context.Context, dir string) error {
			builds.Add(1)
			return os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
		})
	})
	if builds.Load() != 1 {
		t.Fatalf("built %d times, want 1", builds.Load())
	}
	for _, d := range dirs {
		if d != c.fixupPath(FixupKey(trees)) || !exists(filepath.Join(d, "f")) {
			t.Fatalf("fix-up at %s", d)
		}
	}
	if FixupKey(trees) == FixupKey([]digest.Digest{trees[1], trees[0]}) {
		t.Fatal("the fix-up key ignores the order of the trees")
	}
	// A failed build publishes nothing.
	other := []digest.Digest{digest.FromString("c")}
	if _, err := c.Fixup(context.Background(), other, func(context.Context, string) error { return os.ErrInvalid }); err == nil || exists(c.fixupPath(FixupKey(other))) {
		t.Fatalf("failed build: %v", err)
	}
}

func TestLeases(t *testing.T) {
	root := t.TempDir()
	c, err := Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	l, blob := testLayer(t, map[string]string{"a": "1"})
	var calls atomic.Int32
	if _, err := c.Tree(context.Background(), l, serve(blob, &calls)); err != nil {
		t.Fatal(err)
	}
	lease := &Lease{Dest: "/nowhere/mounted", Trees: []digest.Digest{l.DiffID}}
	if err := c.Lease(lease); err != nil {
		t.Fatal(err)
	}
	if lease.ID != LeaseID("/nowhere/mounted") || len(lease.ID) != 32 {
		t.Fatalf("lease id %q", lease.ID)
	}
	ls, err := c.Leases()
	if err != nil || len(ls) != 1 || ls[0].Dest != lease.Dest || ls[0].Trees[0] != l.DiffID {
		t.Fatalf("leases: %+v, %v", ls, err)
	}
	if live, err := ls[0].Live(); err != nil || live {
		t.Fatalf("a lease of an unmounted path is live=%v (%v)", live, err)
	}
	if err := c.Lease(&Lease{Dest: "/x", Trees: []digest.Digest{"sha256:nope"}}); err == nil {
		t.Fatal("a lease with a bad digest was taken")
	}
	for _, id := range []string{"", "../x", strings.Repeat("g", 32)} {
		if err := c.Release(id); err == nil {
			t.Errorf("Release(%q) succeeded", id)
		}
	}
	c.Close() // alone in the cache: the stale lease goes
	if ls, _ := (&Cache{root: root}).Leases(); len(ls) != 0 {
		t.Fatalf("a stale lease survived the last command: %+v", ls)
	}
}
