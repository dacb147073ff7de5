package e2e

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestStalledRegistry: a registry that stops sending in the middle of a body, or trickles,
// never hangs a pull. A stall is retried from where it broke; one that lasts fails cleanly,
// naming the host and the blob, well within the test's deadline.
func TestStalledRegistry(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	noise := make([]byte, 64<<10) // incompressible: the blob is as large
	rand.NewChaCha8([32]byte{1}).Read(noise)
	pushed := r.Push(t, "img", "latest", registrytest.Image{Layers: []registrytest.Layer{
		{Compression: "gzip", Entries: []reg{{Name: "noise", Body: noise}}},
	}})
	blob := pushed.Layers[0].Digest.String()
	layerGet := func(req *http.Request) bool { return strings.HasSuffix(req.URL.Path, "/blobs/"+blob) }
	tests := []struct {
		name    string
		fault   registrytest.Fault
		flags   []string
		wantErr string // "" = the pull succeeds
	}{
		{"StallTwiceThenWhole", registrytest.Fault{Kind: registrytest.StallAfter, Bytes: 100, Times: 2, Match: layerGet}, []string{"--timeout", "1s"}, ""},
		{"StallAlways", registrytest.Fault{Kind: registrytest.StallAfter, Bytes: 100, Match: layerGet}, []string{"--timeout", "500ms"}, "no data from"},
		{"StalledManifest", registrytest.Fault{Kind: registrytest.StallAfter, Bytes: 10, Match: func(req *http.Request) bool {
			return strings.Contains(req.URL.Path, "/manifests/")
		}}, []string{"--timeout", "500ms"}, "no data from"},
		{"Trickle", registrytest.Fault{Kind: registrytest.Trickle, Delay: 100 * time.Millisecond, Match: layerGet},
			[]string{"--speed-limit", "1000", "--speed-time", "1s"}, "less than 1000 bytes a second"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := r.FaultFront(t, tt.fault)
			for _, cache := range []string{t.TempDir(), "no"} {
				dest := t.TempDir() + "/rootfs"
				args := append([]string{"pull", "--cache", cache}, tt.flags...)
				start := time.Now()
				res := RootsLimit(t, time.Minute, nil, append(args, front.Host+"/img", dest)...)
				t.Logf("%s: %v: %s", cache, time.Since(start).Round(time.Millisecond), strings.TrimSpace(res.Stderr))
				if tt.wantErr == "" {
					if res.Code != 0 {
						t.Fatalf("exit %d: %s", res.Code, res.Stderr)
					}
					continue
				}
				AssertCleanFailure(t, res, tt.wantErr, dest)
				if !strings.Contains(res.Stderr, front.Host) {
					t.Errorf("the error does not name the host %s", front.Host)
				}
				if tt.name != "StalledManifest" && !strings.Contains(res.Stderr, blob) {
					t.Errorf("the error does not name the blob %s", blob)
				}
			}
		})
	}
}
