package roots_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestSyncTarget: lstags' push prefix rules, and what is not a target.
func TestSyncTarget(t *testing.T) {
	ref := func(s string) fetch.Reference {
		r, err := fetch.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name, to, prefix, repo string
		want                   string // "" : an error
	}{
		{"DefaultHub", "reg.example:5000", "", "debian", "reg.example:5000/docker/io/library/debian"},
		{"DefaultHostWithoutPort", "reg.example", "", "127.0.0.1:5000/x", "reg.example/127/0/0/1/x"},
		{"DefaultQuay", "reg.example", "", "quay.io/coreos/flannel", "reg.example/quay/io/coreos/flannel"},
		{"DefaultLocalhost", "localhost:5000", "", "localhost:5001/nginx", "localhost:5000/localhost/nginx"},
		{"SlashKeepsPath", "reg.example", "/", "quay.io/coreos/flannel", "reg.example/coreos/flannel"},
		{"Prefix", "reg.example", "/mirror/x", "alpine", "reg.example/mirror/x/library/alpine"},
		{"PrefixTrailingSlash", "reg.example", "/mirror/x/", "alpine", "reg.example/mirror/x/library/alpine"},
		{"PrefixRelative", "reg.example", "mirror/x", "alpine", "reg.example/mirror/x/library/alpine"},
		{"PrefixUppercase", "reg.example", "/Mirror", "alpine", ""},
		{"PrefixSpace", "reg.example", "/a b", "alpine", ""},
		{"NoTarget", "", "", "alpine", ""},
		{"TargetWithPath", "reg.example/mirror", "", "alpine", ""},
		{"TargetWithScheme", "https://reg.example", "", "alpine", ""},
		{"TargetNotAHost", "registry", "", "alpine", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := roots.SyncTarget(tt.to, tt.prefix, ref(tt.repo))
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("got %s, want an error", got)
			case tt.want == "" && !errors.Is(err, roots.ErrInvalidSyncTarget):
				t.Errorf("error %v, want ErrInvalidSyncTarget", err)
			case tt.want != "" && (err != nil || got.String() != tt.want):
				t.Errorf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// syncImages pushes to r two images that share a base layer (app/one:1, app/two:1) and a
// multi-platform index (multi:1, two platforms and their attestations).
func syncImages(t *testing.T, r *registrytest.Registry) map[string]registrytest.Pushed {
	base := registrytest.GzipLayer(registrytest.File("base", "the shared base\n"))
	img := func(name string) registrytest.Image {
		return registrytest.Image{Layers: []registrytest.Layer{base, registrytest.GzipLayer(registrytest.File(name, name+"\n"))}}
	}
	plat := func(arch string) registrytest.Image {
		i := img("multi-" + arch)
		i.OS, i.Arch = "linux", arch
		return i
	}
	return map[string]registrytest.Pushed{
		"app/one": r.Push(t, "app/one", "1", img("one")),
		"app/two": r.Push(t, "app/two", "1", img("two")),
		"multi":   r.PushIndex(t, "multi", "1", registrytest.OCI, plat("amd64"), plat("arm64")),
	}
}

// collect is a SyncOptions.Report that keeps the results.
type collect struct {
	mu      sync.Mutex
	results []roots.SyncResult
}

func (c *collect) report(r roots.SyncResult) {
	c.mu.Lock()
	c.results = append(c.results, r)
	c.mu.Unlock()
}

func (c *collect) states() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.results {
		out = append(out, string(r.State)+" "+r.Target)
	}
	c.results = nil
	return strings.Join(out, "\n")
}

// methods are the request methods of reqs, authentication challenges aside.
func methods(reqs []registrytest.Request) map[string]int {
	n := map[string]int{}
	for _, q := range reqs {
		if q.Status != 401 {
			n[q.Method]++
		}
	}
	return n
}

// TestSync: a sync to an empty registry copies every tag (each blob uploaded once, the shared
// base layer mounted for the second repository, the index with every platform), digests
// equal; again it sends one HEAD per tag to the target (no upload, no manifest PUT) and only
// the listing and one HEAD per tag to the source; after a source tag moves only its new blobs
// travel.
func TestSync(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	dst := registrytest.Start(t, registrytest.Config{})
	pushed := syncImages(t, src)
	specs := mustSpecs(t, src.Host+"/app/one", src.Host+"/app/two", src.Host+"/multi")
	var got collect
	opts := roots.SyncOptions{To: dst.Host, Prefix: "/mirror", Report: got.report, Registry: fetch.Options{Backoff: time.Millisecond}}
	client := fetch.New(fetch.Options{})
	target := func(repo string) fetch.Reference {
		return fetch.Reference{Domain: dst.Host, Path: "mirror/" + repo, Tag: "1"}
	}

	sum, err := roots.Sync(t.Context(), specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := "COPIED " + dst.Host + "/mirror/app/one:1\nCOPIED " + dst.Host + "/mirror/app/two:1\nCOPIED " + dst.Host + "/mirror/multi:1"
	if s := got.states(); s != want {
		t.Errorf("first sync:\n%s\nwant\n%s", s, want)
	}
	for repo, p := range pushed {
		if d, err := client.Digest(t.Context(), target(repo), nil); err != nil || d != p.Digest {
			t.Errorf("%s: target digest %s, %v; want %s", repo, d, err, p.Digest)
		}
	}
	reqs := dst.Requests()
	n := registrytest.Count(reqs)
	uploaded := map[string]bool{}
	for _, q := range reqs {
		if q.Method == "PUT" && strings.Contains(q.Path, "/blobs/uploads/") {
			v, _ := url.ParseQuery(q.Query)
			uploaded[v.Get("digest")] = true
		}
	}
	// Every image has the base layer: uploaded once (for app/one), then mounted into app/two
	// and multi; no other blob travels twice. Manifests: one per app, the index, 2 images,
	// 2 attestations.
	base := pushed["app/one"].Layers[0].Digest
	t.Logf("first sync: target %+v, summary %+v", n, *sum)
	if n.BlobPuts != len(uploaded) || !uploaded[base.String()] || n.Mounts != 2 || n.ManifestPuts != 7 {
		t.Errorf("first sync: target requests %+v, %d blobs uploaded; want each blob once, the base mounted twice, 7 manifest PUTs", n, len(uploaded))
	}
	if sum.Copied != 3 || sum.BlobsUploaded != n.BlobPuts || sum.BlobsMounted != 2 || sum.ManifestsWritten != 7 || sum.Failed != 0 {
		t.Errorf("first sync: summary %+v", sum)
	}
	for _, q := range reqs {
		if v, _ := url.ParseQuery(q.Query); v.Has("mount") && (v.Get("mount") != base.String() || !strings.HasPrefix(v.Get("from"), "mirror/app/")) {
			t.Errorf("mount %s?%s: want the base from mirror/app/one or two", q.Path, q.Query)
		}
	}
	srcHeads := 0
	for _, q := range src.Requests() {
		if q.Method == "HEAD" && strings.HasSuffix(q.Path, "/manifests/1") {
			srcHeads++
		}
	}
	if srcHeads != 3 {
		t.Errorf("first sync: %d HEADs of the source's tags, want 3 (one per tag)", srcHeads)
	}

	t.Run("Again", func(t *testing.T) {
		src.ResetRequests()
		dst.ResetRequests()
		sum, err := roots.Sync(t.Context(), specs, opts)
		if err != nil {
			t.Fatal(err)
		}
		if s := got.states(); strings.Count(s, "UP-TO-DATE") != 3 {
			t.Errorf("again:\n%s\nwant 3 UP-TO-DATE", s)
		}
		t.Logf("again: target %v, source %v", methods(dst.Requests()), methods(src.Requests()))
		if m := methods(dst.Requests()); len(m) != 1 || m["HEAD"] != 3 {
			t.Errorf("again: target requests %v, want 3 HEADs alone", m)
		}
		if m := methods(src.Requests()); len(m) != 2 || m["GET"] != 3 || m["HEAD"] != 3 {
			t.Errorf("again: source requests %v, want 3 tag lists and 3 HEADs", m)
		}
		if sum.UpToDate != 3 || sum.BlobsUploaded != 0 || sum.ManifestsWritten != 0 {
			t.Errorf("again: summary %+v", sum)
		}
	})

	t.Run("TagMoved", func(t *testing.T) {
		moved := src.Push(t, "app/one", "1", registrytest.Image{Layers: []registrytest.Layer{
			registrytest.GzipLayer(registrytest.File("base", "the shared base\n")),
			registrytest.GzipLayer(registrytest.File("one", "one, again\n")),
		}})
		dst.ResetRequests()
		sum, err := roots.Sync(t.Context(), specs, opts)
		if err != nil {
			t.Fatal(err)
		}
		if s := got.states(); !strings.HasPrefix(s, "COPIED "+dst.Host+"/mirror/app/one:1\nUP-TO-DATE") {
			t.Errorf("after the move:\n%s", s)
		}
		t.Logf("after the move: target %+v", registrytest.Count(dst.Requests()))
		if n := registrytest.Count(dst.Requests()); n.BlobPuts != 2 || n.Mounts != 0 || n.ManifestPuts != 1 {
			t.Errorf("after the move: target requests %+v, want the new layer and config uploaded, one manifest PUT", n)
		}
		if sum.BlobsUploaded != 2 || sum.BlobsExisting != 1 || sum.ManifestsWritten != 1 {
			t.Errorf("after the move: summary %+v", sum)
		}
		if d, _ := client.Digest(t.Context(), target("app/one"), nil); d != moved.Digest {
			t.Errorf("target digest %s, want %s", d, moved.Digest)
		}
	})
}

// TestSyncPrefixes: every push prefix form puts the tag where lstags would.
func TestSyncPrefixes(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	dst := registrytest.Start(t, registrytest.Config{})
	p := src.Push(t, "team/app", "1", registrytest.Image{Layers: []registrytest.Layer{registrytest.GzipLayer(registrytest.File("a", "a\n"))}})
	client := fetch.New(fetch.Options{})
	for _, tt := range []struct{ name, prefix, path string }{
		{"Default", "", "127/0/0/1/team/app"},
		{"Slash", "/", "team/app"},
		{"Absolute", "/mirror/x", "mirror/x/team/app"},
		{"TrailingSlash", "/mirror/y/", "mirror/y/team/app"},
		{"Relative", "mirror/z", "mirror/z/team/app"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := roots.Sync(t.Context(), mustSpecs(t, src.Host+"/team/app"), roots.SyncOptions{To: dst.Host, Prefix: tt.prefix}); err != nil {
				t.Fatal(err)
			}
			if d, err := client.Digest(t.Context(), fetch.Reference{Domain: dst.Host, Path: tt.path, Tag: "1"}, nil); err != nil || d != p.Digest {
				t.Errorf("%s:1 has %s, %v; want %s", tt.path, d, err, p.Digest)
			}
		})
	}
}

// TestSyncDoNotFail: a missing repository and a named tag the source lacks stop a sync at the
// first of them; with DoNotFail every tag is tried, the failures reported and counted.
func TestSyncDoNotFail(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	for _, tag := range []string{"1", "2"} {
		src.Push(t, "app", tag, registrytest.Image{Layers: []registrytest.Layer{registrytest.GzipLayer(registrytest.File(tag, tag+"\n"))}})
	}
	specs := mustSpecs(t, src.Host+"/app=1", src.Host+"/no/such", src.Host+"/app=nope,2")
	for _, tt := range []struct {
		name      string
		doNotFail bool
		want      []roots.SyncState
	}{
		{"Fail", false, []roots.SyncState{roots.SyncCopied, roots.SyncFailed}},
		{"DoNotFail", true, []roots.SyncState{roots.SyncCopied, roots.SyncFailed, roots.SyncCopied, roots.SyncNotFound}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := registrytest.Start(t, registrytest.Config{})
			var got collect
			sum, err := roots.Sync(t.Context(), specs, roots.SyncOptions{To: dst.Host, Prefix: "/", DoNotFail: tt.doNotFail, Report: got.report, Registry: fetch.Options{Backoff: time.Millisecond, Retries: 2}})
			if tt.doNotFail != (err == nil) || err != nil && !errors.Is(err, fetch.ErrNotFound) {
				t.Errorf("error %v", err)
			}
			var states []roots.SyncState
			for _, r := range got.results {
				states = append(states, r.State)
				if (r.State == roots.SyncFailed || r.State == roots.SyncNotFound) && (r.Err == nil || r.Error == "") {
					t.Errorf("%s: %s without its error", r.Source, r.State)
				}
			}
			if strings.Join(strs(states), " ") != strings.Join(strs(tt.want), " ") {
				t.Errorf("states %v, want %v", states, tt.want)
			}
			if sum.Failed != len(tt.want)/2 || sum.Copied != len(tt.want)/2 {
				t.Errorf("summary %+v", sum)
			}
		})
	}
}

func strs[T ~string](in []T) []string {
	var out []string
	for _, s := range in {
		out = append(out, string(s))
	}
	return out
}

// TestSyncDryRun: a dry run sends only GET and HEAD requests to either side and reports what a
// sync would copy; what the target has already is UP-TO-DATE.
func TestSyncDryRun(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	dst := registrytest.Start(t, registrytest.Config{})
	syncImages(t, src)
	if _, err := roots.Sync(t.Context(), mustSpecs(t, src.Host+"/app/one"), roots.SyncOptions{To: dst.Host}); err != nil {
		t.Fatal(err)
	}
	src.ResetRequests()
	dst.ResetRequests()
	var got collect
	sum, err := roots.Sync(t.Context(), mustSpecs(t, src.Host+"/app/one", src.Host+"/app/two", src.Host+"/multi"), roots.SyncOptions{To: dst.Host, DryRun: true, Report: got.report})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.states(); s != "UP-TO-DATE "+dst.Host+"/127/0/0/1/app/one:1\nWOULD-COPY "+dst.Host+"/127/0/0/1/app/two:1\nWOULD-COPY "+dst.Host+"/127/0/0/1/multi:1" {
		t.Errorf("dry run:\n%s", s)
	}
	for name, reg := range map[string]*registrytest.Registry{"source": src, "target": dst} {
		for m := range methods(reg.Requests()) {
			if m != "GET" && m != "HEAD" {
				t.Errorf("dry run: the %s was sent %s: %v", name, m, methods(reg.Requests()))
			}
		}
	}
	if sum.WouldCopy != 2 || sum.UpToDate != 1 {
		t.Errorf("summary %+v", sum)
	}
}

// hostKeys is a keychain with one credential per host.
type hostKeys map[string]auth.Credential

func (k hostKeys) Get(_ context.Context, host string) (auth.Credential, error) { return k[host], nil }

// TestSyncCredentials: each registry (and its token issuer) gets its own credential, never
// the other's, with basic and with token auth.
func TestSyncCredentials(t *testing.T) {
	for _, kind := range []registrytest.Auth{registrytest.Basic, registrytest.Token} {
		t.Run(kind.String(), func(t *testing.T) {
			src := registrytest.Start(t, registrytest.Config{Auth: kind, Users: map[string]string{"alice": "source-secret"}})
			dst := registrytest.Start(t, registrytest.Config{Auth: kind, Users: map[string]string{"bob": "target-secret"}})
			syncImages(t, src)
			keys := hostKeys{src.Host: {Username: "alice", Password: "source-secret"}, dst.Host: {Username: "bob", Password: "target-secret"}}
			sum, err := roots.Sync(t.Context(), mustSpecs(t, src.Host+"/app/one", src.Host+"/app/two"), roots.SyncOptions{To: dst.Host, Registry: fetch.Options{Keychain: keys}})
			if err != nil || sum.Copied != 2 {
				t.Fatalf("sync: %+v, %v", sum, err)
			}
			for _, tt := range []struct {
				name string
				reg  *registrytest.Registry
				user string
			}{{"source", src, "alice"}, {"target", dst, "bob"}} {
				sent := 0
				for _, q := range append(tt.reg.Requests(), tt.reg.TokenRequests()...) {
					h, ok := strings.CutPrefix(q.Header.Get("Authorization"), "Basic ")
					if !ok {
						continue // none, or a token the issuer made for this registry
					}
					sent++
					b, _ := base64.StdEncoding.DecodeString(h)
					if user, _, _ := strings.Cut(string(b), ":"); user != tt.user {
						t.Errorf("the %s got %s %s with %q's credential, want only %s's", tt.name, q.Method, q.Path, user, tt.user)
					}
				}
				if sent == 0 {
					t.Errorf("the %s got no credential", tt.name)
				}
			}
		})
	}
}

// TestSyncEvery: the daemon's passes pick up a new tag, report a source down for a pass and
// catch up on the next, and stop when their context ends.
func TestSyncEvery(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	dst := registrytest.Start(t, registrytest.Config{})
	var down sync.Map // "down" → true while the front refuses
	front := src.FaultFront(t, registrytest.Fault{Kind: registrytest.Status, Code: 503, Match: func(*http.Request) bool {
		_, ok := down.Load("down")
		return ok
	}})
	img := func(tag string) registrytest.Image {
		return registrytest.Image{Layers: []registrytest.Layer{registrytest.GzipLayer(registrytest.File(tag, tag+"\n"))}}
	}
	src.Push(t, "app", "1", img("1"))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	passes := make(chan *roots.SyncSummary, 100)
	done := make(chan error, 1)
	go func() {
		done <- roots.SyncEvery(ctx, mustSpecs(t, front.Host+"/app"), 20*time.Millisecond,
			roots.SyncOptions{To: dst.Host, Prefix: "/", Registry: fetch.Options{Backoff: time.Millisecond, Retries: 2}},
			func(s *roots.SyncSummary, err error) { passes <- s })
	}()
	next := func(what string, ok func(*roots.SyncSummary) bool) {
		t.Helper()
		for {
			select {
			case s := <-passes:
				if ok(s) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no pass that %s", what)
			}
		}
	}
	next("copied 1", func(s *roots.SyncSummary) bool { return s.Copied == 1 })
	src.Push(t, "app", "2", img("2"))
	next("copied the new tag", func(s *roots.SyncSummary) bool { return s.Copied == 1 && s.UpToDate == 1 })
	down.Store("down", true)
	next("failed with the source down", func(s *roots.SyncSummary) bool { return s.Failed == 1 })
	src.Push(t, "app", "3", img("3"))
	down.Delete("down")
	next("caught up", func(s *roots.SyncSummary) bool { return s.Copied == 1 && s.UpToDate == 2 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("SyncEvery: %v, want nil when its context ends", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SyncEvery did not return within 10s of its context's end")
	}
}

// TestSyncFromCache: a sync with a cache that holds the image reads its manifest and blobs
// from it: the source gets one HEAD for the named tag, and nothing else.
func TestSyncFromCache(t *testing.T) {
	src, cache, pulled := pullHello(t)
	dst := registrytest.Start(t, registrytest.Config{})
	testRegistry.ResetRequests()
	sum, err := roots.Sync(t.Context(), mustSpecs(t, strings.TrimSuffix(src, ":1")+"=1"), roots.SyncOptions{To: dst.Host, Cache: cache})
	if err != nil || sum.Copied != 1 || sum.BlobsUploaded != 1+len(pulled.Layers) {
		t.Fatalf("sync: %+v, %v", sum, err)
	}
	if reqs := testRegistry.Requests(); len(reqs) != 1 || reqs[0].Method != "HEAD" {
		t.Errorf("the source was sent %+v, want one HEAD", reqs)
	}
}
