package registrytest

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Push builds img and pushes its blobs and manifest to repo, tagged tag (by
// digest only when tag is ""). It authenticates on its own with full rights,
// whatever the Auth, and talks to the registry directly: pushes are not in
// Requests(). It fails the test on any error.
func (r *Registry) Push(t testing.TB, repo, tag string, img Image) Pushed {
	t.Helper()
	p := Build(t, img)
	r.pushImage(t, repo, tag, p)
	return p
}

// PushIndex builds each image as format, pushes them by digest, and then an
// OCI index or Docker manifest list over them, tagged tag (by digest only
// when tag is ""). An OCI index also lists an attestation manifest per image
// (platform unknown/unknown).
func (r *Registry) PushIndex(t testing.TB, repo, tag string, format Format, imgs ...Image) Pushed {
	t.Helper()
	idx, attestations, err := buildIndex(format, imgs)
	if err != nil {
		t.Fatalf("registrytest: build index: %v", err)
	}
	for _, p := range idx.Manifests {
		r.pushImage(t, repo, "", p)
	}
	for _, p := range attestations {
		r.pushImage(t, repo, "", p)
	}
	r.PushRaw(t, repo, refOr(tag, idx.Digest), idx.MediaType, idx.Manifest)
	return idx
}

// PushRaw stores body as a manifest of mediaType under ref (a tag or a
// digest) and returns its digest. The registry still validates it: a
// manifest it refuses fails the test (serve such bytes with a Status fault).
func (r *Registry) PushRaw(t testing.TB, repo, ref, mediaType string, body []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(body)
	u := r.backendURL("/v2/" + repo + "/manifests/" + ref)
	resp, msg := r.adminDo(t, repo, http.MethodPut, u, mediaType, body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("registrytest: push manifest %s:%s: %s: %s", repo, ref, resp.Status, msg)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		t.Fatalf("registrytest: push manifest %s:%s: registry stored digest %s, want %s", repo, ref, got, d)
	}
	return d
}

// PushBlob uploads data to repo (unless it is there already) and returns
// its digest.
func (r *Registry) PushBlob(t testing.TB, repo string, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	blobURL := r.backendURL("/v2/" + repo + "/blobs/" + d.String())
	if resp, _ := r.adminDo(t, repo, http.MethodHead, blobURL, "", nil); resp.StatusCode == http.StatusOK {
		return d
	}
	start := r.backendURL("/v2/" + repo + "/blobs/uploads/")
	resp, msg := r.adminDo(t, repo, http.MethodPost, start, "", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("registrytest: start upload to %s: %s: %s", repo, resp.Status, msg)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("registrytest: upload location %q: %v", resp.Header.Get("Location"), err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	resp, msg = r.adminDo(t, repo, http.MethodPut, loc.String(), "application/octet-stream", data)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("registrytest: upload %s to %s: %s: %s", d, repo, resp.Status, msg)
	}
	return d
}

func (r *Registry) pushImage(t testing.TB, repo, tag string, p Pushed) {
	t.Helper()
	for _, l := range p.Layers {
		r.PushBlob(t, repo, p.Blobs[l.Digest])
	}
	r.PushBlob(t, repo, p.Config)
	r.PushRaw(t, repo, refOr(tag, p.Digest), p.MediaType, p.Manifest)
}

// adminDo sends one request to the registry process with full rights on
// repo and returns the answer with its body read (at most 64 KiB kept, for
// messages).
func (r *Registry) adminDo(t testing.TB, repo, method, rawURL, contentType string, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("registrytest: %s %s: %v", method, rawURL, err)
	}
	req.ContentLength = int64(len(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch r.cfg.Auth {
	case Basic:
		req.SetBasicAuth(r.User, r.Password)
	case Token:
		tok, err := r.issuer.sign(adminUser, []access{{Type: "repository", Name: repo, Actions: []string{"pull", "push", "delete"}}}, time.Now(), 5*time.Minute)
		if err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := (&http.Client{Transport: r.toBackend}).Do(req)
	if err != nil {
		t.Fatalf("registrytest: %s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	io.Copy(io.Discard, resp.Body)
	return resp, string(msg)
}

func (r *Registry) backendURL(path string) string {
	u := url.URL{Scheme: r.backend.Scheme, Host: r.backend.Host, Path: path}
	return u.String()
}

func refOr(tag string, d digest.Digest) string {
	if tag != "" {
		return tag
	}
	return d.String()
}
