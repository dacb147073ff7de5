package main

// Layer semantics end to end, in every mode: what a pulled rootfs is when
// layers write below symlinks, repeat, or carry AUFS metadata. Every image is
// pulled cold and warm with --mode hardlink, --mode copy and --mode overlay,
// and with --cache=no; the four destinations must equal each other entry by
// entry (mtimes and xattrs included) and the expected tree.

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
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
	var first map[string]lcMeta
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
				if res := roots(t, nil, "umount", dest); res.code != 0 {
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
	out := make(map[string]entry, len(first))
	for p, e := range first {
		out[p] = e.entry
	}
	return out
}

// madeRecently is later than any time an image in these tests gives.
var madeRecently = registrytest.EntryTime.Add(365 * 24 * time.Hour).UnixNano()

// rootsWithin runs the binary and kills it after limit: a hang is a failure.
func rootsWithin(t *testing.T, limit time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, rootsBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "ROOTS_TEST_BACKOFF=10ms"}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("roots %v did not finish within %v (a hang?): %s", args, limit, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
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

var _ = tar.TypeReg
