package e2e

// Overlay mode, end to end: the mount shows exactly what hardlink assembly
// gives, writes go to the destination's upper layer and never into the cache,
// and umount ends it all.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// scanMeta is scan with what overlay and hardlink assembly must agree on besides: mtimes and
// xattrs (overlayfs bookkeeping, trusted.overlay.*, aside).
func scanMeta(t *testing.T, dir string) map[string]entry {
	t.Helper()
	return testtree.Scan(t, dir, testtree.SkipXattrs("trusted.overlay."))
}

// sameMeta fails unless two scans agree on type, mode, owner, content, link target, mtime and
// xattrs.
func sameMeta(t *testing.T, got, want map[string]entry) {
	t.Helper()
	only := testtree.Only(testtree.Type, testtree.Mode, testtree.Owner, testtree.Size, testtree.Content, testtree.Target,
		testtree.Mtime, testtree.Xattrs)
	if diffs := testtree.Diff(want, got, only); len(diffs) > 0 {
		t.Fatalf("overlay and hardlink destinations differ:\n%s", strings.Join(diffs, "\n"))
	}
}

// longCache is a cache directory whose path is far longer than what one
// page of overlay mount options could hold for many layers.
func longCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < 6; i++ {
		dir = filepath.Join(dir, strings.Repeat(string(rune('a'+i)), 60))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// umountAll unmounts dest at the end of a test if it is still mounted.
func umountAll(t *testing.T, dest string) {
	t.Cleanup(func() {
		for unix.Unmount(dest, unix.MNT_DETACH) == nil {
		}
	})
}

func isOverlayMount(t *testing.T, dest string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		for i, x := range f {
			if x == "-" && i+1 < len(f) && len(f) > 4 && f[4] == dest && f[i+1] == "overlay" {
				return true
			}
		}
	}
	return false
}

// overlayImages are the cases where overlayfs on its own would differ from
// hardlink assembly, or where whiteouts and opaque directories must work
// through the mount.
func overlayImages() map[string]registrytest.Image {
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	return map[string]registrytest.Image{
		"base": baseImage(registrytest.OCI),
		"opaqueRoot": {Layers: []registrytest.Layer{
			{Entries: []reg{{Name: "a", Body: []byte("a")}, {Name: "d/x", Body: []byte("x")}}},
			{Entries: []reg{{Name: ".wh..wh..opq"}, {Name: "b", Body: []byte("b")}}},
		}},
		"crossLayerHardlink": {Layers: []registrytest.Layer{
			{Entries: []reg{{Name: "usr/bin/a", Body: []byte("tool"), Mode: 0o755}}},
			{Entries: []reg{{Name: "usr/bin/b", Type: tar.TypeLink, Linkname: "usr/bin/a"}, {Name: "etc/c", Type: tar.TypeLink, Linkname: "usr/bin/a"}}},
			{Entries: []reg{{Name: "etc/.wh.c"}}},
		}},
		"implicitOverExplicit": {Layers: []registrytest.Layer{
			{Entries: []reg{
				{Name: "srv/", Type: tar.TypeDir, Mode: 0o750, Uid: 5, Gid: 6, ModTime: old, Xattrs: map[string]string{"user.note": "kept"}},
				{Name: "srv/deep/", Type: tar.TypeDir, Mode: 0o700, ModTime: old},
				{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777, ModTime: old},
			}},
			{Entries: []reg{{Name: "srv/deep/data", Body: []byte("d")}, {Name: "tmp/t", Body: []byte("t")}}},
			{Entries: []reg{{Name: "srv/deep/more", Body: []byte("m")}}},
		}},
		"typeChanges": {Layers: []registrytest.Layer{
			{Entries: []reg{{Name: "x/", Type: tar.TypeDir}, {Name: "x/in", Body: []byte("in")}, {Name: "y", Body: []byte("y")}, {Name: "lib", Type: tar.TypeSymlink, Linkname: "usr/lib"}, {Name: "usr/lib/z", Body: []byte("z")}}},
			{Entries: []reg{{Name: "x", Body: []byte("now a file")}, {Name: "y/", Type: tar.TypeDir, Mode: 0o711}, {Name: "y/in", Body: []byte("in y")}}},
			{Entries: []reg{{Name: "lib/", Type: tar.TypeDir, Mode: 0o700}, {Name: "lib/own", Body: []byte("own")}}},
		}},
	}
}

// TestOverlayMatchesHardlink pulls each image in both modes and compares
// the destinations entry by entry (type, mode, owner, content, link target,
// mtime, xattrs), then checks what overlay mode must add: the lease, writes
// landing in the upper layer only, and umount; and again against a copy pull
// from a cache that only copy and overlay pulls used.
func TestOverlayMatchesHardlink(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	imgs := overlayImages()
	for name, img := range imgs {
		r.Push(t, "ov/"+strings.ToLower(name), "latest", img)
	}
	cache := longCache(t)
	for name := range imgs {
		t.Run(name, func(t *testing.T) {
			ref := r.Host + "/ov/" + strings.ToLower(name)
			hard := filepath.Join(t.TempDir(), "hard")
			MustPull(t, nil, "--cache", cache, ref, hard)
			dest := filepath.Join(t.TempDir(), "over")
			umountAll(t, dest)
			MustPull(t, nil, "--cache", cache, "--mode", "overlay", ref, dest)
			if !isOverlayMount(t, dest) {
				t.Fatalf("%s is not an overlay mount", dest)
			}
			sameMeta(t, scanMeta(t, dest), scanMeta(t, hard))
			var hst, ost syscall.Stat_t
			syscall.Stat(hard, &hst)
			syscall.Stat(dest, &ost)
			if hst.Mode != ost.Mode || hst.Uid != ost.Uid || hst.Gid != ost.Gid {
				t.Errorf("DEST root: overlay %o %d:%d, hardlink %o %d:%d", ost.Mode, ost.Uid, ost.Gid, hst.Mode, hst.Uid, hst.Gid)
			}
			if res := Roots(t, nil, "umount", dest); res.Code != 0 || res.Stdout != "" {
				t.Fatalf("umount: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
			}
			AssertNoStaging(t, filepath.Dir(dest))

			// From a cache that a copy pull filled, no tree is linked: the
			// overlay trusts them without reading their records
			// (cas.Lookup, DirOnly), and the fix-up made from them must read them.
			ovCache := longCache(t)
			copied := filepath.Join(t.TempDir(), "copy")
			MustPull(t, nil, "--cache", ovCache, "--mode", "copy", ref, copied)
			MustPull(t, nil, "--cache", ovCache, "--mode", "overlay", ref, dest)
			sameMeta(t, scanMeta(t, dest), scanMeta(t, copied))
			if res := Roots(t, nil, "umount", dest); res.Code != 0 {
				t.Fatalf("umount: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
			}
		})
	}
}

// TestOverlayWritesStayInUpper writes, deletes and creates through an overlay
// destination and checks that the cache is untouched, that the changes are in
// the upper layer, that purge keeps the leased layers, and that umount (with
// and without --keep) cleans up.
func TestOverlayWritesStayInUpper(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "base", "latest", baseImage(registrytest.OCI))
	cache := longCache(t)
	parent := t.TempDir()
	dest := filepath.Join(parent, "rootfs")
	umountAll(t, dest)
	MustPull(t, nil, "--cache", cache, "--mode", "overlay", r.Host+"/base", dest)
	before := cacheFiles(t, cache)

	if err := os.WriteFile(dest+"/etc/passwd", []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest+"/new", []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dest + "/usr/bin/tool"); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dest + "/var"); err != nil {
		t.Fatal(err)
	}
	if after := cacheFiles(t, cache); !equalMaps(before, after) {
		t.Fatalf("writes through the overlay changed the cache:\nbefore %v\nafter  %v", before, after)
	}
	upper := filepath.Join(parent, ".rootfs.roots-overlay", "upper")
	if b, err := os.ReadFile(upper + "/etc/passwd"); err != nil || string(b) != "changed\n" {
		t.Fatalf("upper layer etc/passwd: %q, %v", b, err)
	}
	if fi, err := os.Lstat(upper + "/usr/bin/tool"); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("upper layer has no whiteout for the deleted usr/bin/tool: %v, %v", fi, err)
	}

	// ls shows the live destination; a purge keeps its layers.
	res := Roots(t, nil, "ls", "--json", "--cache", cache)
	var ls roots.Listing
	if err := json.Unmarshal([]byte(res.Stdout), &ls); err != nil || res.Code != 0 {
		t.Fatalf("ls --json: exit %d, %v: %s%s", res.Code, err, res.Stdout, res.Stderr)
	}
	if len(ls.Destinations) != 1 || ls.Destinations[0].Dest != dest || !ls.Destinations[0].Live {
		t.Fatalf("ls destinations: %+v, want %s live", ls.Destinations, dest)
	}
	if res := Roots(t, nil, "purge", "--cache", cache); res.Code != 0 {
		t.Fatalf("purge: %s", res.Stderr)
	}
	trees, _ := filepath.Glob(filepath.Join(cache, "trees/sha256/*.json"))
	if len(trees) != 3 {
		t.Fatalf("purge with a live lease left %d trees, want the image's 3", len(trees))
	}
	if b, err := os.ReadFile(dest + "/tmp/x"); err != nil || string(b) != "in tmp" {
		t.Fatalf("after purge, reading through the mount: %q, %v", b, err)
	}
	if res := Roots(t, nil, "check", "--cache", cache); res.Code != 0 || strings.Count(res.Stdout, "\n") != 1 {
		t.Fatalf("check after writes through the overlay: exit %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	// A second pull to the mounted DEST needs --force, which replaces the mount.
	if res := Roots(t, nil, "pull", "--cache", cache, "--mode", "overlay", r.Host+"/base", dest); res.Code != 1 || !strings.Contains(res.Stderr, "exists") {
		t.Fatalf("pull onto a mounted DEST without --force: exit %d: %s", res.Code, res.Stderr)
	}
	MustPull(t, nil, "--cache", cache, "--mode", "overlay", "--force", r.Host+"/base", dest)
	if b, err := os.ReadFile(dest + "/etc/passwd"); err != nil || string(b) != "root:x:0:0::/root:/bin/bash\n" {
		t.Fatalf("after --force, etc/passwd: %q, %v (the old upper layer must go)", b, err)
	}
	os.WriteFile(dest+"/kept", []byte("k"), 0o644)

	// umount --keep leaves the upper layer at DEST.upper.
	res = Roots(t, nil, "umount", "--keep", dest)
	if res.Code != 0 || !strings.Contains(res.Stdout, dest+".upper") {
		t.Fatalf("umount --keep: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
	}
	if isOverlayMount(t, dest) {
		t.Fatal("still mounted after umount")
	}
	if b, err := os.ReadFile(dest + ".upper/kept"); err != nil || string(b) != "k" {
		t.Fatalf("kept upper: %q, %v", b, err)
	}
	if _, err := os.Lstat(dest); !os.IsNotExist(err) {
		t.Fatalf("DEST left after umount: %v", err)
	}
	os.RemoveAll(dest + ".upper")
	AssertNoStaging(t, parent)
	if leases, _ := os.ReadDir(filepath.Join(cache, "leases")); len(leases) != 0 {
		t.Fatalf("umount left %d leases", len(leases))
	}
	if res := Roots(t, nil, "umount", dest); res.Code != 1 || !strings.Contains(res.Stderr, "not an overlay") {
		t.Fatalf("umount of nothing: exit %d: %s", res.Code, res.Stderr)
	}
	// Without a lease the trees may go.
	Roots(t, nil, "purge", "--cache", cache)
	if trees, _ := filepath.Glob(filepath.Join(cache, "trees/sha256/*")); len(trees) != 0 {
		t.Fatalf("purge after umount left %d trees", len(trees))
	}
}

// TestForceAcrossModes replaces a hardlink destination by an overlay one and
// back, with --force.
func TestForceAcrossModes(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "base", "latest", baseImage(registrytest.OCI))
	cache := t.TempDir()
	env := []string{"ROOTS_CACHE=" + cache}
	dest := filepath.Join(t.TempDir(), "rootfs")
	umountAll(t, dest)
	MustPull(t, env, r.Host+"/base", dest)
	os.WriteFile(dest+"/old", []byte("old"), 0o644)
	MustPull(t, env, "--force", "--mode", "overlay", r.Host+"/base", dest)
	if !isOverlayMount(t, dest) {
		t.Fatal("overlay --force over a hardlink DEST did not mount")
	}
	SameTree(t, testtree.Scan(t, dest), fixModes(baseWant()))
	os.WriteFile(dest+"/new", []byte("new"), 0o644)
	MustPull(t, env, "--force", "--mode", "copy", r.Host+"/base", dest)
	if isOverlayMount(t, dest) {
		t.Fatal("copy --force over an overlay DEST left it mounted")
	}
	SameTree(t, testtree.Scan(t, dest), fixModes(baseWant()))
	AssertNoStaging(t, filepath.Dir(dest))
	leases, _ := os.ReadDir(filepath.Join(cache, "leases"))
	if len(leases) != 1 {
		t.Fatalf("%d destination records, want the copy's alone (the overlay's released)", len(leases))
	}
	if b, _ := os.ReadFile(filepath.Join(cache, "leases", leases[0].Name())); !strings.Contains(string(b), `"mode":"copy"`) {
		t.Errorf("the record left is not the copy's: %s", b)
	}
}

// TestOverlayStaleLease: a mount that disappears behind roots' back (a manual
// umount, a reboot) leaves a lease that the next purge or ls releases.
func TestOverlayStaleLease(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "img", "latest", smallImage("stale"))
	cache := t.TempDir()
	dest := filepath.Join(t.TempDir(), "d")
	umountAll(t, dest)
	MustPull(t, nil, "--cache", cache, "--mode", "overlay", r.Host+"/img", dest)
	if err := unix.Unmount(dest, 0); err != nil {
		t.Fatal(err)
	}
	res := Roots(t, nil, "ls", "--json", "--cache", cache)
	var ls roots.Listing
	json.Unmarshal([]byte(res.Stdout), &ls)
	if len(ls.Destinations) != 0 {
		t.Fatalf("ls after a manual umount: %+v, want the stale lease released", ls.Destinations)
	}
	Roots(t, nil, "purge", "--cache", cache)
	if trees, _ := filepath.Glob(filepath.Join(cache, "trees/sha256/*")); len(trees) != 0 {
		t.Fatalf("purge kept %d trees of a stale lease", len(trees))
	}
	// roots umount still cleans up what is left beside DEST.
	if res := Roots(t, nil, "umount", dest); res.Code != 0 {
		t.Fatalf("umount after a manual umount: exit %d: %s", res.Code, res.Stderr)
	}
	AssertNoStaging(t, filepath.Dir(dest))
}

// TestOverlayManyLayers mounts an image of 200 layers from a cache at a long
// path: far beyond one page of lowerdir= options.
func TestOverlayManyLayers(t *testing.T) {
	NeedRoot(t)
	testtree.MountinfoLock(t, true) // a long mountinfo line: runc cannot start meanwhile
	r := registrytest.Start(t, registrytest.Config{})
	var img registrytest.Image
	for i := 0; i < 200; i++ {
		img.Layers = append(img.Layers, registrytest.Layer{Compression: "none", Entries: []reg{
			{Name: fmt.Sprintf("layers/%03d", i), Body: []byte(fmt.Sprint(i))},
			{Name: "top", Body: []byte(fmt.Sprint(i))},
		}})
	}
	r.Push(t, "many", "latest", img)
	cache := longCache(t)
	dest := filepath.Join(t.TempDir(), "d")
	umountAll(t, dest)
	MustPull(t, nil, "--cache", cache, "--jobs", "8", "--mode", "overlay", r.Host+"/many", dest)
	got := testtree.Scan(t, dest)
	if len(got) != 202 {
		t.Fatalf("%d entries, want 202", len(got))
	}
	if b, _ := os.ReadFile(dest + "/top"); string(b) != "199" {
		t.Fatalf("top: %q, want the top layer's 199", b)
	}
	for i := 0; i < 200; i += 37 {
		if b, _ := os.ReadFile(fmt.Sprintf("%s/layers/%03d", dest, i)); string(b) != fmt.Sprint(i) {
			t.Fatalf("layers/%03d: %q", i, b)
		}
	}
	// One layer works too (overlayfs wants two lowers when it has no upper).
	r.Push(t, "one", "latest", registrytest.Image{Layers: img.Layers[:1]})
	one := filepath.Join(t.TempDir(), "one")
	umountAll(t, one)
	MustPull(t, nil, "--cache", cache, "--mode", "overlay", r.Host+"/one", one)
	if b, _ := os.ReadFile(one + "/top"); string(b) != "0" {
		t.Fatalf("one layer: top %q", b)
	}
	for _, d := range []string{dest, one} {
		if res := Roots(t, nil, "umount", d); res.Code != 0 {
			t.Fatalf("umount %s: %s", d, res.Stderr)
		}
	}
}

// TestOverlayNeedsRoot: without root, overlay mode fails at once and says
// what to do instead.
func TestOverlayNeedsRoot(t *testing.T) {
	NeedRoot(t)
	// The binary's directory is private to root; nobody must be able to run it.
	if err := os.Chmod(filepath.Dir(Bin()), 0o755); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	os.Chmod(parent, 0o777)
	dest := filepath.Join(parent, "d")
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", Bin(),
		"pull", "--cache", filepath.Join(parent, "cache"), "--mode", "overlay", "127.0.0.1:1/img", dest)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + parent}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "--mode hardlink") || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("overlay as nobody: %v: %q", err, stderr.String())
	}
	if _, err := os.Lstat(dest); !os.IsNotExist(err) {
		t.Fatal("the refused pull created DEST")
	}
}

// cacheFiles maps every regular file under the cache's trees (and fix-ups)
// to its size, mtime and content hash.
func cacheFiles(t *testing.T, cache string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, top := range []string{"trees", "fixups"} {
		filepath.WalkDir(filepath.Join(cache, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi, _ := d.Info()
			out[p] = fmt.Sprintf("%d %d %x", fi.Size(), fi.ModTime().UnixNano(), b[:min(len(b), 64)])
			return nil
		})
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
