package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestInspect: roots inspect against skopeo inspect, field by field, for a single-platform
// image whose config sets every field and for one platform of an index; --config and --raw
// against skopeo's --config --raw and --raw, byte for byte; and, once the image is pulled, the
// same answer from the cache with no request to the registry.
func TestInspect(t *testing.T) {
	NeedRoot(t)
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo is needed: apt-get install skopeo (as .ci/run does)")
	}
	r := registrytest.Start(t, registrytest.Config{})
	img := smallImage("inspect")
	img.Config = map[string]any{
		"created": "2024-03-04T05:06:07.123456789Z",
		"author":  "roots tests",
		"config": map[string]any{
			"Entrypoint": []string{"/bin/app", "--serve"}, "Cmd": []string{"--port", "80"},
			"Env": []string{"PATH=/usr/bin:/bin", "MODE=test"}, "User": "app:staff", "WorkingDir": "/srv",
			"Labels":       map[string]string{"org.opencontainers.image.title": "app", "tier": "web"},
			"ExposedPorts": map[string]any{"80/tcp": map[string]any{}, "53/udp": map[string]any{}}, "StopSignal": "SIGQUIT",
		},
	}
	r.Push(t, "app", "1", img)
	amd := smallImage("amd")
	amd.OS, amd.Arch = "linux", "amd64"
	arm := smallImage("arm")
	arm.OS, arm.Arch, arm.Variant = "linux", "arm64", "v8"
	r.PushIndex(t, "multi", "1", registrytest.OCI, amd, arm)

	type skopeoJSON struct {
		Digest, Architecture, Os, Variant string
		Created                           time.Time
		Labels                            map[string]string
		Layers                            []string
		Env                               []string
	}
	type rootsJSON struct {
		Reference, Digest, Manifest, MediaType, Platform, Author, User, WorkingDir, StopSignal, Source string
		Created                                                                                        time.Time
		Labels                                                                                         map[string]string
		Entrypoint, Cmd, Env, ExposedPorts                                                             []string
		Layers                                                                                         []struct {
			Digest, DiffID, MediaType string
			Size                      int64
		}
		Size int64
	}
	cache := filepath.Join(t.TempDir(), "cache")
	for _, tt := range []struct {
		ref, platform string
		want          rootsJSON // the fields skopeo does not show
	}{
		{r.Host + "/app:1", "linux/" + runtime.GOARCH, rootsJSON{Author: "roots tests", User: "app:staff", WorkingDir: "/srv", StopSignal: "SIGQUIT",
			Entrypoint: []string{"/bin/app", "--serve"}, Cmd: []string{"--port", "80"}, ExposedPorts: []string{"53/udp", "80/tcp"}}},
		{r.Host + "/multi:1", "linux/arm64/v8", rootsJSON{}},
	} {
		skopeoArgs := []string{"--override-os", "linux", "--override-arch", strings.Split(tt.platform, "/")[1]}
		if v := strings.Split(tt.platform, "/"); len(v) == 3 {
			skopeoArgs = append(skopeoArgs, "--override-variant", v[2])
		}
		runRef := func(ref string, args ...string) []byte {
			t.Helper()
			cmd := exec.Command(skopeo, append(append(slices.Clone(skopeoArgs), "inspect", "--tls-verify=false"), append(args, "docker://"+ref)...)...)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("skopeo inspect %v: %v", args, err)
			}
			return out
		}
		run := func(args ...string) []byte { t.Helper(); return runRef(tt.ref, args...) }
		var sk skopeoJSON
		if err := json.Unmarshal(run(), &sk); err != nil {
			t.Fatal(err)
		}
		var manifest struct {
			Layers []struct {
				Digest, MediaType string
				Size              int64
			}
		}
		if err := json.Unmarshal(platformManifest(t, runRef, tt.ref, tt.platform), &manifest); err != nil {
			t.Fatal(err)
		}
		for _, source := range []string{"registry", "cache"} {
			if source == "cache" {
				MustPull(t, nil, "--cache", cache, "--platform", tt.platform, tt.ref, filepath.Join(t.TempDir(), "rootfs"))
				r.ResetRequests()
			}
			res := Roots(t, nil, "inspect", "--json", "--cache", cache, "--platform", tt.platform, tt.ref)
			if res.Code != 0 {
				t.Fatalf("roots inspect: exit %d: %s", res.Code, res.Stderr)
			}
			var got rootsJSON
			if err := json.Unmarshal([]byte(res.Stdout), &got); err != nil {
				t.Fatal(err)
			}
			if got.Source != source || got.Digest != sk.Digest || !got.Created.Equal(sk.Created) || got.Platform != tt.platform ||
				!equalMaps(got.Labels, sk.Labels) || !slices.Equal(got.Env, sk.Env) || len(got.Layers) != len(sk.Layers) || len(got.Layers) != len(manifest.Layers) {
				t.Errorf("%s from the %s: roots %+v\nskopeo %+v", tt.ref, source, got, sk)
			}
			var size int64
			for i, l := range got.Layers {
				// skopeo 1.9 shows the layers' digests; their sizes and types are the manifest's.
				if i < len(sk.Layers) && i < len(manifest.Layers) && (l.Digest != sk.Layers[i] || l.Digest != manifest.Layers[i].Digest ||
					l.Size != manifest.Layers[i].Size || l.MediaType != manifest.Layers[i].MediaType || l.DiffID == "") {
					t.Errorf("%s layer %d: roots %+v, skopeo %s, manifest %+v", tt.ref, i, l, sk.Layers[i], manifest.Layers[i])
				}
				size += l.Size
			}
			if got.Size != size || got.Author != tt.want.Author || got.User != tt.want.User || got.WorkingDir != tt.want.WorkingDir ||
				got.StopSignal != tt.want.StopSignal || !slices.Equal(got.Entrypoint, tt.want.Entrypoint) || !slices.Equal(got.Cmd, tt.want.Cmd) ||
				!slices.Equal(got.ExposedPorts, tt.want.ExposedPorts) {
				t.Errorf("%s from the %s: %+v, want %+v", tt.ref, source, got, tt.want)
			}
			for _, raw := range [][2]string{{"--config", "--config"}, {"--raw", ""}} {
				res := Roots(t, nil, "inspect", raw[0], "--cache", cache, "--platform", tt.platform, tt.ref)
				args := []string{"--raw"}
				if raw[1] != "" {
					args = []string{raw[1], "--raw"}
				}
				if want := string(run(args...)); res.Code != 0 || res.Stdout != want {
					t.Errorf("roots inspect %s: exit %d, %q; skopeo inspect %v: %q", raw[0], res.Code, res.Stdout, args, want)
				}
			}
			if source == "cache" {
				// skopeo's requests above came after the reset: count roots' own by user agent.
				for _, req := range r.Requests() {
					if strings.HasPrefix(req.Header.Get("User-Agent"), "roots/") {
						t.Errorf("inspect from the cache sent %s %s", req.Method, req.Path)
					}
				}
			}
		}
	}
}

// platformManifest is the manifest of platform (os/arch[/variant]) that ref names, as skopeo
// reads it: the raw manifest itself, or, for an index, its entry's manifest, by digest.
func platformManifest(t *testing.T, runRef func(ref string, args ...string) []byte, ref, platform string) []byte {
	t.Helper()
	raw := runRef(ref, "--raw")
	var index struct {
		Manifests []struct {
			Digest   string
			Platform struct{ OS, Architecture, Variant string }
		}
	}
	if json.Unmarshal(raw, &index) != nil || len(index.Manifests) == 0 {
		return raw
	}
	repo := strings.TrimSuffix(ref, ":1") // the tests' tags are all 1
	for _, m := range index.Manifests {
		p := m.Platform.OS + "/" + m.Platform.Architecture
		if m.Platform.Variant != "" {
			p += "/" + m.Platform.Variant
		}
		if p == platform {
			return runRef(repo+"@"+m.Digest, "--raw")
		}
	}
	t.Fatalf("no %s in %s", platform, raw)
	return nil
}
