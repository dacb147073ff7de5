package e2e

// The cache's lifecycle, end to end: purge policies, integrity of trees that
// hardlinked destinations share, roots check, roots ls, copy mode.

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// noise is n bytes that no compressor shrinks.
func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// bigImage is one small shared-looking layer and one of 1 MiB of noise.
func bigImage(name string, seed uint64) registrytest.Image {
	return registrytest.Image{Layers: []registrytest.Layer{
		{Compression: "gzip", Entries: []reg{{Name: "etc/" + name, Body: []byte(name)}}},
		{Compression: "none", Entries: []reg{{Name: "data/" + name, Body: noise(seed, 1<<20)}}},
	}}
}

// imageObjects are the cache paths (record names an image record without its platform) whose mtimes are an image's last use.
func imageObjects(cache string, p registrytest.Pushed, record string) []string {
	records, _ := filepath.Glob(filepath.Join(cache, "images", record+"@*")) // one per platform
	paths := append([]string{filepath.Join(cache, "blobs/sha256", p.Digest.Encoded())}, records...)
	var cfg struct {
		Config struct{ Digest digest.Digest } `json:"config"`
	}
	json.Unmarshal(p.Manifest, &cfg)
	paths = append(paths, filepath.Join(cache, "blobs/sha256", cfg.Config.Digest.Encoded()))
	for i, l := range p.Layers {
		paths = append(paths,
			filepath.Join(cache, "blobs/sha256", l.Digest.Encoded()),
			filepath.Join(cache, "trees/sha256", p.DiffIDs[i].Encoded()+".json"))
	}
	return paths
}

func age(t *testing.T, paths []string, when time.Time) {
	t.Helper()
	for _, p := range paths {
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
}

func allExist(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			return false
		}
	}
	return true
}

func noneExist(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return false
		}
	}
	return true
}

// TestPurgePolicies: --older-than removes what was not used for that long,
// --max-size evicts least recently used first, --dry-run removes nothing and
// says what would go.
func TestPurgePolicies(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	a := r.Push(t, "a", "latest", bigImage("a", 1))
	b := r.Push(t, "b", "latest", bigImage("b", 2))
	cache := t.TempDir()
	env := []string{"ROOTS_CACHE=" + cache}
	host := strings.Split(r.Host, "/")[0]
	pullBoth := func() { // the destinations go at once: one on disk keeps its image's blobs
		for _, name := range []string{"a", "b"} {
			dest := filepath.Join(t.TempDir(), name)
			MustPull(t, env, r.Host+"/"+name, dest)
			os.RemoveAll(dest)
		}
	}
	pullBoth()
	aObjs := imageObjects(cache, a, host+"/a/latest")
	bObjs := imageObjects(cache, b, host+"/b/latest")
	if !allExist(aObjs) || !allExist(bObjs) {
		t.Fatal("a pull did not leave the objects the test expects")
	}
	now := time.Now()
	age(t, aObjs, now.Add(-10*24*time.Hour))
	age(t, bObjs, now.Add(-2*time.Hour))

	// --dry-run names a's objects (and only them) and removes nothing.
	res := Roots(t, env, "purge", "--older-than", "7d", "--dry-run")
	if res.Code != 0 {
		t.Fatalf("purge --dry-run: %s", res.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != len(aObjs)+1 || !strings.HasPrefix(lines[len(lines)-1], "would free 2.1 MB") {
		t.Fatalf("purge --older-than 7d --dry-run printed:\n%s\nwant %d objects and a total of about 2 MiB (blob and tree)", res.Stdout, len(aObjs))
	}
	for _, l := range a.Layers {
		if !strings.Contains(res.Stdout, l.Digest.String()) {
			t.Errorf("dry run does not name a's layer %s", l.Digest)
		}
	}
	for _, l := range b.Layers {
		if strings.Contains(res.Stdout, l.Digest.String()) {
			t.Errorf("dry run names b's layer %s, used 2 hours ago", l.Digest)
		}
	}
	if !allExist(aObjs) {
		t.Fatal("--dry-run removed something")
	}

	// --older-than removes a, keeps b.
	if res := Roots(t, env, "purge", "--older-than", "7d"); res.Code != 0 || res.Stdout != "" {
		t.Fatalf("purge --older-than: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
	}
	if !noneExist(aObjs) || !allExist(bObjs) {
		t.Fatalf("after --older-than 7d: a gone %v (want true), b kept %v (want true)", noneExist(aObjs), allExist(bObjs))
	}
	if trees, _ := filepath.Glob(filepath.Join(cache, "trees/sha256", a.DiffIDs[1].Encoded())); len(trees) != 0 {
		t.Fatal("a's tree directory stayed")
	}

	// --max-size evicts the least recently used (b, older) until the rest fits.
	pullBoth()
	age(t, bObjs, now.Add(-2*time.Hour))
	age(t, aObjs, now.Add(-1*time.Hour))
	if res := Roots(t, env, "purge", "--max-size", "2.5M"); res.Code != 0 {
		t.Fatalf("purge --max-size: %s", res.Stderr)
	}
	bigA := []string{filepath.Join(cache, "blobs/sha256", a.Layers[1].Digest.Encoded()), filepath.Join(cache, "trees/sha256", a.DiffIDs[1].Encoded())}
	bigB := []string{filepath.Join(cache, "blobs/sha256", b.Layers[1].Digest.Encoded()), filepath.Join(cache, "trees/sha256", b.DiffIDs[1].Encoded())}
	if !allExist(aObjs) || !noneExist(bigB) {
		t.Fatalf("after --max-size 2.5M: a kept %v (want true), b's big layer gone %v (want true)", allExist(aObjs), noneExist(bigB))
	}
	if res := Roots(t, env, "purge", "--max-size", "100G"); res.Code != 0 || !allExist(bigA) {
		t.Fatalf("purge --max-size 100G removed something: %s", res.Stderr)
	}

	// Blobs and trees go separately: with the blob gone, the tree still serves a pull.
	os.Remove(filepath.Join(cache, "blobs/sha256", a.Layers[1].Digest.Encoded()))
	r.ResetRequests()
	a2 := filepath.Join(t.TempDir(), "a2")
	MustPull(t, env, r.Host+"/a", a2)
	os.RemoveAll(a2)
	for _, req := range r.Requests() {
		for _, l := range a.Layers {
			if strings.HasSuffix(req.Path, l.Digest.String()) {
				t.Fatalf("a pull with every tree cached fetched %s", req.Path)
			}
		}
	}

	// A plain purge empties the cache.
	if res := Roots(t, env, "purge"); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	for _, d := range []string{"blobs/sha256", "trees/sha256", "fixups/sha256", "images", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(cache, d)); len(ents) != 0 {
			t.Errorf("%s: %d entries after purge", d, len(ents))
		}
	}
	for _, bad := range [][]string{{"--older-than", "soon"}, {"--max-size", "lots"}, {"--max-size", "-1G"}} {
		if res := Roots(t, env, append([]string{"purge"}, bad...)...); res.Code != 2 {
			t.Errorf("purge %v: exit %d, want a usage error: %s", bad, res.Code, res.Stderr)
		}
	}
}

// TestHardlinkWriteIsRepaired: a write through a hardlinked destination
// changes the cache's tree; the next pull notices, warns and unpacks the
// layer again, and roots check finds and repairs the same.
func TestHardlinkWriteIsRepaired(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	p := r.Push(t, "base", "latest", baseImage(registrytest.OCI))
	cache := t.TempDir()
	env := []string{"ROOTS_CACHE=" + cache}
	d1 := filepath.Join(t.TempDir(), "d1")
	MustPull(t, env, r.Host+"/base", d1)

	// (etc/ is copied into a hardlink destination: a file elsewhere is shared.)
	f, err := os.OpenFile(d1+"/usr/bin/tool", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x\n")
	f.Close()

	r.ResetRequests()
	d2 := filepath.Join(t.TempDir(), "d2")
	res := Roots(t, env, "pull", r.Host+"/base", d2)
	if res.Code != 0 || !strings.Contains(res.Stderr, "was not as roots left it") || strings.Count(res.Stderr, "\n") != 1 {
		t.Fatalf("pull after a write into the cache: exit %d, stderr %q; want success and one warning", res.Code, res.Stderr)
	}
	SameTree(t, testtree.Scan(t, d2), fixModes(baseWant()))
	for _, req := range r.Requests() {
		for _, l := range p.Layers {
			if strings.HasSuffix(req.Path, l.Digest.String()) {
				t.Errorf("the repair fetched %s: the cached blob serves it", req.Path)
			}
		}
	}
	if res := Roots(t, env, "check"); res.Code != 0 || !strings.HasSuffix(res.Stdout, ": 0 repaired\n") || strings.Count(res.Stdout, "\n") != 1 {
		t.Fatalf("check after the pull repaired it: exit %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	// roots check finds a chmod and a write, and repairs both trees.
	os.Chmod(d2+"/usr/bin/tool", 0o777)
	os.WriteFile(d2+"/tmp/x", []byte("in TMP"), 0o644) // same size, new mtime
	res = Roots(t, env, "check")
	if res.Code != 0 || strings.Count(res.Stdout, "unpacked again from its blob") != 2 || !strings.HasSuffix(res.Stdout, ": 2 repaired\n") {
		t.Fatalf("check after two writes: exit %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if res := Roots(t, env, "check"); !strings.HasSuffix(res.Stdout, ": 0 repaired\n") {
		t.Fatalf("second check: %s", res.Stdout)
	}
	d3 := filepath.Join(t.TempDir(), "d3")
	MustPull(t, env, r.Host+"/base", d3)
	SameTree(t, testtree.Scan(t, d3), fixModes(baseWant()))

	// A rotten blob is removed; a changed tree whose blob is gone is removed, and the next pull fetches it.
	blobs, _ := filepath.Glob(filepath.Join(cache, "blobs/sha256/*"))
	for _, b := range blobs {
		os.WriteFile(b, []byte("rotten"), 0o644)
	}
	os.WriteFile(d3+"/opt/keep", []byte("changed"), 0o644)
	res = Roots(t, env, "check")
	if res.Code != 0 || strings.Count(res.Stdout, "blob sha256:") != len(blobs) || !strings.Contains(res.Stdout, "removed (its blob is not cached") {
		t.Fatalf("check of rotten blobs: exit %d:\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	MustPull(t, env, r.Host+"/base", filepath.Join(t.TempDir(), "d4"))
	if res := Roots(t, env, "check"); !strings.HasSuffix(res.Stdout, ": 0 repaired\n") {
		t.Fatalf("check after the re-fetch: %s", res.Stdout)
	}
}

// TestCopyModeSharesNothing: a --mode copy destination has no inode of the
// cache, keeps hardlinks within itself, and writing into it leaves the cache sound.
func TestCopyModeSharesNothing(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "base", "latest", baseImage(registrytest.OCI))
	cache := t.TempDir()
	dest := filepath.Join(t.TempDir(), "rootfs")
	MustPull(t, nil, "--cache", cache, "--mode", "copy", r.Host+"/base", dest)
	SameTree(t, testtree.Scan(t, dest), fixModes(baseWant()))
	if !SameInode(t, dest+"/usr/bin/tool", dest+"/usr/bin/tool2") {
		t.Error("usr/bin/tool2 is not a hard link of usr/bin/tool in the copy")
	}
	cacheInodes := map[uint64]string{}
	filepath.Walk(cache, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			cacheInodes[fi.Sys().(*syscall.Stat_t).Ino] = p
		}
		return nil
	})
	filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if c, ok := cacheInodes[fi.Sys().(*syscall.Stat_t).Ino]; ok {
				t.Errorf("%s shares its inode with the cache's %s", p, c)
			}
		}
		return nil
	})
	os.WriteFile(dest+"/etc/passwd", []byte("mine"), 0o644)
	os.Chmod(dest+"/usr/bin/tool", 0o700)
	if res := Roots(t, nil, "check", "--cache", cache); !strings.HasSuffix(res.Stdout, ": 0 repaired\n") {
		t.Fatalf("check after writing into a copy: %s%s", res.Stdout, res.Stderr)
	}
	if res := Roots(t, nil, "pull", "--mode", "fast", r.Host+"/base", dest+"2"); res.Code != 2 {
		t.Fatalf("--mode fast: exit %d, want a usage error", res.Code)
	}
}

// TestLs lists cached images and live destinations, as a table and as JSON.
func TestLs(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	p := r.Push(t, "base", "v1", baseImage(registrytest.OCI))
	cache := t.TempDir()
	env := []string{"ROOTS_CACHE=" + cache}
	res := Roots(t, env, "ls", "--json")
	if res.Code != 0 || !strings.Contains(res.Stdout, `"images": []`) {
		t.Fatalf("ls of an empty cache: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
	}
	hard := filepath.Join(t.TempDir(), "d")
	MustPull(t, env, r.Host+"/base:v1", hard)
	dest := filepath.Join(t.TempDir(), "ov")
	umountAll(t, dest)
	MustPull(t, env, "--mode", "overlay", r.Host+"/base@"+p.Digest.String(), dest)

	res = Roots(t, env, "ls", "--json")
	var out roots.Listing
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil || res.Code != 0 {
		t.Fatalf("ls --json: exit %d, %v: %s%s", res.Code, err, res.Stdout, res.Stderr)
	}
	var size int64
	for _, l := range p.Layers {
		size += l.Size
	}
	if len(out.Images) != 2 {
		t.Fatalf("ls --json: %d images, want 2 (by tag and by digest): %+v", len(out.Images), out.Images)
	}
	refs := map[string]bool{}
	for _, img := range out.Images {
		refs[img.Reference] = true
		want := p.Platform.OS + "/" + p.Platform.Architecture
		if img.Digest != p.Digest.String() || img.Platform != want || img.Size != size || img.Layers != 3 || img.CachedLayers != 3 || time.Since(img.LastUse) > time.Minute {
			t.Errorf("ls image %+v: want digest %s, platform %s, size %d, 3/3 layers, used just now", img, p.Digest, want, size)
		}
	}
	if !refs[r.Host+"/base:v1"] || !refs[r.Host+"/base@"+p.Digest.String()] {
		t.Errorf("ls references: %v", refs)
	}
	if len(out.Destinations) != 2 {
		t.Fatalf("ls destinations: %+v, want the hardlink one and the overlay", out.Destinations)
	}
	for i, want := range []struct {
		dest string
		mode roots.Mode
	}{{hard, roots.Hardlink}, {dest, roots.Overlay}} {
		if d := out.Destinations[i]; d.Dest != want.dest || d.Mode != want.mode || !d.Live || d.Digest != p.Digest.String() {
			t.Errorf("ls destination %d: %+v, want %s (%s), live, %s", i, d, want.dest, want.mode, p.Digest)
		}
	}
	res = Roots(t, env, "ls")
	for _, want := range []string{"IMAGE", r.Host + "/base:v1", p.Digest.String()[:19], "3/3", "DESTINATION", dest, "mounted"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("ls table lacks %q:\n%s", want, res.Stdout)
		}
	}
	if res := Roots(t, env, "umount", dest); res.Code != 0 {
		t.Fatal(res.Stderr)
	}
	res = Roots(t, env, "ls", "--json")
	json.Unmarshal([]byte(res.Stdout), &out)
	if len(out.Destinations) != 1 || out.Destinations[0].Dest != hard {
		t.Fatalf("ls after umount: %+v, want the hardlink destination alone", out.Destinations)
	}
}
