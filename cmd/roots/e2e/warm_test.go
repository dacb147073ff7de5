package e2e

// A warm pull does what only a warm pull needs: one manifest request for the
// tag (is it still the same image?), nothing that a digest names, and no
// stat walk of trees that no hardlinked destination ever shared.

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// TestWarmPullFetchesOnlyTheTag: a second pull of an index image GETs the
// tag's manifest and nothing else: not the config, not the platform's
// manifest, not a layer, in every mode that reads the cache.
func TestWarmPullFetchesOnlyTheTag(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	img := baseImage(registrytest.OCI)
	img.OS, img.Arch = "linux", runtime.GOARCH
	other := smallImage("other")
	other.OS, other.Arch = "linux", "s390x"
	if runtime.GOARCH == "s390x" {
		other.Arch = "riscv64"
	}
	r.PushIndex(t, "multi", "latest", registrytest.OCI, img, other)
	cache := t.TempDir()
	env := []string{"ROOTS_CACHE=" + cache}
	MustPull(t, env, r.Host+"/multi", filepath.Join(t.TempDir(), "cold"))
	for _, mode := range []string{"hardlink", "copy"} {
		r.ResetRequests()
		dest := filepath.Join(t.TempDir(), mode)
		MustPull(t, env, "--mode", mode, r.Host+"/multi", dest)
		SameTree(t, testtree.Scan(t, dest), fixModes(baseWant()))
		var gets []string
		for _, req := range r.Requests() {
			if req.Method == "GET" && strings.HasPrefix(req.Path, "/v2/multi/") {
				gets = append(gets, req.Path)
			}
		}
		if len(gets) != 1 || gets[0] != "/v2/multi/manifests/latest" {
			t.Errorf("warm %s pull GET %q, want only the tag's manifest", mode, gets)
		}
	}
}

// TestOverlayTrustsUnexposedTrees: a tree that only overlay (or copy)
// destinations used is reused without a check, so a change made inside the
// cache by hand is not seen there (roots check sees it); once a hardlink pull
// has exposed the tree, the next pull of any mode checks it and repairs it.
func TestOverlayTrustsUnexposedTrees(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	p := r.Push(t, "base", "latest", baseImage(registrytest.OCI))
	cache := t.TempDir()
	env := []string{"ROOTS_CACHE=" + cache}
	top := t.TempDir()
	overlay := func(name string) (string, Result) {
		t.Helper()
		dest := filepath.Join(top, name)
		umountAll(t, dest)
		res := Roots(t, env, "pull", "--mode", "overlay", r.Host+"/base", dest)
		if res.Code != 0 {
			t.Fatalf("overlay pull %s: exit %d: %s", name, res.Code, res.Stderr)
		}
		return dest, res
	}
	umount := func(dest string) {
		t.Helper()
		if res := Roots(t, env, "umount", dest); res.Code != 0 {
			t.Fatalf("umount %s: %s", dest, res.Stderr)
		}
	}
	stamps := func() []string {
		m, _ := filepath.Glob(filepath.Join(cache, "linked/*"))
		return m
	}
	passwd := filepath.Join(cache, "trees", "sha256", p.DiffIDs[2].Encoded(), "etc/passwd") // the top layer's
	change := func() {
		t.Helper()
		if err := os.WriteFile(passwd, []byte("changed by hand\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	d1, _ := overlay("o1")
	umount(d1)
	if s := stamps(); len(s) != 0 {
		t.Fatalf("an overlay pull marked trees linked: %v", s)
	}
	change()
	d2, res := overlay("o2")
	if strings.Contains(res.Stderr, "was not as roots left it") {
		t.Fatalf("an unexposed tree was checked: %s", res.Stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(d2, "etc/passwd")); string(b) != "changed by hand\n" {
		t.Fatalf("o2 etc/passwd %q: the unexposed tree was walked and remade", b)
	}
	umount(d2)
	if res := Roots(t, env, "check"); res.Code != 0 || !strings.HasSuffix(res.Stdout, ": 1 repaired\n") {
		t.Fatalf("roots check must still check every tree: exit %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	change()
	h := filepath.Join(top, "h")
	MustPull(t, env, r.Host+"/base", h) // exposes the trees (the change predates it: unseen here)
	if len(stamps()) != len(p.DiffIDs) {
		t.Fatalf("a hardlink pull marked %d of %d trees linked", len(stamps()), len(p.DiffIDs))
	}
	d3, res := overlay("o3")
	if !strings.Contains(res.Stderr, "was not as roots left it") {
		t.Fatalf("an exposed changed tree was not repaired: stderr %q", res.Stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(d3, "etc/passwd")); string(b) != "root:x:0:0::/root:/bin/bash\n" {
		t.Fatalf("o3 etc/passwd %q after the repair", b)
	}
	umount(d3)

	// Once no destination links a tree any more, its next reuse drops the stamp.
	if err := os.RemoveAll(h); err != nil {
		t.Fatal(err)
	}
	d4, _ := overlay("o4")
	umount(d4)
	if s := stamps(); len(s) != 0 {
		t.Fatalf("stamps left after the hardlinked destination went: %v", s)
	}
}
