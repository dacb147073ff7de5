package roots_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// tagImage is a one-layer image whose file and creation time say which it is.
func tagImage(name string, created time.Time) registrytest.Image {
	return registrytest.Image{
		Layers: []registrytest.Layer{{Entries: []registrytest.Entry{{Name: "name", Body: []byte(name + "\n")}}}},
		Config: map[string]any{"created": created.Format(time.RFC3339)},
	}
}

func mustSpecs(t *testing.T, in ...string) []fetch.Spec {
	t.Helper()
	var out []fetch.Spec
	for _, s := range in {
		spec, err := fetch.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, spec)
	}
	return out
}

// tokenOptions reach r (token auth) with its credential.
func tokenOptions(r *registrytest.Registry) fetch.Options {
	return fetch.Options{Transport: r.Transport, Backoff: time.Millisecond, Retries: 2,
		Keychain: auth.Static(auth.Credential{Username: r.User, Password: r.Password})}
}

// TestTagsStates sets every state up the way users meet them: tags pulled (by Tags itself,
// with Pull), then one re-pushed, one deleted, one added, one named that never was; the
// listing and the named form agree on each.
func TestTagsStates(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	cache := filepath.Join(t.TempDir(), "cache")
	day := func(n int) time.Time { return time.Date(2026, 1, n, 0, 0, 0, 0, time.UTC) }
	present := r.Push(t, "st/app", "present", tagImage("present", day(1)))
	old := r.Push(t, "st/app", "changed", tagImage("changed-old", day(2)))
	gone := r.Push(t, "st/app", "gone", tagImage("gone", day(3)))
	opts := roots.TagsOptions{Cache: cache, Registry: tokenOptions(r), Pull: true}

	first, err := roots.Tags(t.Context(), mustSpecs(t, r.Host+"/st/app"), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range first {
		if st.State != roots.Absent || !st.Pulled {
			t.Errorf("first run: %s is %s (pulled %v), want ABSENT and pulled", st.Tag, st.State, st.Pulled)
		}
	}

	changed := r.Push(t, "st/app", "changed", tagImage("changed-new", day(4)))
	r.Delete(t, "st/app", gone.Digest)
	absent := r.Push(t, "st/app", "absent", tagImage("absent", day(5)))
	type want struct {
		state         roots.TagStatus
		digest, local digest.Digest
		created       time.Time
	}
	wants := map[string]want{
		"absent":  {roots.Absent, absent.Digest, "", day(5)},
		"changed": {roots.Changed, changed.Digest, old.Digest, day(4)},
		"gone":    {roots.LocalOnly, "", gone.Digest, day(3)},
		"nope":    {roots.NotFound, "", "", time.Time{}},
		"present": {roots.Present, present.Digest, present.Digest, day(1)},
	}
	opts.Pull = false
	for _, spec := range []string{
		r.Host + "/st/app=present,changed,gone,absent,nope", // named: HEAD each, no listing
		r.Host + "/st/app~/^[a-z]/=nope",                    // listed, plus a named tag
	} {
		t.Run(spec, func(t *testing.T) {
			got, err := roots.Tags(t.Context(), mustSpecs(t, spec), opts)
			if err != nil {
				t.Fatal(err)
			}
			var tags []string
			for _, st := range got {
				tags = append(tags, st.Tag)
				w := wants[st.Tag]
				if st.State != w.state || st.Digest != w.digest || st.Local != w.local || !st.Created.Equal(w.created) {
					t.Errorf("%s: %s digest %s local %s created %v; want %s %s %s %v", st.Tag, st.State, st.Digest, st.Local, st.Created, w.state, w.digest, w.local, w.created)
				}
			}
			if strings.Join(tags, " ") != "absent changed gone nope present" {
				t.Errorf("tags %v, want every state once, sorted", tags)
			}
		})
	}
}

// TestTagsPagesAndJobs: 120 tags behind a front that pages by 50 are all listed, each with
// the registry's digest, by HEAD only (no manifest GET), never more than --jobs requests at
// once. Created reads each config once, and the next run reads it from the cache.
func TestTagsPagesAndJobs(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	want := map[string]digest.Digest{}
	for i := range 120 {
		tag := fmt.Sprintf("v%03d", i)
		want[tag] = r.Push(t, "many/app", tag, tagImage(tag, time.Unix(int64(i)*3600, 0))).Digest
	}
	fnt := r.PagingFront(t, registrytest.Paging{Size: 50})
	cache := filepath.Join(t.TempDir(), "cache")
	specs := mustSpecs(t, fnt.Host+"/many/app")
	for _, tt := range []struct {
		name         string
		noCreated    bool
		manifestGets int
	}{
		{"HeadOnly", true, 0},
		{"Created", false, 120}, // one per digest: each tag is its own image
		{"CreatedWarm", false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fnt.ResetRequests()
			got, err := roots.Tags(t.Context(), specs, roots.TagsOptions{Cache: cache, Jobs: 2, NoCreated: tt.noCreated, Registry: tokenOptions(r)})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 120 {
				t.Fatalf("%d tags, want 120", len(got))
			}
			for _, st := range got {
				if st.State != roots.Absent || st.Digest != want[st.Tag] || st.Created.IsZero() != tt.noCreated {
					t.Errorf("%s: %s %s created %v, want ABSENT %s", st.Tag, st.State, st.Digest, st.Created, want[st.Tag])
				}
			}
			var heads, gets, tagGets int
			for _, q := range fnt.Requests() {
				switch {
				case q.Status == http.StatusUnauthorized:
				case q.Method == http.MethodHead && strings.Contains(q.Path, "/manifests/"):
					heads++
				case q.Method == http.MethodGet && strings.Contains(q.Path, "/manifests/sha256:"):
					gets++
				case q.Method == http.MethodGet && strings.Contains(q.Path, "/manifests/"):
					tagGets++
				}
			}
			if heads != 120 || tagGets != 0 || gets != tt.manifestGets {
				t.Errorf("%d HEADs, %d manifest GETs by tag, %d by digest; want 120, 0, %d", heads, tagGets, gets, tt.manifestGets)
			}
			if n := fnt.MaxInFlight(); n != 2 {
				t.Errorf("%d requests in flight at once, want 2 (--jobs 2)", n)
			}
		})
	}
}

// TestTagsFailingSpec: a missing repository fails its spec alone, named; a named tag the
// registry refuses to confirm fails its spec, or is ASSUMED under DoNotFail.
func TestTagsFailingSpec(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	p := r.Push(t, "ok/app", "1", tagImage("1", time.Unix(0, 0)))
	refused := r.FaultFront(t, registrytest.Fault{Kind: registrytest.Status, Code: http.StatusForbidden,
		Match: func(req *http.Request) bool {
			return req.Method == http.MethodHead && strings.HasSuffix(req.URL.Path, "/manifests/hidden")
		}})
	// HEAD and the GET it falls back to fail, every retry.
	failing := r.FaultFront(t, registrytest.Fault{Kind: registrytest.Status, Code: http.StatusServiceUnavailable,
		Match: func(req *http.Request) bool {
			return strings.HasSuffix(req.URL.Path, "/manifests/hidden")
		}})
	for _, tt := range []struct {
		name      string
		front     *registrytest.Front
		doNotFail bool
	}{
		{"Refused", refused, false},
		{"RefusedDoNotFail", refused, true},
		{"FailingDoNotFail", failing, true}, // 503 after every retry
	} {
		specs := mustSpecs(t, r.Host+"/no/such", tt.front.Host+"/ok/app=1,hidden")
		doNotFail := tt.doNotFail
		t.Run(tt.name, func(t *testing.T) {
			got, err := roots.Tags(t.Context(), specs, roots.TagsOptions{DoNotFail: doNotFail, NoCreated: true, Registry: tokenOptions(r)})
			var se *roots.SpecError
			if !errors.As(err, &se) || se.Spec != r.Host+"/no/such" || !errors.Is(err, fetch.ErrNotFound) {
				t.Fatalf("err = %v, want the missing repository's SpecError", err)
			}
			states := map[string]roots.TagStatus{}
			for _, st := range got {
				states[st.Tag] = st.State
			}
			if !doNotFail {
				if !strings.Contains(err.Error(), "hidden") || len(got) != 0 {
					t.Fatalf("err = %v, states %v: want ok/app failing on hidden too", err, states)
				}
				return
			}
			if states["1"] != roots.Absent || states["hidden"] != roots.Assumed || got[0].Digest != p.Digest {
				t.Fatalf("states %v, want 1 ABSENT and hidden ASSUMED", states)
			}
		})
	}
}

// TestTagsIndex: a multi-platform tag's digest is its index's; CREATED is the host platform's
// config; pulled with Pull it is PRESENT, and the next run reads CREATED from the cache with
// no manifest GET.
func TestTagsIndex(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	host, other := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	hostImg, otherImg := tagImage("host", host), tagImage("other", other)
	otherImg.OS, otherImg.Arch = "linux", "s390x"
	if fetch.HostPlatform().Architecture == "s390x" {
		otherImg.Arch = "ppc64le"
	}
	hostImg.OS, hostImg.Arch, hostImg.Variant = "linux", fetch.HostPlatform().Architecture, fetch.HostPlatform().Variant
	idx := r.PushIndex(t, "multi/app", "1", registrytest.OCI, otherImg, hostImg)
	cache := filepath.Join(t.TempDir(), "cache")
	specs := mustSpecs(t, r.Host+"/multi/app")
	for _, tt := range []struct {
		name  string
		pull  bool
		state roots.TagStatus
		gets  int // manifest GETs; -1: not counted
	}{
		{"Absent", true, roots.Absent, -1}, // not counted: the pull GETs the manifests too
		{"Present", false, roots.Present, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r.ResetRequests()
			got, err := roots.Tags(t.Context(), specs, roots.TagsOptions{Cache: cache, Pull: tt.pull})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].State != tt.state || got[0].Digest != idx.Digest || !got[0].Created.Equal(host) || got[0].Pulled != tt.pull {
				t.Fatalf("got %+v, want %s %s created %v", got, tt.state, idx.Digest, host)
			}
			gets := 0
			for _, q := range r.Requests() {
				if q.Method == http.MethodGet && strings.Contains(q.Path, "/manifests/") {
					gets++
				}
			}
			if tt.gets >= 0 && gets != tt.gets {
				t.Errorf("%d manifest GETs, want %d", gets, tt.gets)
			}
		})
	}
}

// TestTagsWithoutHeadDigest: a registry whose HEAD says no Docker-Content-Digest costs a GET,
// and the digest is the content's.
func TestTagsWithoutHeadDigest(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	p := r.Push(t, "nohead/app", "1", tagImage("1", time.Unix(0, 0)))
	fnt := r.FaultFront(t, registrytest.Fault{Kind: registrytest.Status, Code: http.StatusOK, Body: []byte{},
		Match: func(req *http.Request) bool { return req.Method == http.MethodHead }})
	got, err := roots.Tags(t.Context(), mustSpecs(t, fnt.Host+"/nohead/app"), roots.TagsOptions{NoCreated: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Digest != p.Digest {
		t.Fatalf("got %+v, want digest %s", got, p.Digest)
	}
	if n := registrytest.Count(fnt.Requests()); n.Heads != 1 {
		t.Errorf("%d HEADs, want 1 before the GET", n.Heads)
	}
}

// TestTagsUntrustedCache: the records of a cache others may write are not read.
func TestTagsUntrustedCache(t *testing.T) {
	cache := t.TempDir()
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := roots.Tags(t.Context(), mustSpecs(t, registry+"/example/hello"), roots.TagsOptions{Cache: cache})
	if !errors.Is(err, cas.ErrUntrusted) {
		t.Fatalf("err = %v, want ErrUntrusted", err)
	}
}
