package fetch

import (
	"bytes"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// checkImage compares what Resolve found with what the harness pushed.
func checkImage(t *testing.T, got *Image, want registrytest.Pushed) {
	t.Helper()
	if got.Digest != want.Digest {
		t.Errorf("Digest = %s, want %s", got.Digest, want.Digest)
	}
	if got.MediaType != want.MediaType {
		t.Errorf("MediaType = %s, want %s", got.MediaType, want.MediaType)
	}
	if !bytes.Equal(got.Manifest, want.Manifest) {
		t.Error("Manifest bytes differ from what was pushed")
	}
	if !bytes.Equal(got.Config, want.Config) {
		t.Error("Config bytes differ from what was pushed")
	}
	if got.ConfigDesc.Digest != digest.FromBytes(want.Config) || got.ConfigDesc.Size != int64(len(want.Config)) {
		t.Errorf("ConfigDesc = %+v", got.ConfigDesc)
	}
	if len(got.Layers) != len(want.Layers) {
		t.Fatalf("%d layers, want %d", len(got.Layers), len(want.Layers))
	}
	for i := range got.Layers {
		if got.Layers[i].Digest != want.Layers[i].Digest || got.Layers[i].Size != want.Layers[i].Size ||
			got.Layers[i].MediaType != want.Layers[i].MediaType {
			t.Errorf("layer %d = %+v, want %+v", i, got.Layers[i], want.Layers[i])
		}
		if got.DiffIDs[i] != want.DiffIDs[i] {
			t.Errorf("diff id %d = %s, want %s", i, got.DiffIDs[i], want.DiffIDs[i])
		}
	}
	wantPlatform := Platform{want.Platform.OS, want.Platform.Architecture, want.Platform.Variant}
	if got.Platform != wantPlatform {
		t.Errorf("Platform = %v, want %v", got.Platform, wantPlatform)
	}
}

func TestResolveEachManifestKind(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	c := newTestClient(t, r, nil)
	ctx := t.Context()

	single := []struct {
		name   string
		format registrytest.Format
		media  string
	}{
		{"OCIManifest", registrytest.OCI, ocispec.MediaTypeImageManifest},
		{"DockerManifest", registrytest.Docker, MediaTypeDockerManifest},
	}
	for _, tt := range single {
		t.Run(tt.name, func(t *testing.T) {
			pushed := r.Push(t, "single/"+strings.ToLower(tt.name), "v1", image(tt.format, "linux", "arm64", "v8"))
			ref := mustRef(t, r.Host+"/single/"+strings.ToLower(tt.name)+":v1")
			// A single-platform image is taken as it is when no platform is asked for.
			img, err := c.Resolve(ctx, ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			if img.MediaType != tt.media {
				t.Errorf("MediaType = %s, want %s", img.MediaType, tt.media)
			}
			if img.IndexDigest != "" || img.Index != nil {
				t.Errorf("single manifest has an index: %s", img.IndexDigest)
			}
			checkImage(t, img, pushed)
			// An explicit platform that agrees (arm64 = arm64/v8) is fine too.
			if _, err := c.Resolve(ctx, ref, mustPlatform(t, "linux/arm64")); err != nil {
				t.Errorf("Resolve with linux/arm64: %v", err)
			}
		})
	}

	multi := []struct {
		name   string
		format registrytest.Format
		media  string
	}{
		{"OCIIndexWithAttestations", registrytest.OCI, ocispec.MediaTypeImageIndex},
		{"DockerManifestList", registrytest.Docker, MediaTypeDockerManifestList},
	}
	for _, tt := range multi {
		t.Run(tt.name, func(t *testing.T) {
			repo := "multi/" + strings.ToLower(tt.name)
			pushed := r.PushIndex(t, repo, "latest", tt.format,
				image(tt.format, "linux", "amd64", ""),
				image(tt.format, "linux", "arm64", "v8"),
				image(tt.format, "linux", "arm", "v7"),
			)
			if pushed.MediaType != tt.media {
				t.Fatalf("harness pushed %s, want %s", pushed.MediaType, tt.media)
			}
			ref := mustRef(t, r.Host+"/"+repo)
			for i, want := range []string{"linux/amd64", "linux/arm64", "linux/arm/v7"} {
				img, err := c.Resolve(ctx, ref, mustPlatform(t, want))
				if err != nil {
					t.Fatalf("%s: %v", want, err)
				}
				if img.IndexDigest != pushed.Digest || !bytes.Equal(img.Index, pushed.Manifest) {
					t.Errorf("%s: index %s, want %s", want, img.IndexDigest, pushed.Digest)
				}
				checkImage(t, img, pushed.Manifests[i])
			}
			// No platform: the host's.
			img, err := c.Resolve(ctx, ref, nil)
			if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" && runtime.GOARCH != "arm" {
				if !errors.Is(err, ErrNoMatchingPlatform) {
					t.Fatalf("host %s: got %v, want ErrNoMatchingPlatform", runtime.GOARCH, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.Platform.Architecture != runtime.GOARCH {
				t.Errorf("host platform resolved to %v", img.Platform)
			}
		})
	}
}

func TestResolveAttestationIsNeverChosen(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	c := newTestClient(t, r, nil)
	r.PushIndex(t, "attested", "latest", registrytest.OCI, image(registrytest.OCI, "linux", "amd64", ""))
	_, err := c.Resolve(t.Context(), mustRef(t, r.Host+"/attested"), &Platform{OS: "unknown", Architecture: "unknown"})
	if !errors.Is(err, ErrNoMatchingPlatform) {
		t.Fatalf("got %v, want ErrNoMatchingPlatform", err)
	}
}

func TestResolvePlatformNotFoundListsPlatforms(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	c := newTestClient(t, r, nil)
	r.PushIndex(t, "x", "latest", registrytest.OCI,
		image(registrytest.OCI, "linux", "amd64", ""),
		image(registrytest.OCI, "linux", "arm64", "v8"),
	)
	ref := mustRef(t, r.Host+"/x")
	want := "no linux/s390x image in " + r.Host + "/x:latest; it has linux/amd64, linux/arm64/v8"
	for _, call := range []struct {
		name string
		run  func() error
	}{
		{"Resolve", func() error { _, err := c.Resolve(t.Context(), ref, mustPlatform(t, "linux/s390x")); return err }},
		{"Digest", func() error { _, err := c.Digest(t.Context(), ref, mustPlatform(t, "linux/s390x")); return err }},
	} {
		err := call.run()
		if !errors.Is(err, ErrNoMatchingPlatform) {
			t.Fatalf("%s: got %v, want ErrNoMatchingPlatform", call.name, err)
		}
		if err.Error() != want {
			t.Errorf("%s: message\n %q\nwant\n %q", call.name, err, want)
		}
	}
}

func TestResolveSinglePlatformContradiction(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	c := newTestClient(t, r, nil)
	r.Push(t, "arm", "latest", image(registrytest.Docker, "linux", "arm", "v6"))
	ref := mustRef(t, r.Host+"/arm")
	for _, want := range []string{"linux/amd64", "linux/arm/v5"} {
		_, err := c.Resolve(t.Context(), ref, mustPlatform(t, want))
		if !errors.Is(err, ErrNoMatchingPlatform) {
			t.Fatalf("%s: got %v, want ErrNoMatchingPlatform", want, err)
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "linux/arm/v6") {
			t.Errorf("%s: message %q does not name both platforms", want, err)
		}
		if _, err := c.Digest(t.Context(), ref, mustPlatform(t, want)); !errors.Is(err, ErrNoMatchingPlatform) {
			t.Errorf("Digest %s: got %v, want ErrNoMatchingPlatform", want, err)
		}
	}
	// arm/v7 runs arm/v6 images.
	if _, err := c.Resolve(t.Context(), ref, mustPlatform(t, "linux/arm/v7")); err != nil {
		t.Errorf("linux/arm/v7: %v", err)
	}
}

func TestResolveNotFound(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	c := newTestClient(t, r, nil)
	r.Push(t, "foo", "v1", hostImage(registrytest.OCI))
	for _, s := range []string{"/foo:bar", "/nothing:latest"} {
		ref := mustRef(t, r.Host+s)
		_, err := c.Resolve(t.Context(), ref, nil)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: got %v, want ErrNotFound", s, err)
		}
		if want := "manifest unknown: " + r.Host + s + " not found"; err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
		if _, err := c.Digest(t.Context(), ref, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("Digest %s: got %v, want ErrNotFound", s, err)
		}
	}
	// 404 is not retried.
	r.ResetRequests()
	c.Resolve(t.Context(), mustRef(t, r.Host+"/foo:bar"), nil)
	if log := settledLog(r.Requests, 1); len(log) != 1 {
		t.Errorf("%d requests for a missing manifest, want 1:%s", len(log), requests(log))
	}
}

func TestResolveRefusesSchema1(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	schema1 := []byte(`{"schemaVersion":1,"name":"old","tag":"latest","architecture":"amd64","fsLayers":[],"history":[]}`)
	tests := []struct {
		name, contentType string
	}{
		{"SignedContentType", MediaTypeDockerSchema1Signed},
		{"UnsignedContentType", MediaTypeDockerSchema1},
		{"BodyOnly", "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := r.FaultProxy(t, registrytest.Fault{
				Kind: registrytest.Status, Code: http.StatusOK, Match: manifestGet(""),
				Header: http.Header{"Content-Type": {tt.contentType}}, Body: schema1,
			})
			c := newTestClient(t, r, nil)
			_, err := c.Resolve(t.Context(), mustRef(t, host+"/old"), nil)
			if !errors.Is(err, ErrUnsupportedManifest) {
				t.Fatalf("got %v, want ErrUnsupportedManifest", err)
			}
			if !strings.Contains(err.Error(), "schema1 manifests are deprecated and not supported: push the image again with a current Docker or use skopeo to convert it") {
				t.Errorf("message %q", err)
			}
		})
	}
}

func TestResolveMediaTypeMustMatchContentType(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	pushed := r.Push(t, "x", "latest", hostImage(registrytest.OCI))
	host := r.FaultProxy(t, registrytest.Fault{
		Kind: registrytest.Status, Code: http.StatusOK, Match: manifestGet("latest"),
		Header: http.Header{"Content-Type": {MediaTypeDockerManifest}}, Body: pushed.Manifest,
	})
	c := newTestClient(t, r, nil)
	_, err := c.Resolve(t.Context(), mustRef(t, host+"/x"), nil)
	if !errors.Is(err, ErrInvalidManifest) {
		t.Fatalf("got %v, want ErrInvalidManifest", err)
	}
	if !strings.Contains(err.Error(), MediaTypeDockerManifest) || !strings.Contains(err.Error(), ocispec.MediaTypeImageManifest) {
		t.Errorf("message %q does not name both media types", err)
	}
}

func TestResolveByDigestIsVerified(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	pushed := r.PushIndex(t, "x", "", registrytest.OCI, image(registrytest.OCI, "linux", "amd64", ""))
	other := r.Push(t, "x", "other", image(registrytest.OCI, "linux", "riscv64", ""))
	c := newTestClient(t, r, nil)

	ref := mustRef(t, r.Host+"/x@"+pushed.Digest.String())
	img, err := c.Resolve(t.Context(), ref, mustPlatform(t, "linux/amd64"))
	if err != nil {
		t.Fatal(err)
	}
	if img.IndexDigest != pushed.Digest {
		t.Errorf("IndexDigest = %s, want %s", img.IndexDigest, pushed.Digest)
	}
	checkImage(t, img, pushed.Manifests[0])

	// A registry that serves other bytes for the digest is caught, by Manifest
	// and for an index's child as well.
	tests := []struct {
		name  string
		ref   string
		match string
	}{
		{"Top", "/x@" + pushed.Digest.String(), pushed.Digest.String()},
		{"Child", "/x@" + pushed.Digest.String(), pushed.Manifests[0].Digest.String()},
		{"TagAndDigest", "/x:v1@" + pushed.Manifests[0].Digest.String(), pushed.Manifests[0].Digest.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := r.FaultProxy(t, registrytest.Fault{
				Kind: registrytest.Status, Code: http.StatusOK, Match: manifestGet(tt.match),
				Header: http.Header{"Content-Type": {ocispec.MediaTypeImageManifest}}, Body: other.Manifest,
			})
			_, err := newTestClient(t, r, nil).Resolve(t.Context(), mustRef(t, host+tt.ref), mustPlatform(t, "linux/amd64"))
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("got %v, want ErrDigestMismatch", err)
			}
			if !strings.Contains(err.Error(), other.Digest.String()) || !strings.Contains(err.Error(), tt.match) {
				t.Errorf("message %q does not name both digests", err)
			}
		})
	}
}

func TestManifestTooLarge(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	huge := append([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":"`),
		bytes.Repeat([]byte("a"), int(maxManifestSize))...)
	huge = append(huge, `"}}`...)
	host := r.FaultProxy(t, registrytest.Fault{
		Kind: registrytest.Status, Code: http.StatusOK, Match: manifestGet(""),
		Header: http.Header{"Content-Type": {ocispec.MediaTypeImageManifest}}, Body: huge,
	})
	_, _, _, err := newTestClient(t, r, nil).Manifest(t.Context(), mustRef(t, host+"/big"))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

func TestDigest(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	c := newTestClient(t, r, nil)
	index := r.PushIndex(t, "multi", "latest", registrytest.Docker,
		image(registrytest.Docker, "linux", "amd64", ""), image(registrytest.Docker, "linux", "arm64", "v8"))
	single := r.Push(t, "single", "latest", image(registrytest.OCI, "linux", "arm64", ""))

	tests := []struct {
		name, ref string
		want      *Platform
		digest    digest.Digest
		methods   string // manifest requests made
	}{
		{"IndexByHEAD", "/multi", nil, index.Digest, "HEAD"},
		{"SingleByHEAD", "/single", nil, single.Digest, "HEAD"},
		{"IndexByDigest", "/multi@" + index.Digest.String(), nil, index.Digest, "HEAD"},
		{"IndexPlatform", "/multi", mustPlatform(t, "linux/arm64/v8"), index.Manifests[1].Digest, "GET"},
		{"SinglePlatform", "/single", mustPlatform(t, "linux/arm64"), single.Digest, "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.ResetRequests()
			got, err := c.Digest(t.Context(), mustRef(t, r.Host+tt.ref), tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.digest {
				t.Errorf("Digest = %s, want %s", got, tt.digest)
			}
			var methods []string
			log := settledLog(r.Requests, 1)
			for _, req := range log {
				if strings.Contains(req.Path, "/manifests/") && req.Status == http.StatusOK {
					methods = append(methods, req.Method)
				}
			}
			if strings.Join(methods, " ") != tt.methods {
				t.Errorf("manifest requests %v, want %s:%s", methods, tt.methods, requests(log))
			}
		})
	}
}

func TestDigestFallsBackToGET(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	pushed := r.Push(t, "x", "latest", hostImage(registrytest.OCI))
	// A registry that does not answer HEAD.
	host := r.FaultProxy(t, registrytest.Fault{
		Kind: registrytest.Status, Code: http.StatusMethodNotAllowed,
		Match: func(req *http.Request) bool { return req.Method == http.MethodHead },
	})
	got, err := newTestClient(t, r, nil).Digest(t.Context(), mustRef(t, host+"/x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != pushed.Digest {
		t.Errorf("Digest = %s, want %s", got, pushed.Digest)
	}
}
