package main

// Layer semantics end to end, in every mode: what a pulled rootfs is when
// layers write below symlinks, repeat, or carry AUFS metadata. Every image is
// pulled cold and warm with --mode hardlink, --mode copy and --mode overlay,
// and with --cache=no; the four destinations must equal each other entry by
// entry (mtimes and xattrs included) and the expected tree.

import (
	"archive/tar"
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
			if res.code != 0 {
				t.Fatalf("%s %s pull: exit %d: %s", run, m.name, res.code, res.stderr)
			}
			got := lcScan(t, dest)
			for p, e := range got {
				// A directory no layer names takes the time it was made (by an
				// unpack or the pull), which differs from one cache to the next.
				if e.Type == "d" && e.Mtime > madeRecently {
					e.Mtime = 0
					got[p] = e
				}
			}
			if m.overlay {
				if res := runRoots(t, nil, "umount", dest); res.code != 0 {
					t.Fatalf("umount %s: exit %d: %s", dest, res.code, res.stderr)
				}
			}
			if first == nil {
				first, firstName = got, run+" "+m.name
				continue
			}
			t.Run(run+"-"+m.name+"-equals-"+strings.ReplaceAll(firstName, " ", "-"), func(t *testing.T) {
				lcSame(t, got, first)
			})
		}
	}
	return first
}

// madeRecently is later than any time an image in these tests gives.
var madeRecently = registrytest.EntryTime.Add(365 * 24 * time.Hour).UnixNano()

// rootsWithin runs the binary and fails the test, with the goroutine dump, after limit.
func rootsWithin(t *testing.T, limit time.Duration, args ...string) result {
	t.Helper()
	return rootsLimit(t, limit, nil, args...)
}

// TestDuplicateLayers pulls images that list the same layer at several
// places, up to thousands of times: each is fetched and unpacked once and
// applied at every place, and no pull waits on itself.
func TestDuplicateLayers(t *testing.T) {
	needRoot(t)
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
		"etc":        dir(0o755),
		"etc/a":      file(0o644, "a"),
		"etc/b":      file(0o644, "b"),
		"etc/shared": file(0o644, "from a"),
	}
	tests := []struct {
		name   string
		layers []registrytest.Layer
		want   map[string]entry
	}{
		{"ABA", []registrytest.Layer{a, b, a}, want},
		{"AAB", []registrytest.Layer{a, a, b, b}, map[string]entry{
			"etc": dir(0o755), "etc/b": file(0o644, "b"), "etc/shared": file(0o644, "from b")}},
		{"ThousandsOfEmpty", many, map[string]entry{
			"etc": dir(0o755), "etc/b": file(0o644, "b"), "etc/shared": file(0o644, "from b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := "dup/" + strings.ToLower(tt.name)
			r.Push(t, repo, "latest", registrytest.Image{Layers: tt.layers})
			// A cold pull raced against itself used to hang about every second try.
			for i := range 3 {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					sameTree(t, pullEveryMode(t, r.Host+"/"+repo, 2*time.Minute), fixModes(tt.want))
				})
			}
		})
	}
}

// Shorthands for the layer tables.
func lf(name, body string) reg       { return reg{Name: name, Body: []byte(body)} }
func ld(name string, mode int64) reg { return reg{Name: name, Type: tar.TypeDir, Mode: mode} }
func ls(name, to string) reg         { return reg{Name: name, Type: tar.TypeSymlink, Linkname: to} }
func lh(name, to string) reg         { return reg{Name: name, Type: tar.TypeLink, Linkname: to} }
func lw(name string) reg             { return reg{Name: name} }

// mergedUsr is a merged-/usr base layer, as Debian 12, Ubuntu and Fedora have.
func mergedUsr() registrytest.Layer {
	return registrytest.Layer{Entries: []reg{
		ld("usr/", 0o755), ld("usr/bin/", 0o755), ld("usr/lib/", 0o755), ld("usr/lib/x86_64-linux-gnu/", 0o755),
		{Name: "usr/bin/sh", Body: []byte("sh"), Mode: 0o755}, {Name: "usr/lib/x86_64-linux-gnu/libc.so.6", Body: []byte("libc"), Mode: 0o755},
		lf("usr/lib/x86_64-linux-gnu/old.so", "old"), ld("usr/lib/sub/", 0o750), lf("usr/lib/sub/a", "a"),
		ls("bin", "usr/bin"), ls("lib", "usr/lib"), ls("lib64", "usr/lib64"), ls("sbin", "/usr/bin"),
	}}
}

// mergedUsrWant is what mergedUsr gives.
func mergedUsrWant() map[string]entry {
	return map[string]entry{
		"usr": dir(0o755), "usr/bin": dir(0o755), "usr/lib": dir(0o755), "usr/lib/x86_64-linux-gnu": dir(0o755),
		"usr/bin/sh": file(0o755, "sh"), "usr/lib/x86_64-linux-gnu/libc.so.6": file(0o755, "libc"),
		"usr/lib/x86_64-linux-gnu/old.so": file(0o644, "old"), "usr/lib/sub": dir(0o750), "usr/lib/sub/a": file(0o644, "a"),
		"bin": link("usr/bin"), "lib": link("usr/lib"), "lib64": link("usr/lib64"), "sbin": link("/usr/bin"),
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
	needRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	tests := []struct {
		name   string
		layers []registrytest.Layer
		want   map[string]entry
	}{
		{"EntriesBelowLowerSymlinks", []registrytest.Layer{mergedUsr(), {Entries: []reg{
			{Name: "lib/x86_64-linux-gnu/libfoo.so", Body: []byte("foo"), Mode: 0o755}, {Name: "bin/app", Body: []byte("app"), Mode: 0o755},
			lf("lib64/ld.so", "ld"), lf("sbin/tool", "tool"),
		}}}, with(mergedUsrWant(), map[string]entry{
			"usr/lib/x86_64-linux-gnu/libfoo.so": file(0o755, "foo"), "usr/bin/app": file(0o755, "app"),
			"usr/lib64": dir(0o755), "usr/lib64/ld.so": file(0o644, "ld"), "usr/bin/tool": file(0o644, "tool"),
		})},
		{"WhiteoutAndOpaqueBelowLowerSymlink", []registrytest.Layer{mergedUsr(), {Entries: []reg{
			lw("lib/x86_64-linux-gnu/.wh.old.so"), lw("lib/sub/.wh..wh..opq"), lf("lib/sub/b", "b"),
		}}}, with(mergedUsrWant(), map[string]entry{"usr/lib/sub/b": file(0o644, "b")},
			"usr/lib/x86_64-linux-gnu/old.so", "usr/lib/sub/a")},
		{"HardlinksThroughSymlinks", []registrytest.Layer{mergedUsr(), {Entries: []reg{
			lh("bin/sh2", "bin/sh"), lh("lib/libc.so", "lib/x86_64-linux-gnu/libc.so.6"),
		}}}, with(mergedUsrWant(), map[string]entry{
			"usr/bin/sh2": file(0o755, "sh"), "usr/lib/libc.so": file(0o755, "libc"),
		})},
		{"DirEntryReplacesSymlink", []registrytest.Layer{mergedUsr(), {Entries: []reg{
			ld("bin/", 0o711), lf("bin/own", "own"),
		}}}, with(mergedUsrWant(), map[string]entry{"bin": dir(0o711), "bin/own": file(0o644, "own")})},
		{"SameLayerSymlinkThenEntriesBelow", []registrytest.Layer{mergedUsr(), {Entries: []reg{
			ls("opt", "usr/lib/sub"), lf("opt/c", "c"), ls("usr/lib/up", "../../../../usr/bin"), lf("usr/lib/up/d", "d"),
		}}}, with(mergedUsrWant(), map[string]entry{
			"opt": link("usr/lib/sub"), "usr/lib/sub/c": file(0o644, "c"),
			"usr/lib/up": link("../../../../usr/bin"), "usr/bin/d": file(0o644, "d"),
		})},
		{"AbsoluteLinkStaysInside", []registrytest.Layer{
			{Entries: []reg{ls("etc", "/srv/etc"), ls("host", "/")}},
			{Entries: []reg{lf("etc/passwd", "root"), lf("host/tmp/x", "x")}},
		}, map[string]entry{
			"etc": link("/srv/etc"), "host": link("/"), "srv": dir(0o755), "srv/etc": dir(0o755),
			"srv/etc/passwd": file(0o644, "root"), "tmp": dir(0o755), "tmp/x": file(0o644, "x"),
		}},
		{"TypeChangeWithRedundantWhiteout", []registrytest.Layer{
			{Entries: []reg{ld("var/", 0o755), ld("var/mail/", 0o755), lf("var/mail/root", "mail"), ld("var/spool/", 0o755),
				ld("var/spool/mail/", 0o755), lf("var/spool/mail/root", "spool")}},
			{Entries: []reg{ls("var/spool/mail", "../mail"), lw("var/spool/mail/.wh.root")}},
		}, map[string]entry{
			"var": dir(0o755), "var/mail": dir(0o755), "var/mail/root": file(0o644, "mail"), "var/spool": dir(0o755),
			"var/spool/mail": link("../mail"),
		}},
		{"AUFSMetadata", []registrytest.Layer{
			{Entries: []reg{ld("usr/", 0o755), ld("usr/bin/", 0o755)}},
			{Entries: []reg{lf(".wh..wh.aufs", ""), ld(".wh..wh.orph/", 0o700), ld(".wh..wh.plnk/", 0o700),
				{Name: ".wh..wh.plnk/262.1045", Body: []byte("shared"), Mode: 0o755},
				lh("usr/bin/a", ".wh..wh.plnk/262.1045"), lh("usr/bin/b", "/.wh..wh.plnk/262.1045")}},
		}, map[string]entry{
			"usr": dir(0o755), "usr/bin": dir(0o755), "usr/bin/a": file(0o755, "shared"), "usr/bin/b": file(0o755, "shared"),
		}},
		{"SymlinkChainOf40", []registrytest.Layer{
			{Entries: chainEntries(40)}, {Entries: []reg{lf("l0/x", "x")}},
		}, with(chainWant(40), map[string]entry{"d/x": file(0o644, "x")})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := "rules/" + strings.ToLower(tt.name)
			r.Push(t, repo, "latest", registrytest.Image{Layers: tt.layers})
			sameTree(t, pullEveryMode(t, r.Host+"/"+repo, time.Minute), fixModes(tt.want))
		})
	}

	// Loops and chains deeper than 40 links fail in every mode, with one line,
	// and leave nothing.
	for _, tt := range []struct {
		name   string
		layers []registrytest.Layer
	}{
		{"SymlinkLoop", []registrytest.Layer{{Entries: []reg{ls("a", "b"), ls("b", "/a")}}, {Entries: []reg{lf("a/x", "x")}}}},
		{"SymlinkChainOf41", []registrytest.Layer{{Entries: chainEntries(41)}, {Entries: []reg{lf("l0/x", "x")}}}},
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
				assertCleanFailure(t, rootsWithin(t, time.Minute, args...), "too many levels of symbolic links", dest)
			}
		})
	}
}

// chainEntries is symlinks l0 -> l1 -> ... -> d and the directory d: l0 takes n links;
// chainWant is the tree they make.
func chainEntries(n int) []reg {
	out := []reg{ld("d/", 0o755)}
	for _, l := range testtree.Chain(n) {
		out = append(out, ls(l.Name, l.Target))
	}
	return out
}

func chainWant(n int) map[string]entry {
	want := map[string]entry{"d": dir(0o755)}
	for _, l := range testtree.Chain(n) {
		want[l.Name] = link(l.Target)
	}
	return want
}
