package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// newBlob is size random bytes (the same for the same seed) and their descriptor.
func newBlob(size int, seed byte) ([]byte, ocispec.Descriptor) {
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{seed, byte(size), byte(size >> 8), byte(size >> 16)}).Read(data)
	return data, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(size)}
}

// opener is PushBlob's open over data; opens counts its calls.
func opener(data []byte, opens *atomic.Int64) func(context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) {
		opens.Add(1)
		return io.NopCloser(bytes.NewReader(data)), nil
	}
}

// pushLog lists the requests of a log as "METHOD status", with a PATCH's
// Content-Range ("PATCH 0-65535 202"), leaving out the 401s of the auth
// handshake; anything else (a GET /v2/ ping, say) is listed as well.
func pushLog(log []registrytest.Request) []string {
	var out []string
	for _, r := range log {
		if r.Status == http.StatusUnauthorized {
			continue
		}
		if !strings.Contains(r.Path, "/blobs/") && !strings.Contains(r.Path, "/manifests/") {
			out = append(out, r.Method+" "+r.Path+" "+strconv.Itoa(r.Status))
			continue
		}
		s := r.Method
		if cr := r.Header.Get("Content-Range"); cr != "" {
			s += " " + cr
		}
		out = append(out, s+" "+strconv.Itoa(r.Status))
	}
	return out
}

func checkLog(t *testing.T, log []registrytest.Request, want ...string) {
	t.Helper()
	if got := pushLog(log); !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q:%s", got, want, requests(log))
	}
}

// checkStored reads blob desc back from repo and compares it with data.
func checkStored(t *testing.T, c *Client, repo Reference, desc ocispec.Descriptor, data []byte) {
	t.Helper()
	ok, err := c.BlobExists(t.Context(), repo, desc.Digest)
	if err != nil || !ok {
		t.Fatalf("BlobExists after the push = %v, %v; want true", ok, err)
	}
	got, err := readBlob(t, c, repo, desc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("the registry holds %d bytes (%s), want the %d pushed", len(got), digest.FromBytes(got), len(data))
	}
}

// credentials is the keychain for r: its user, or anonymous.
func credentials(t *testing.T, r *registrytest.Registry) auth.Keychain {
	if r.User == "" {
		return nil
	}
	return keychain(t, r.User, r.Password)
}

func TestMountBlob(t *testing.T) {
	for _, cfg := range []registrytest.Config{{}, {Auth: registrytest.Token}} {
		t.Run(cfg.Auth.String(), func(t *testing.T) {
			r := registrytest.Start(t, cfg)
			c := newTestClient(t, r, credentials(t, r))
			data, desc := newBlob(100_000, 2)
			r.PushBlob(t, "mount/source", data)

			t.Run("Mounted", func(t *testing.T) {
				target := mustRef(t, r.Host+"/mount/target")
				r.ResetRequests()
				mounted, err := c.MountBlob(t.Context(), target, desc.Digest, "mount/source")
				if err != nil || !mounted {
					t.Fatalf("MountBlob = %v, %v; want true", mounted, err)
				}
				log := r.Requests()
				checkLog(t, log, "POST 201")
				if q, _ := url.ParseQuery(log[len(log)-1].Query); q.Get("mount") != desc.Digest.String() || q.Get("from") != "mount/source" {
					t.Errorf("mount query %q", log[len(log)-1].Query)
				}
				checkStored(t, c, target, desc, data)
				if cfg.Auth == registrytest.Token {
					checkMountScopes(t, r.TokenRequests(), "repository:mount/target:pull,push", "repository:mount/source:pull")
				}
			})
			if cfg.Auth == registrytest.Token {
				// Through a proxy that takes the scope out of the registry's
				// challenges, only the scopes MountBlob asks for itself reach
				// the token: pull on the source must be one of them.
				t.Run("ScopesOfItsOwn", func(t *testing.T) {
					scope := regexp.MustCompile(`,?scope="[^"]*"`)
					host := answerProxy(t, r, func(resp *http.Response) {
						for i, v := range resp.Header.Values("Www-Authenticate") {
							resp.Header["Www-Authenticate"][i] = scope.ReplaceAllString(v, "")
						}
					})
					mounted, err := newTestClient(t, r, credentials(t, r)).MountBlob(t.Context(), mustRef(t, host+"/mount/third"), desc.Digest, "mount/source")
					if err != nil || !mounted {
						t.Fatalf("MountBlob = %v, %v; want true", mounted, err)
					}
				})
			}
			t.Run("SourceLacksBlob", func(t *testing.T) {
				target := mustRef(t, r.Host+"/mount/other")
				_, missing := newBlob(1000, 3)
				r.ResetRequests()
				mounted, err := c.MountBlob(t.Context(), target, missing.Digest, "mount/source")
				if err != nil || mounted {
					t.Fatalf("MountBlob = %v, %v; want false", mounted, err)
				}
				log := r.Requests()
				checkLog(t, log, "POST 202", "DELETE 204")
				// The session the 202 opened is gone.
				del := log[len(log)-1]
				resp, err := r.Transport.RoundTrip(mustRequest(t, http.MethodGet, r.URL+del.Path+"?"+del.Query))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("GET of the cancelled session: %s, want 404", resp.Status)
				}
				if ok, err := c.BlobExists(t.Context(), target, missing.Digest); err != nil || ok {
					t.Errorf("BlobExists after a failed mount = %v, %v", ok, err)
				}
			})
		})
	}
}

// checkMountScopes finds a token request that asks for every scope in want,
// each as its own scope= parameter. It may ask for more: the scope a
// registry's challenge names is added, and Distribution writes the actions of
// a push in either order ("push,pull").
func checkMountScopes(t *testing.T, log []registrytest.Request, want ...string) {
	t.Helper()
	var asked [][]string
	for _, req := range log {
		q, _ := url.ParseQuery(req.Query)
		if !slices.ContainsFunc(want, func(s string) bool { return !slices.Contains(q["scope"], s) }) {
			return
		}
		asked = append(asked, q["scope"])
	}
	t.Errorf("no token request asked for scopes %q; they asked for %q", want, asked)
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// pushImage uploads every blob of p to repo and then its manifest by digest.
func pushImage(t *testing.T, c *Client, repo Reference, p registrytest.Pushed) {
	t.Helper()
	for d, data := range p.Blobs {
		desc := ocispec.Descriptor{Digest: d, Size: int64(len(data))}
		var opens atomic.Int64
		if err := c.PushBlob(t.Context(), repo, desc, opener(data, &opens), UploadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.PushManifest(t.Context(), repo.WithDigest(p.Digest), p.MediaType, p.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if got != p.Digest {
		t.Fatalf("PushManifest returned %s, want %s", got, p.Digest)
	}
}

// checkManifest reads ref's manifest back and compares it byte for byte.
func checkManifest(t *testing.T, c *Client, ref Reference, mediaType string, body []byte) {
	t.Helper()
	got, mt, d, err := c.Manifest(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) || mt != mediaType || d != digest.FromBytes(body) {
		t.Fatalf("%s holds a %s manifest %s of %d bytes, want the %s pushed, %s of %d bytes", ref, mt, d, len(got), mediaType, digest.FromBytes(body), len(body))
	}
}

func TestPushManifest(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	c := newTestClient(t, r, credentials(t, r))

	t.Run("Image", func(t *testing.T) {
		for _, format := range []registrytest.Format{registrytest.OCI, registrytest.Docker} {
			p := registrytest.Build(t, hostImage(format))
			repo := mustRef(t, r.Host+"/manifest/image")
			for d, data := range p.Blobs {
				var opens atomic.Int64
				if err := c.PushBlob(t.Context(), repo, ocispec.Descriptor{Digest: d, Size: int64(len(data))}, opener(data, &opens), UploadOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			ref := mustRef(t, r.Host+"/manifest/image:v1")
			r.ResetRequests()
			d, err := c.PushManifest(t.Context(), ref, p.MediaType, p.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			if d != p.Digest {
				t.Errorf("PushManifest returned %s, want %s", d, p.Digest)
			}
			log := r.Requests()
			checkLog(t, log, "PUT 201")
			if ct := log[len(log)-1].Header.Get("Content-Type"); ct != p.MediaType {
				t.Errorf("PUT Content-Type %q, want %q", ct, p.MediaType)
			}
			checkManifest(t, c, ref, p.MediaType, p.Manifest)
		}
	})

	t.Run("Index", func(t *testing.T) {
		repo := mustRef(t, r.Host+"/manifest/multi")
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
		idx.SchemaVersion = 2
		for _, arch := range []string{"amd64", "arm64"} {
			p := registrytest.Build(t, image(registrytest.OCI, "linux", arch, ""))
			pushImage(t, c, repo, p)
			idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
				MediaType: p.MediaType, Digest: p.Digest, Size: int64(len(p.Manifest)),
				Platform: &ocispec.Platform{OS: "linux", Architecture: arch},
			})
		}
		body, err := json.Marshal(idx)
		if err != nil {
			t.Fatal(err)
		}
		ref := mustRef(t, r.Host+"/manifest/multi:latest")
		d, err := c.PushManifest(t.Context(), ref, ocispec.MediaTypeImageIndex, body)
		if err != nil {
			t.Fatal(err)
		}
		if d != digest.FromBytes(body) {
			t.Errorf("PushManifest returned %s, want %s", d, digest.FromBytes(body))
		}
		checkManifest(t, c, ref, ocispec.MediaTypeImageIndex, body)
		img, err := c.Resolve(t.Context(), ref, mustPlatform(t, "linux/arm64"))
		if err != nil {
			t.Fatalf("resolve the pushed index: %v", err)
		}
		if img.Digest != idx.Manifests[1].Digest || img.IndexDigest != d {
			t.Errorf("linux/arm64 resolves to %s in %s, want %s in %s", img.Digest, img.IndexDigest, idx.Manifests[1].Digest, d)
		}
	})

	t.Run("RetriedAfterServiceUnavailable", func(t *testing.T) {
		p := registrytest.Build(t, hostImage(registrytest.OCI))
		pushImage(t, c, mustRef(t, r.Host+"/manifest/retried"), p)
		front := r.FaultFront(t, registrytest.Fault{Kind: registrytest.Status, Code: 503, Times: 2, Match: func(req *http.Request) bool {
			return req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/")
		}})
		ref := mustRef(t, front.Host+"/manifest/retried:v2")
		if _, err := c.PushManifest(t.Context(), ref, p.MediaType, p.Manifest); err != nil {
			t.Fatal(err)
		}
		checkLog(t, settledLog(front.Requests, 3), "PUT 503", "PUT 503", "PUT 201")
		checkManifest(t, c, ref, p.MediaType, p.Manifest)
	})

	t.Run("BlobsMissing", func(t *testing.T) {
		p := registrytest.Build(t, image(registrytest.OCI, "linux", "s390x", ""))
		ref := mustRef(t, r.Host+"/manifest/empty:v1")
		_, err := c.PushManifest(t.Context(), ref, p.MediaType, p.Manifest)
		if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), ref.String()) {
			t.Fatalf("PushManifest without its blobs: %v; want the registry's 400 naming %s", err, ref)
		}
	})

	t.Run("DigestNotTheBodys", func(t *testing.T) {
		ref := mustRef(t, r.Host+"/manifest/image").WithDigest(digest.FromString("other"))
		r.ResetRequests()
		_, err := c.PushManifest(t.Context(), ref, ocispec.MediaTypeImageManifest, []byte(`{}`))
		if !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("PushManifest under another digest: %v; want ErrDigestMismatch", err)
		}
		checkLog(t, r.Requests())
	})
}
