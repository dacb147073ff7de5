package attack

// The harness of TestAttacks (attack_test.go): scans of the tree around DEST, pushes, pulls
// under a deadline, and the checks that nothing outside DEST and the cache changed.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/cmd/roots/e2e"
	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// rootfs is an expected rootfs: entries as e2e.SameTree compares them, with parents added as
// implicit directories (0755 root:root).
type rootfs map[string]testtree.Entry

func (w rootfs) parents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := w[d]; !ok {
			w[d] = testtree.Dir(0o755)
		}
	}
}

func (w rootfs) add(p string, e testtree.Entry) rootfs {
	w.parents(p)
	w[p] = e
	return w
}

func (w rootfs) f(p string, mode fs.FileMode, body string) rootfs {
	return w.add(p, testtree.File(mode, body))
}

func (w rootfs) d(p string, mode fs.FileMode) rootfs { return w.add(p, testtree.Dir(mode)) }

func (w rootfs) l(p, target string) rootfs { return w.add(p, testtree.Symlink(target)) }

// pull runs roots pull with args, interrupted after limit.
func pull(t testing.TB, limit time.Duration, args ...string) (res e2e.Result, timedOut bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2e.Bin(), append([]string{"pull"}, args...)...)
	// Interrupt, as a user would, so that roots may clean up; kill if it does not stop.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = e2e.Env(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		return e2e.Result{Stdout: out.String(), Stderr: errb.String(), Code: -1}, true
	}
	return e2e.Result{Stdout: out.String(), Stderr: errb.String(), Code: e2e.ExitCode(t, err)}, false
}

// cacheClean checks that a cache after a failed pull holds nothing but
// allowed blobs and trees (those of other layers, the manifest and config),
// and only locks in tmp/.
func cacheClean(t testing.TB, cache string, blobs, trees map[string]bool) {
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
	tmpClean(t, cache)
}

// tmpClean checks that the cache's tmp/ holds only locks.
func tmpClean(t testing.TB, cache string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(cache, "tmp"))
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left in the cache's tmp/: %s", e.Name())
		}
	}
}

// cacheIntact checks that every blob in the cache still hashes to its name
// and that trees/ holds only digests: no layer wrote into the cache.
func cacheIntact(t testing.TB, cache string) {
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

// env is one case's directories:
//
//	Base/parent/                       DEST's parent (DESTs: rootfs-cache, rootfs-warm, rootfs-no)
//	Base/parent/outside/{secret, mode644, dir/inner}
//	Base/parent/outside-link -> outside, Base/parent/secret-link -> outside/secret
//	Base/abs/{file, dir/inner, link -> ../parent/outside/secret}
//	Base/cache/                        the cache (cache mode)
type env struct {
	Base, Parent, Out, Abs, Cache string
}

// rel is an absolute path as a confined entry name gives it inside DEST.
func (e env) rel(abs string) string { return strings.TrimPrefix(abs, "/") }

func newEnv(t testing.TB, base string) env {
	t.Helper()
	e := env{Base: base, Parent: base + "/parent", Out: base + "/parent/outside", Abs: base + "/abs", Cache: base + "/cache"}
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
func (e env) scan(t testing.TB, dests ...string) map[string]testtree.Entry {
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

// must is the testing.TB of tar builders that run while the case table is
// made: an error there is a bug in the table, so it panics.
func must() testing.TB { return panicTB{} }

type panicTB struct{ testing.TB }

func (panicTB) Helper() {}

func (panicTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

func (panicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// runCase pulls one case in both modes and checks it.
func runCase(t *testing.T, tc testCase, e env, ref string, p registrytest.Pushed, since time.Time) {
	limit := tc.limit
	if limit == 0 {
		limit = time.Minute
	}
	var want rootfs
	if tc.fail == "" {
		want = tc.want(e)
	}
	got := map[string]map[string]testtree.Entry{}
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
		res, timedOut := pull(t, limit, "--cache", cache, ref, dest)
		e2e.Unchanged(t, before, e.scan(t, others...))
		if timedOut {
			t.Errorf("%s: the pull did not finish within %v (stderr %q)", mode, limit, res.Stderr)
			continue
		}
		if tc.fail != "" || (tc.orFail != "" && res.Code != 0) {
			t.Logf("%s: %s", mode, strings.TrimSpace(res.Stderr))
			fail := tc.fail
			if fail == "" {
				fail = tc.orFail
			}
			e2e.AssertCleanFailure(t, res, fail, dest)
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
				cacheClean(t, e.Cache, blobs, trees)
			} else if mode == "cache" {
				tmpClean(t, e.Cache)
			}
			continue
		}
		if res.Code != 0 || res.Stderr != "" || res.Stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want a silent success", mode, res.Code, res.Stdout, res.Stderr)
			continue
		}
		got[mode] = testtree.Scan(t, dest)
		t.Run(mode, func(t *testing.T) {
			e2e.SameTree(t, got[mode], want)
		})
		if tc.check != nil {
			tc.check(t, dest, e)
		}
		if mode == "cache" {
			cacheIntact(t, e.Cache)
			// The same image from the warm cache is the same tree.
			warm := e.Parent + "/rootfs-warm"
			before := e.scan(t, warm, dest)
			res, _ := pull(t, limit, "--cache", cache, ref, warm)
			e2e.Unchanged(t, before, e.scan(t, warm, dest))
			if res.Code != 0 {
				t.Errorf("warm pull: exit %d: %s", res.Code, res.Stderr)
			} else {
				e2e.SameFS(t, "cold and warm cache pulls", got[mode], testtree.Scan(t, warm), since)
			}
		}
	}
	if got["cache"] != nil && got["no"] != nil {
		e2e.SameFS(t, "--cache and --cache=no trees", got["cache"], got["no"], since)
		a := testtree.Stat(t, e.Parent+"/rootfs-cache")
		b := testtree.Stat(t, e.Parent+"/rootfs-no")
		a.Mtime, b.Mtime = 0, 0
		if diffs := testtree.Diff(map[string]testtree.Entry{".": a}, map[string]testtree.Entry{".": b}); len(diffs) > 0 {
			t.Errorf("DEST roots differ (want --cache):\n%s", strings.Join(diffs, "\n"))
		}
	}
}
