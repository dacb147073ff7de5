package e2e

// Layer semantics end to end, in every mode: what a pulled rootfs is when
// layers write below symlinks, repeat, or carry AUFS metadata. Every image is
// pulled cold and warm with --mode hardlink, --mode copy and --mode overlay,
// and with --cache=no; the four destinations must equal each other entry by
// entry (mtimes and xattrs included) and the expected tree.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// layerModes are the ways a pull makes DEST.
var layerModes = []struct {
	name string
	args []string // besides --cache
	noCache,
	overlay bool
}{
	{name: "hardlink", args: []string{"--mode", "hardlink"}},
	{name: "copy", args: []string{"--mode", "copy"}},
	{name: "overlay", args: []string{"--mode", "overlay"}, overlay: true},
	{name: "nocache", noCache: true},
}

// pullEveryMode pulls ref in every mode (into a fresh cache per mode, cold,
// then again warm into a second DEST) with a deadline, and returns each
// DEST's scan. It fails the test unless all of them are equal.
func pullEveryMode(t *testing.T, ref string, limit time.Duration) map[string]entry {
	t.Helper()
	var first map[string]entry
	var firstName string
	for _, m := range layerModes {
		cache := "no"
		if !m.noCache {
			cache = t.TempDir()
		}
		runs := []string{"cold", "warm"}
		if m.noCache {
			runs = runs[:1]
		}
		for _, run := range runs {
			dest := filepath.Join(t.TempDir(), m.name+"-"+run)
			if m.overlay {
				umountAll(t, dest)
			}
			args := append([]string{"pull", "--cache", cache}, m.args...)
			args = append(args, ref, dest)
			res := rootsWithin(t, limit, args...)
			if res.Code != 0 {
				t.Fatalf("%s %s pull: exit %d: %s", run, m.name, res.Code, res.Stderr)
			}
			got := scanMeta(t, dest)
			for p, e := range got {
				// A directory no layer names takes the time it was made (by an
				// unpack or the pull), which differs from one cache to the next.
				if e.Type == "d" && e.Mtime > madeRecently {
					e.Mtime = 0
					got[p] = e
				}
			}
			if m.overlay {
				if res := Roots(t, nil, "umount", dest); res.Code != 0 {
					t.Fatalf("umount %s: exit %d: %s", dest, res.Code, res.Stderr)
				}
			}
			if first == nil {
				first, firstName = got, run+" "+m.name
				continue
			}
			t.Run(run+"-"+m.name+"-equals-"+strings.ReplaceAll(firstName, " ", "-"), func(t *testing.T) {
				sameMeta(t, got, first)
			})
		}
	}
	return first
}

// madeRecently is later than any time an image in these tests gives.
var madeRecently = registrytest.EntryTime.Add(365 * 24 * time.Hour).UnixNano()

// rootsWithin runs the binary and fails the test, with the goroutine dump, after limit.
func rootsWithin(t *testing.T, limit time.Duration, args ...string) Result {
	t.Helper()
	return RootsLimit(t, limit, nil, args...)
}

// TestDuplicateLayers pulls images that list the same layer at several
// places, up to thousands of times: each is fetched and unpacked once and
// applied at every place, and no pull waits on itself.
func TestDuplicateLayers(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	a := registrytest.Layer{Entries: []reg{{Name: "etc/a", Body: []byte("a")}, {Name: "etc/shared", Body: []byte("from a")}}}
	b := registrytest.Layer{Entries: []reg{{Name: "etc/.wh.a"}, {Name: "etc/shared", Body: []byte("from b")}, {Name: "etc/b", Body: []byte("b")}}}
	empty := registrytest.Layer{Entries: []reg{}}
	many := []registrytest.Layer{a}
	for range 3000 {
		many = append(many, empty)
	}
	many = append(many, b, empty)
	want := map[string]entry{
		"etc":        testtree.Dir(0o755),
		"etc/a":      testtree.File(0o644, "a"),
		"etc/b":      testtree.File(0o644, "b"),
		"etc/shared": testtree.File(0o644, "from a"),
	}
	tests := []struct {
		name   string
		layers []registrytest.Layer
		want   map[string]entry
	}{
		{"ABA", []registrytest.Layer{a, b, a}, want},
		{"AAB", []registrytest.Layer{a, a, b, b}, map[string]entry{
			"etc": testtree.Dir(0o755), "etc/b": testtree.File(0o644, "b"), "etc/shared": testtree.File(0o644, "from b")}},
		{"ThousandsOfEmpty", many, map[string]entry{
			"etc": testtree.Dir(0o755), "etc/b": testtree.File(0o644, "b"), "etc/shared": testtree.File(0o644, "from b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := "dup/" + strings.ToLower(tt.name)
			r.Push(t, repo, "latest", registrytest.Image{Layers: tt.layers})
			// A cold pull raced against itself used to hang about every second try.
			for i := range 3 {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					SameTree(t, pullEveryMode(t, r.Host+"/"+repo, 2*time.Minute), fixModes(tt.want))
				})
			}
		})
	}
}

// mergedUsr is a merged-/usr base layer, as Debian 12, Ubuntu and Fedora have.
func mergedUsr() registrytest.Layer {
	return registrytest.Layer{Entries: []reg{
		registrytest.Dir("usr/", 0o755), registrytest.Dir("usr/bin/", 0o755), registrytest.Dir("usr/lib/", 0o755), registrytest.Dir("usr/lib/x86_64-linux-gnu/", 0o755),
		{Name: "usr/bin/sh", Body: []byte("sh"), Mode: 0o755}, {Name: "usr/lib/x86_64-linux-gnu/libc.so.6", Body: []byte("libc"), Mode: 0o755},
		registrytest.File("usr/lib/x86_64-linux-gnu/old.so", "old"), registrytest.Dir("usr/lib/sub/", 0o750), registrytest.File("usr/lib/sub/a", "a"),
		registrytest.Symlink("bin", "usr/bin"), registrytest.Symlink("lib", "usr/lib"), registrytest.Symlink("lib64", "usr/lib64"), registrytest.Symlink("sbin", "/usr/bin"),
	}}
}

// mergedUsrWant is what mergedUsr gives.
func mergedUsrWant() map[string]entry {
	return map[string]entry{
		"usr": testtree.Dir(0o755), "usr/bin": testtree.Dir(0o755), "usr/lib": testtree.Dir(0o755), "usr/lib/x86_64-linux-gnu": testtree.Dir(0o755),
		"usr/bin/sh": testtree.File(0o755, "sh"), "usr/lib/x86_64-linux-gnu/libc.so.6": testtree.File(0o755, "libc"),
		"usr/lib/x86_64-linux-gnu/old.so": testtree.File(0o644, "old"), "usr/lib/sub": testtree.Dir(0o750), "usr/lib/sub/a": testtree.File(0o644, "a"),
		"bin": testtree.Symlink("usr/bin"), "lib": testtree.Symlink("usr/lib"), "lib64": testtree.Symlink("usr/lib64"), "sbin": testtree.Symlink("/usr/bin"),
	}
}

// with returns want changed by set (an entry) and del (paths to drop).
func with(want map[string]entry, set map[string]entry, del ...string) map[string]entry {
	for p, e := range set {
		want[p] = e
	}
	for _, p := range del {
		delete(want, p)
	}
	return want
}

// TestLayerRules pulls an image per rule of layer semantics in all four modes
// (cold and warm): a path a layer names resolves its symlinked parents inside
// the rootfs; the last component is never followed; whiteouts resolve their
// parent too and are moot below the layer's own non-directory; AUFS metadata
// never shows. Every mode gives the same tree, and the expected one.
func TestLayerRules(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	tests := []struct {
		name   string
		layers []registrytest.Layer
		want   map[string]entry
	}{
		{"EntriesBelowLowerSymlinks", []registrytest.Layer{mergedUsr(), {Entries: []reg{
			{Name: "lib/x86_64-linux-gnu/libfoo.so", Body: []byte("foo"), Mode: 0o755}, {Name: "bin/app", Body: []byte("app"), Mode: 0o755},
			registrytest.File("lib64/ld.so", "ld"), registrytest.File("sbin/tool", "tool"),
		}}}, with(mergedUsrWant(), map[string]entry{
			"usr/lib/x86_64-linux-gnu/libfoo.so": testtree.File(0o755, "foo"), "usr/bin/app": testtree.File(0o755, "app"),
			"usr/lib64": testtree.Dir(0o755), "usr/lib64/ld.so": testtree.File(0o644, "ld"), "usr/bin/tool": testtree.File(0o644, "tool"),
		})},
		{"WhiteoutAndOpaqueBelowLowerSymlink", []registrytest.Layer{mergedUsr(), {Entries: []reg{
			registrytest.File("lib/x86_64-linux-gnu/.wh.old.so", ""), registrytest.File("lib/sub/.wh..wh..opq", ""), registrytest.File("lib/sub/b", "b"),
		}}}, with(mergedUsrWant(), map[string]entry{"usr/lib/sub/b": testtree.File(0o644, "b")},
			"usr/lib/x86_64-linux-gnu/old.so", "usr/lib/sub/a")},
		{"HardlinksThroughSymlinks", []registrytest.Layer{mergedUsr(), {Entries: []reg{
			registrytest.Hardlink("bin/sh2", "bin/sh"), registrytest.Hardlink("lib/libc.so", "lib/x86_64-linux-gnu/libc.so.6"),
		}}}, with(mergedUsrWant(), map[string]entry{
			"usr/bin/sh2": testtree.File(0o755, "sh"), "usr/lib/libc.so": testtree.File(0o755, "libc"),
		})},
		{"DirEntryReplacesSymlink", []registrytest.Layer{mergedUsr(), {Entries: []reg{
			registrytest.Dir("bin/", 0o711), registrytest.File("bin/own", "own"),
		}}}, with(mergedUsrWant(), map[string]entry{"bin": testtree.Dir(0o711), "bin/own": testtree.File(0o644, "own")})},
		{"SameLayerSymlinkThenEntriesBelow", []registrytest.Layer{mergedUsr(), {Entries: []reg{
			registrytest.Symlink("opt", "usr/lib/sub"), registrytest.File("opt/c", "c"), registrytest.Symlink("usr/lib/up", "../../../../usr/bin"), registrytest.File("usr/lib/up/d", "d"),
		}}}, with(mergedUsrWant(), map[string]entry{
			"opt": testtree.Symlink("usr/lib/sub"), "usr/lib/sub/c": testtree.File(0o644, "c"),
			"usr/lib/up": testtree.Symlink("../../../../usr/bin"), "usr/bin/d": testtree.File(0o644, "d"),
		})},
		{"AbsoluteLinkStaysInside", []registrytest.Layer{
			{Entries: []reg{registrytest.Symlink("etc", "/srv/etc"), registrytest.Symlink("host", "/")}},
			{Entries: []reg{registrytest.File("etc/passwd", "root"), registrytest.File("host/tmp/x", "x")}},
		}, map[string]entry{
			"etc": testtree.Symlink("/srv/etc"), "host": testtree.Symlink("/"), "srv": testtree.Dir(0o755), "srv/etc": testtree.Dir(0o755),
			"srv/etc/passwd": testtree.File(0o644, "root"), "tmp": testtree.Dir(0o755), "tmp/x": testtree.File(0o644, "x"),
		}},
		{"TypeChangeWithRedundantWhiteout", []registrytest.Layer{
			{Entries: []reg{registrytest.Dir("var/", 0o755), registrytest.Dir("var/mail/", 0o755), registrytest.File("var/mail/root", "mail"), registrytest.Dir("var/spool/", 0o755),
				registrytest.Dir("var/spool/mail/", 0o755), registrytest.File("var/spool/mail/root", "spool")}},
			{Entries: []reg{registrytest.Symlink("var/spool/mail", "../mail"), registrytest.File("var/spool/mail/.wh.root", "")}},
		}, map[string]entry{
			"var": testtree.Dir(0o755), "var/mail": testtree.Dir(0o755), "var/mail/root": testtree.File(0o644, "mail"), "var/spool": testtree.Dir(0o755),
			"var/spool/mail": testtree.Symlink("../mail"),
		}},
		{"AUFSMetadata", []registrytest.Layer{
			{Entries: []reg{registrytest.Dir("usr/", 0o755), registrytest.Dir("usr/bin/", 0o755)}},
			{Entries: []reg{registrytest.File(".wh..wh.aufs", ""), registrytest.Dir(".wh..wh.orph/", 0o700), registrytest.Dir(".wh..wh.plnk/", 0o700),
				{Name: ".wh..wh.plnk/262.1045", Body: []byte("shared"), Mode: 0o755},
				registrytest.Hardlink("usr/bin/a", ".wh..wh.plnk/262.1045"), registrytest.Hardlink("usr/bin/b", "/.wh..wh.plnk/262.1045")}},
		}, map[string]entry{
			"usr": testtree.Dir(0o755), "usr/bin": testtree.Dir(0o755), "usr/bin/a": testtree.File(0o755, "shared"), "usr/bin/b": testtree.File(0o755, "shared"),
		}},
		{"SymlinkChainOf40", []registrytest.Layer{
			{Entries: chainEntries(40)}, {Entries: []reg{registrytest.File("l0/x", "x")}},
		}, with(chainWant(40), map[string]entry{"d/x": testtree.File(0o644, "x")})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := "rules/" + strings.ToLower(tt.name)
			r.Push(t, repo, "latest", registrytest.Image{Layers: tt.layers})
			SameTree(t, pullEveryMode(t, r.Host+"/"+repo, time.Minute), fixModes(tt.want))
		})
	}

	// Loops and chains deeper than 40 links fail in every mode, with one line,
	// and leave nothing.
	for _, tt := range []struct {
		name   string
		layers []registrytest.Layer
	}{
		{"SymlinkLoop", []registrytest.Layer{{Entries: []reg{registrytest.Symlink("a", "b"), registrytest.Symlink("b", "/a")}}, {Entries: []reg{registrytest.File("a/x", "x")}}}},
		{"SymlinkChainOf41", []registrytest.Layer{{Entries: chainEntries(41)}, {Entries: []reg{registrytest.File("l0/x", "x")}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			repo := "rules/" + strings.ToLower(tt.name)
			r.Push(t, repo, "latest", registrytest.Image{Layers: tt.layers})
			for _, m := range layerModes {
				cache := "no"
				if !m.noCache {
					cache = t.TempDir()
				}
				dest := filepath.Join(t.TempDir(), m.name)
				if m.overlay {
					umountAll(t, dest)
				}
				args := append(append([]string{"pull", "--cache", cache}, m.args...), r.Host+"/"+repo, dest)
				AssertCleanFailure(t, rootsWithin(t, time.Minute, args...), "too many levels of symbolic links", dest)
			}
		})
	}
}

// chainEntries is symlinks l0 -> l1 -> ... -> d and the directory d: l0 takes n links;
// chainWant is the tree they make.
func chainEntries(n int) []reg {
	out := []reg{registrytest.Dir("d/", 0o755)}
	for _, l := range testtree.Chain(n) {
		out = append(out, registrytest.Symlink(l.Name, l.Target))
	}
	return out
}

func chainWant(n int) map[string]entry {
	want := map[string]entry{"d": testtree.Dir(0o755)}
	for _, l := range testtree.Chain(n) {
		want[l.Name] = testtree.Symlink(l.Target)
	}
	return want
}
