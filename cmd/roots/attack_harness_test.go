package main

// The harness of TestAttacks (attack_test.go): scans of the tree around DEST, pushes, pulls
// under a deadline, and the checks that nothing outside DEST and the cache changed.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// atkSameFS fails unless two rootfs scans agree on everything an image
// defines: type, mode, owner, content, link target, device numbers, xattrs,
// mtimes (of directories only when one side has a time set from the image,
// i.e. before since: an implicit directory's time is when it was made), and
// hardlink groups.
func atkSameFS(t testing.TB, what string, a, b map[string]entry, since time.Time) {
	t.Helper()
	if diffs := testtree.Diff(a, b, testtree.DirMtimesFrom(since)); len(diffs) > 0 {
		t.Errorf("%s differ (want the first):\n%s", what, strings.Join(diffs, "\n"))
	}
}

// atkTree is an expected rootfs: sameTree entries, with parents added as
// implicit directories (0755 root:root).
type atkTree map[string]entry

func (w atkTree) parents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := w[d]; !ok {
			w[d] = dir(0o755)
		}
	}
}

func (w atkTree) add(p string, e entry) atkTree {
	w.parents(p)
	w[p] = e
	return w
}

func (w atkTree) f(p string, mode fs.FileMode, body string) atkTree {
	return w.add(p, file(mode, body))
}

func (w atkTree) d(p string, mode fs.FileMode) atkTree { return w.add(p, dir(mode)) }

func (w atkTree) l(p, target string) atkTree { return w.add(p, link(target)) }

// atkLayer is a layer blob as pushed: for images registrytest.Image cannot
// describe (media types that lie, multi-member gzip, ...).
type atkLayer struct {
	MediaType string
	Blob      []byte
	DiffID    digest.Digest
	Size      int64 // in the manifest; 0 = len(Blob)
}

// atkPush pushes an OCI image of layers to r (blobs, config, manifest) and
// returns it as registrytest describes pushed images.
func atkPush(t testing.TB, r *registrytest.Registry, repo, tag string, layers []atkLayer, diffIDs []digest.Digest) registrytest.Pushed {
	t.Helper()
	p := registrytest.Pushed{Blobs: map[digest.Digest][]byte{}}
	for i, l := range layers {
		d := r.PushBlob(t, repo, l.Blob)
		size := l.Size
		if size == 0 {
			size = int64(len(l.Blob))
		}
		p.Layers = append(p.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: d, Size: size})
		p.Blobs[d] = l.Blob
		if diffIDs == nil {
			p.DiffIDs = append(p.DiffIDs, l.DiffID)
		} else {
			p.DiffIDs = append(p.DiffIDs, diffIDs[i])
		}
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux", "created": registrytest.EntryTime, "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": p.DiffIDs},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Config = cfg
	cd := r.PushBlob(t, repo, cfg)
	p.MediaType = ocispec.MediaTypeImageManifest
	p.Manifest, err = json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: p.MediaType,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers:    p.Layers,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Digest = r.PushRaw(t, repo, tag, p.MediaType, p.Manifest)
	return p
}

// atkCompress compresses raw as c, as registrytest does, and describes it as a layer.
func atkCompress(t testing.TB, raw []byte, c registrytest.Compression) atkLayer {
	t.Helper()
	blob, err := registrytest.Compress(raw, c)
	if err != nil {
		t.Fatal(err)
	}
	mt := ocispec.MediaTypeImageLayerGzip
	switch c {
	case registrytest.Zstd:
		mt = ocispec.MediaTypeImageLayerZstd
	case registrytest.Uncompressed:
		mt = ocispec.MediaTypeImageLayer
	}
	return atkLayer{MediaType: mt, Blob: blob, DiffID: digest.FromBytes(raw)}
}

// atkPull runs roots pull with args, interrupted after limit.
func atkPull(t testing.TB, limit time.Duration, args ...string) (res result, timedOut bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, rootsBin, append([]string{"pull"}, args...)...)
	// Interrupt, as a user would, so that roots may clean up; kill if it does not stop.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "ROOTS_TEST_BACKOFF=10ms"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		return result{out.String(), errb.String(), -1}, true
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}, false
}

// atkCacheClean checks that a cache after a failed pull holds nothing but
// allowed blobs and trees (those of other layers, the manifest and config),
// and only locks in tmp/.
func atkCacheClean(t testing.TB, cache string, blobs, trees map[string]bool) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(cache, "blobs", "sha256"))
	for _, e := range ents {
		if !blobs[e.Name()] {
			t.Errorf("the cache kept blob %s of the failed layer (or a stranger)", e.Name())
		}
	}
	ents, _ = os.ReadDir(filepath.Join(cache, "trees", "sha256"))
	for _, e := range ents {
		if !trees[strings.TrimSuffix(e.Name(), ".json")] {
			t.Errorf("the cache kept tree %s of the failed layer (or a stranger)", e.Name())
		}
	}
	atkTmpClean(t, cache)
}

// atkTmpClean checks that the cache's tmp/ holds only locks.
func atkTmpClean(t testing.TB, cache string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(cache, "tmp"))
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left in the cache's tmp/: %s", e.Name())
		}
	}
}

// atkCacheIntact checks that every blob in the cache still hashes to its name
// and that trees/ holds only digests: no layer wrote into the cache.
func atkCacheIntact(t testing.TB, cache string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(cache, "blobs", "sha256"))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(cache, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Errorf("cache blob %s: %v", e.Name(), err)
			continue
		}
		if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != e.Name() {
			t.Errorf("cache blob %s does not hash to its name", e.Name())
		}
	}
	ents, _ = os.ReadDir(filepath.Join(cache, "trees", "sha256"))
	for _, e := range ents {
		name := strings.TrimSuffix(e.Name(), ".json")
		if _, err := hex.DecodeString(name); err != nil || len(name) != 64 {
			t.Errorf("stranger in the cache's trees/: %s", e.Name())
		}
	}
}

// atkEnv is one case's directories:
//
//	Base/parent/                       DEST's parent (DESTs: rootfs-cache, rootfs-warm, rootfs-no)
//	Base/parent/outside/{secret, mode644, dir/inner}
//	Base/parent/outside-link -> outside, Base/parent/secret-link -> outside/secret
//	Base/abs/{file, dir/inner, link -> ../parent/outside/secret}
//	Base/cache/                        the cache (cache mode)
type atkEnv struct {
	Base, Parent, Out, Abs, Cache string
}

// rel is an absolute path as a confined entry name gives it inside DEST.
func (e atkEnv) rel(abs string) string { return strings.TrimPrefix(abs, "/") }

func atkNewEnv(t testing.TB, base string) atkEnv {
	t.Helper()
	e := atkEnv{Base: base, Parent: base + "/parent", Out: base + "/parent/outside", Abs: base + "/abs", Cache: base + "/cache"}
	for _, d := range []string{e.Parent, e.Out, e.Out + "/dir", e.Abs, e.Abs + "/dir", e.Cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		e.Out + "/secret": "secret", e.Out + "/mode644": "chmod me", e.Out + "/dir/inner": "inner",
		e.Abs + "/file": "abs file", e.Abs + "/dir/inner": "abs inner",
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		e.Parent + "/outside-link": "outside", e.Parent + "/secret-link": "outside/secret",
		e.Abs + "/link": "../parent/outside/secret",
	}
	for p, to := range links {
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	for _, p := range []string{e.Out + "/secret", e.Out + "/mode644", e.Out + "/dir/inner", e.Abs + "/file", e.Abs + "/dir/inner",
		e.Out + "/dir", e.Abs + "/dir", e.Out, e.Abs} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// scan is everything below Base but the cache and the given DESTs. DEST's
// parent itself changes (DEST is made in it): its times and link count are
// left out.
func (e atkEnv) scan(t testing.TB, dests ...string) map[string]entry {
	t.Helper()
	m := testtree.Scan(t, e.Base, testtree.Skip(func(rel string) bool {
		p := e.Base + "/" + rel
		return p == e.Cache || slices.Contains(dests, p)
	}))
	if s, ok := m["parent"]; ok {
		s.Mtime, s.Ctime, s.Nlink = 0, 0, 0
		m["parent"] = s
	}
	return m
}

// atkUnchanged fails the test unless two sentinel scans are identical.
func atkUnchanged(t testing.TB, before, after map[string]entry) {
	t.Helper()
	if diffs := testtree.Diff(before, after, testtree.Only(testtree.All...)); len(diffs) > 0 {
		t.Errorf("OUTSIDE DEST AND THE CACHE CHANGED (want = before):\n%s", strings.Join(diffs, "\n"))
	}
}

// atkMust is the testing.TB of tar builders that run while the case table is
// made: an error there is a bug in the table, so it panics.
func atkMust() testing.TB { return atkPanicTB{} }

type atkPanicTB struct{ testing.TB }

func (atkPanicTB) Helper() {}

func (atkPanicTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

func (atkPanicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// atkRun pulls one case in both modes and checks it.
func atkRun(t *testing.T, tc atkCase, e atkEnv, ref string, p registrytest.Pushed, since time.Time) {
	limit := tc.limit
	if limit == 0 {
		limit = time.Minute
	}
	var want atkTree
	if tc.fail == "" {
		want = tc.want(e)
	}
	got := map[string]map[string]entry{}
	for _, mode := range []string{"cache", "no"} {
		dest := e.Parent + "/rootfs-" + mode
		cache := e.Cache
		if mode == "no" {
			cache = "no"
		}
		others := []string{dest}
		if mode == "cache" {
			others = append(others, e.Parent+"/rootfs-warm")
		}
		before := e.scan(t, others...)
		res, timedOut := atkPull(t, limit, "--cache", cache, ref, dest)
		atkUnchanged(t, before, e.scan(t, others...))
		if timedOut {
			t.Errorf("%s: the pull did not finish within %v (stderr %q)", mode, limit, res.stderr)
			continue
		}
		if tc.fail != "" || (tc.orFail != "" && res.code != 0) {
			t.Logf("%s: %s", mode, strings.TrimSpace(res.stderr))
			fail := tc.fail
			if fail == "" {
				fail = tc.orFail
			}
			assertCleanFailure(t, res, fail, dest)
			if mode == "cache" && !tc.treeOK {
				bad := tc.bad
				if bad <= 0 {
					bad = len(p.Layers) - 1
				}
				blobs := map[string]bool{p.Digest.Encoded(): true, digest.FromBytes(p.Config).Encoded(): true}
				trees := map[string]bool{}
				for i, l := range p.Layers {
					if i != bad {
						blobs[l.Digest.Encoded()] = true
						trees[p.DiffIDs[i].Encoded()] = true
					}
				}
				atkCacheClean(t, e.Cache, blobs, trees)
			} else if mode == "cache" {
				atkTmpClean(t, e.Cache)
			}
			continue
		}
		if res.code != 0 || res.stderr != "" || res.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want a silent success", mode, res.code, res.stdout, res.stderr)
			continue
		}
		got[mode] = testtree.Scan(t, dest)
		t.Run(mode, func(t *testing.T) {
			sameTree(t, got[mode], want)
		})
		if tc.check != nil {
			tc.check(t, dest, e)
		}
		if mode == "cache" {
			atkCacheIntact(t, e.Cache)
			// The same image from the warm cache is the same tree.
			warm := e.Parent + "/rootfs-warm"
			before := e.scan(t, warm, dest)
			res, _ := atkPull(t, limit, "--cache", cache, ref, warm)
			atkUnchanged(t, before, e.scan(t, warm, dest))
			if res.code != 0 {
				t.Errorf("warm pull: exit %d: %s", res.code, res.stderr)
			} else {
				atkSameFS(t, "cold and warm cache pulls", got[mode], testtree.Scan(t, warm), since)
			}
		}
	}
	if got["cache"] != nil && got["no"] != nil {
		atkSameFS(t, "--cache and --cache=no trees", got["cache"], got["no"], since)
		a := testtree.Stat(t, e.Parent+"/rootfs-cache")
		b := testtree.Stat(t, e.Parent+"/rootfs-no")
		a.Mtime, b.Mtime = 0, 0
		if diffs := testtree.Diff(map[string]entry{".": a}, map[string]entry{".": b}); len(diffs) > 0 {
			t.Errorf("DEST roots differ (want --cache):\n%s", strings.Join(diffs, "\n"))
		}
	}
}
