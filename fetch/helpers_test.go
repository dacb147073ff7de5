package fetch

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// newTestClient is a Client for r with a short backoff, so that retry tests
// stay fast.
func newTestClient(t *testing.T, r *registrytest.Registry, kc auth.Keychain) *Client {
	t.Helper()
	return New(Options{Transport: r.Transport, Keychain: kc, Backoff: 5 * time.Millisecond, UserAgent: "roots-test"})
}

func mustRef(t *testing.T, s string) Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustPlatform(t *testing.T, s string) *Platform {
	t.Helper()
	p, err := ParsePlatform(s)
	if err != nil {
		t.Fatal(err)
	}
	return &p
}

// image is a small one-layer image for a platform; the platform is in the
// file so that images for different platforms differ.
func image(format registrytest.Format, os, arch, variant string) registrytest.Image {
	return registrytest.Image{
		Layers: []registrytest.Layer{
			{Entries: []registrytest.Entry{{Name: "etc/os-release", Body: []byte("ID=test\n")}}, Compression: registrytest.Gzip},
			{Entries: []registrytest.Entry{{Name: "platform", Body: []byte(os + "/" + arch + "/" + variant)}}, Compression: registrytest.Zstd},
		},
		OS: os, Arch: arch, Variant: variant, Format: format,
	}
}

// hostImage is image for the platform the tests run on.
func hostImage(format registrytest.Format) registrytest.Image {
	return image(format, "linux", runtime.GOARCH, HostPlatform().Variant)
}

// manifestGet matches a GET of a manifest; with ref, only of that tag or digest.
func manifestGet(ref string) func(*http.Request) bool {
	return func(req *http.Request) bool {
		return req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/manifests/") &&
			(ref == "" || strings.HasSuffix(req.URL.Path, "/manifests/"+ref))
	}
}

// requests lists a request log as "METHOD path status" lines, for messages.
func requests(log []registrytest.Request) string {
	var b strings.Builder
	for _, r := range log {
		b.WriteString("\n  " + r.Method + " " + r.Path + " " + http.StatusText(r.Status))
		if rg := r.Header.Get("Range"); rg != "" {
			b.WriteString(" (Range: " + rg + ")")
		}
	}
	return b.String()
}

// settledLog returns a front's request log once it holds at least min
// entries and has stopped growing: a front records a request when its
// handler returns, which can be just after the client has the answer.
func settledLog(log func() []registrytest.Request, min int) []registrytest.Request {
	deadline := time.Now().Add(2 * time.Second)
	for len(log()) < min && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for {
		n := len(log())
		time.Sleep(20 * time.Millisecond)
		if got := log(); len(got) == n || time.Now().After(deadline) {
			return got
		}
	}
}
