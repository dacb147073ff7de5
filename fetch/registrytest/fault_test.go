package registrytest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// faultSetup is a registry with one 200 KiB uncompressed blob, so that
// offsets in the body are offsets in the data.
func faultSetup(t *testing.T, cfg Config) (*Registry, []byte, digest.Digest) {
	t.Helper()
	r := Start(t, cfg)
	data := make([]byte, 200<<10)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(data)
	return r, data, r.PushBlob(t, "faulty", data)
}

// rawGet is one GET through base with r's credential, keeping the body
// read so far and the read error.
func rawGet(t *testing.T, r *Registry, base, path string, hdr http.Header) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	switch r.cfg.Auth {
	case Basic:
		req.SetBasicAuth(r.User, r.Password)
	case Token:
		req.Header.Set("Authorization", "Bearer "+r.IssueToken(t, r.User, time.Minute, "repository:faulty:pull"))
	}
	resp, err := (&http.Client{Transport: r.Transport}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestFaultProxy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   Config
		fault Fault
		check func(t *testing.T, r *Registry, base, blob string, data []byte)
	}{
		{"CutAfter", Config{}, Fault{Kind: CutAfter, Bytes: 1000, Times: 1},
			func(t *testing.T, r *Registry, base, blob string, data []byte) {
				resp, body, err := rawGet(t, r, base, blob, nil)
				if !errors.Is(err, io.ErrUnexpectedEOF) || resp.StatusCode != 200 || !bytes.Equal(body, data[:1000]) {
					t.Fatalf("cut GET: err %v, %d bytes", err, len(body))
				}
				if _, body, err = rawGet(t, r, base, blob, nil); err != nil || !bytes.Equal(body, data) {
					t.Fatalf("second GET (Times: 1 used up): err %v, %d bytes", err, len(body))
				}
			}},
		{"CutAfterZero", Config{Auth: Token, TLS: true}, Fault{Kind: CutAfter},
			func(t *testing.T, r *Registry, base, blob string, data []byte) {
				resp, body, err := rawGet(t, r, base, blob, nil)
				if !errors.Is(err, io.ErrUnexpectedEOF) || resp.StatusCode != 200 || len(body) != 0 {
					t.Fatalf("cut GET: err %v, %d bytes", err, len(body))
				}
			}},
		{"CutAtTheEndCutsNothing", Config{}, Fault{Kind: CutAfter, Bytes: 200 << 10},
			func(t *testing.T, r *Registry, base, blob string, data []byte) {
				if _, body, err := rawGet(t, r, base, blob, nil); err != nil || !bytes.Equal(body, data) {
					t.Fatalf("GET: err %v, %d bytes", err, len(body))
				}
			}},
		{"Status", Config{Auth: Basic}, Fault{Kind: Status, Code: 429, Delay: 1500 * time.Millisecond, Times: 2},
			func(t *testing.T, r *Registry, base, blob string, data []byte) {
				for i := range 2 {
					resp, body, _ := rawGet(t, r, base, blob, nil)
					if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || !strings.Contains(string(body), `"errors"`) {
						t.Fatalf("GET %d: %s, Retry-After %q, %s", i, resp.Status, resp.Header.Get("Retry-After"), body)
					}
				}
				if resp, body, err := rawGet(t, r, base, blob, nil); err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
					t.Fatalf("third GET: %v", err)
				}
			}},
		{"StatusServesBody", Config{}, Fault{Kind: Status, Code: 200, Body: []byte(`{"hostile":true}`),
			Header: http.Header{"Content-Type": {"application/vnd.oci.image.manifest.v1+json"}},
			Match:  func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }},
			func(t *testing.T, r *Registry, base, blob string, data []byte) {
				resp, body, err := rawGet(t, r, base, "/v2/faulty/manifests/anything", nil)
				if err != nil || resp.StatusCode != 200 || string(body) != `{"hostile":true}` || resp.Header.Get("Content-Type") != "application/vnd.oci.image.manifest.v1+json" {
					t.Fatalf("GET manifest: %v %q", err, body)
				}
				if _, body, err := rawGet(t, r, base, blob, nil); err != nil || !bytes.Equal(body, data) {
					t.Fatalf("GET blob (not matched): %v", err)
				}
			}},
		{"WrongBytes", Config{TLS: true}, Fault{Kind: WrongBytes, Bytes: 70000},
			func(t *testing.T, r *Registry, base, blob string, data []byte) {
				_, body, err := rawGet(t, r, base, blob, nil)
				if err != nil || len(body) != len(data) {
					t.Fatalf("GET: %v, %d bytes", err, len(body))
				}
				for i := range data {
					if (body[i] != data[i]) != (i == 70000) {
						t.Fatalf("byte %d: got %#x, data %#x", i, body[i], data[i])
					}
				}
			}},
		{"IgnoreRange", Config{}, Fault{Kind: IgnoreRange},
			func(t *testing.T, r *Registry, base, blob string, data []byte) {
				rng := http.Header{"Range": {"bytes=100-"}}
				resp, body, err := rawGet(t, r, r.URL, blob, rng)
				if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100:]) {
					t.Fatalf("ranged GET without the fault: %v %d, %d bytes", err, resp.StatusCode, len(body))
				}
				resp, body, err = rawGet(t, r, base, blob, rng)
				if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
					t.Fatalf("ranged GET with the fault: %v %d, %d bytes", err, resp.StatusCode, len(body))
				}
			}},
		{"Slow", Config{}, Fault{Kind: Slow, Delay: 60 * time.Millisecond},
			func(t *testing.T, r *Registry, base, blob string, data []byte) {
				start := time.Now()
				_, body, err := rawGet(t, r, base, blob, nil)
				// 200 KiB is 7 chunks of 32 KiB: 7 pauses.
				if took := time.Since(start); err != nil || !bytes.Equal(body, data) || took < 7*60*time.Millisecond {
					t.Fatalf("GET: %v, took %v", err, took)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, data, d := faultSetup(t, tt.cfg)
			fnt := r.FaultFront(t, tt.fault)
			if host := r.FaultProxy(t); host == fnt.Host || host == r.Host || !strings.HasPrefix(host, "127.0.0.1:") {
				t.Fatalf("fault proxy host %q (front %q, registry %q)", host, fnt.Host, r.Host)
			}
			if scheme := strings.TrimSuffix(r.URL, r.Host); fnt.URL != scheme+fnt.Host {
				t.Fatalf("fault proxy URL %q, registry URL %q", fnt.URL, r.URL)
			}
			tt.check(t, r, fnt.URL, "/v2/faulty/blobs/"+d.String(), data)
			if len(fnt.Requests()) == 0 || len(r.Requests()) > 0 && tt.name != "IgnoreRange" {
				t.Fatalf("requests: fault proxy %d, registry %d", len(fnt.Requests()), len(r.Requests()))
			}
		})
	}
}

// Without Match, faults leave everything but blob GETs alone.
func TestFaultDefaultMatchIsBlobGet(t *testing.T) {
	t.Parallel()
	r := Start(t, Config{})
	p := r.Push(t, "faulty", "v1", smallImage)
	base := "http://" + r.FaultProxy(t, Fault{Kind: Status, Code: 500})
	blob := "/v2/faulty/blobs/" + p.Layers[0].Digest.String()
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v2/", 200},
		{"GET", "/v2/faulty/manifests/v1", 200},
		{"HEAD", blob, 200},
		{"GET", blob, 500},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, nil)
		req.Header["Accept"] = acceptAll["Accept"]
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: %s, want %d", tt.method, tt.path, resp.Status, tt.status)
		}
	}
}

// TestFaultCutRequest: an upload request loses its connection after Bytes of
// its body, without an answer, and is logged with status 0; other requests pass.
func TestFaultCutRequest(t *testing.T) {
	t.Parallel()
	r := Start(t, Config{})
	front := r.FaultFront(t, Fault{Kind: CutRequest, Bytes: 10})
	client := &http.Client{Transport: r.Transport}

	resp, err := client.Get(front.URL + "/v2/")
	if err != nil {
		t.Fatalf("GET /v2/ through the fault: %v", err)
	}
	resp.Body.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, front.URL+"/v2/cut/blobs/uploads/", bytes.NewReader(make([]byte, 100<<10)))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("POST through CutRequest answered %s, want a cut connection", resp.Status)
	}
	// The log is in the order the handlers returned, which need not be the order sent.
	got := map[string]int{}
	for _, req := range front.Requests() {
		got[req.Method] = req.Status
	}
	if len(got) != 2 || got[http.MethodGet] != http.StatusOK || got[http.MethodPost] != 0 {
		t.Errorf("log %v (method: status), want GET 200 and POST 0", got)
	}
}
