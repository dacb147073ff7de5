package fetch

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/fetch/registrytest"
)

func TestPushBlob(t *testing.T) {
	tests := []struct {
		name string
		cfg  registrytest.Config
	}{
		{"Anonymous", registrytest.Config{}},
		{"Basic", registrytest.Config{Auth: registrytest.Basic}},
		{"Token", registrytest.Config{Auth: registrytest.Token}},
		{"TokenOverTLS", registrytest.Config{Auth: registrytest.Token, TLS: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registrytest.Start(t, tt.cfg)
			c := newTestClient(t, r, credentials(t, r))
			repo := mustRef(t, r.Host+"/pushed/app")
			data, desc := newBlob(300_000, 1)

			ok, err := c.BlobExists(t.Context(), repo, desc.Digest)
			if err != nil || ok {
				t.Fatalf("BlobExists before the push = %v, %v; want false", ok, err)
			}
			r.ResetRequests()
			var opens atomic.Int64
			if err := c.PushBlob(t.Context(), repo, desc, opener(data, &opens), UploadOptions{}); err != nil {
				t.Fatal(err)
			}
			log := r.Requests()
			checkLog(t, log, "POST 202", "PUT 201")
			for _, req := range log {
				if req.Method == http.MethodPut && !strings.Contains(req.Query, "digest="+url.QueryEscape(desc.Digest.String())) {
					t.Errorf("PUT query %q names no digest %s", req.Query, desc.Digest)
				}
			}
			if opens.Load() != 1 {
				t.Errorf("the blob was opened %d times, want 1", opens.Load())
			}
			checkStored(t, c, repo, desc, data)
		})
	}
}

func TestPushBlobChunked(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	tests := []struct {
		name  string
		size  int
		chunk int64
		want  []string
	}{
		{"SmallChunks", 300_000, 64 << 10, []string{"POST 202",
			"PATCH 0-65535 202", "PATCH 65536-131071 202", "PATCH 131072-196607 202", "PATCH 196608-262143 202", "PATCH 262144-299999 202",
			"PUT 201"}},
		{"ChunkLargerThanBlob", 300_000, 1 << 20, []string{"POST 202", "PATCH 0-299999 202", "PUT 201"}},
		{"ExactChunks", 3 * 1000, 1000, []string{"POST 202", "PATCH 0-999 202", "PATCH 1000-1999 202", "PATCH 2000-2999 202", "PUT 201"}},
		{"EmptyBlob", 0, 64 << 10, []string{"POST 202", "PUT 201"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, r, nil)
			repo := mustRef(t, r.Host+"/chunked/"+strings.ToLower(tt.name))
			data, desc := newBlob(tt.size, byte(10+i))
			r.ResetRequests()
			var opens atomic.Int64
			if err := c.PushBlob(t.Context(), repo, desc, opener(data, &opens), UploadOptions{ChunkSize: tt.chunk}); err != nil {
				t.Fatal(err)
			}
			log := r.Requests()
			checkLog(t, log, tt.want...)
			for _, req := range log {
				switch req.Method {
				case http.MethodPatch:
					if ct := req.Header.Get("Content-Type"); ct != "application/octet-stream" {
						t.Errorf("PATCH Content-Type %q", ct)
					}
				case http.MethodPut:
					if cl := req.Header.Get("Content-Length"); tt.size > 0 && cl != "0" {
						t.Errorf("closing PUT has Content-Length %q, want 0", cl)
					}
				}
			}
			checkStored(t, c, repo, desc, data)
		})
	}
}

// TestPushBlobChunkMinLength: a registry that announces OCI-Chunk-Min-Length
// gets chunks of that size, and the larger of it and ChunkSize. The header is
// added by a proxy in front of the registry; the registry's Locations point
// past the proxy, to its own address (another host for the client).
func TestPushBlobChunkMinLength(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	host := answerProxy(t, r, func(resp *http.Response) {
		if resp.Request.Method == http.MethodPost {
			resp.Header.Set("OCI-Chunk-Min-Length", "100000")
		}
	})
	for _, chunk := range []int64{0, 50_000, 150_000} {
		t.Run("ChunkSize"+strconv.FormatInt(chunk, 10), func(t *testing.T) {
			c := newTestClient(t, r, nil)
			repo := mustRef(t, host+"/minlength/app")
			data, desc := newBlob(250_000, byte(chunk>>10))
			r.ResetRequests()
			var opens atomic.Int64
			if err := c.PushBlob(t.Context(), repo, desc, opener(data, &opens), UploadOptions{ChunkSize: chunk}); err != nil {
				t.Fatal(err)
			}
			want := []string{"POST 202", "PATCH 0-99999 202", "PATCH 100000-199999 202", "PATCH 200000-249999 202", "PUT 201"}
			if chunk > 100_000 {
				want = []string{"POST 202", "PATCH 0-149999 202", "PATCH 150000-249999 202", "PUT 201"}
			}
			checkLog(t, r.Requests(), want...)
			checkStored(t, c, mustRef(t, r.Host+"/minlength/app"), desc, data)
		})
	}
}

// answerProxy is a proxy in front of r (anonymous) that lets modify change
// the registry's answers. It returns the proxy's host. The registry's
// Locations point past it, to r's own address.
func answerProxy(t *testing.T, r *registrytest.Registry, modify func(*http.Response)) string {
	backend, _ := url.Parse(r.URL)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(backend) },
		Transport: r.Transport,
		ModifyResponse: func(resp *http.Response) error {
			modify(resp)
			return nil
		},
	})
	t.Cleanup(proxy.Close)
	return strings.TrimPrefix(proxy.URL, "http://")
}

// TestPushChecksStoredDigest: a Docker-Content-Digest that is not the
// content's fails the push, of a blob and of a manifest.
func TestPushChecksStoredDigest(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	lie := digest.FromString("something else")
	var host string
	host = answerProxy(t, r, func(resp *http.Response) {
		if resp.StatusCode == http.StatusCreated {
			resp.Header.Set("Docker-Content-Digest", lie.String())
		}
		// Keep the upload session on the proxy, so that it answers the PUT.
		if loc := resp.Header.Get("Location"); loc != "" {
			resp.Header.Set("Location", strings.Replace(loc, r.Host, host, 1))
		}
	})
	data, desc := newBlob(1000, 7)
	r.PushBlob(t, "lie/source", data)
	var opens atomic.Int64
	err := newTestClient(t, r, nil).PushBlob(t.Context(), mustRef(t, host+"/lie/blob"), desc, opener(data, &opens), UploadOptions{})
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), lie.String()) || opens.Load() != 1 {
		t.Errorf("PushBlob answered with digest %s: %v (%d opens); want ErrDigestMismatch naming it, no retry", lie, err, opens.Load())
	}
	mounted, err := newTestClient(t, r, nil).MountBlob(t.Context(), mustRef(t, host+"/lie/other"), desc.Digest, "lie/source")
	if !errors.Is(err, ErrDigestMismatch) || mounted {
		t.Errorf("MountBlob answered with digest %s: %v, %v; want ErrDigestMismatch", lie, mounted, err)
	}
	_, err = newTestClient(t, r, nil).PushManifest(t.Context(), mustRef(t, host+"/lie/blob:v1"), ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), lie.String()) {
		t.Errorf("PushManifest answered with digest %s: %v; want ErrDigestMismatch naming it", lie, err)
	}
}

// TestPushBlobLocations: an upload follows the registry's Locations when they
// are relative, refuses a plain HTTP one off loopback, and sends no credential
// to a Location on another host (the registry behind the proxy refuses the
// unauthenticated PUT).
func TestPushBlobLocations(t *testing.T) {
	data, desc := newBlob(200_000, 8)

	t.Run("Relative", func(t *testing.T) {
		r := registrytest.Start(t, registrytest.Config{})
		host := answerProxy(t, r, func(resp *http.Response) {
			if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Host != "" {
				resp.Header.Set("Location", loc.RequestURI())
			}
		})
		var opens atomic.Int64
		c := newTestClient(t, r, nil)
		if err := c.PushBlob(t.Context(), mustRef(t, host+"/relative/app"), desc, opener(data, &opens), UploadOptions{ChunkSize: 64 << 10}); err != nil {
			t.Fatal(err)
		}
		checkLog(t, r.Requests(), "POST 202", "PATCH 0-65535 202", "PATCH 65536-131071 202", "PATCH 131072-196607 202", "PATCH 196608-199999 202", "PUT 201")
		checkStored(t, c, mustRef(t, r.Host+"/relative/app"), desc, data)
	})

	t.Run("PlainHTTPElsewhereRefused", func(t *testing.T) {
		r := registrytest.Start(t, registrytest.Config{})
		host := answerProxy(t, r, func(resp *http.Response) {
			if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Host != "" {
				loc.Scheme, loc.Host = "http", "uploads.example.invalid"
				resp.Header.Set("Location", loc.String())
			}
		})
		var opens atomic.Int64
		err := newTestClient(t, r, nil).PushBlob(t.Context(), mustRef(t, host+"/plain/app"), desc, opener(data, &opens), UploadOptions{})
		if !errors.Is(err, ErrPlainHTTP) || opens.Load() != 0 {
			t.Fatalf("PushBlob with a plain HTTP Location off loopback: %v (%d opens); want ErrPlainHTTP before the blob is opened", err, opens.Load())
		}
	})

	t.Run("OtherHostGetsNoCredentials", func(t *testing.T) {
		r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Basic})
		host := answerProxy(t, r, func(*http.Response) {})
		var opens atomic.Int64
		err := newTestClient(t, r, credentials(t, r)).PushBlob(t.Context(), mustRef(t, host+"/elsewhere/app"), desc, opener(data, &opens), UploadOptions{})
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("PushBlob with a Location on another host: %v; want the registry's refusal", err)
		}
		log := r.Requests()
		checkLog(t, log, "POST 202")
		puts := 0
		for _, req := range log {
			if req.Method == http.MethodPut {
				puts++
				if req.Header.Get("Authorization") != "" || req.Status != http.StatusUnauthorized {
					t.Errorf("the PUT to another host carried Authorization %q and got %d", req.Header.Get("Authorization"), req.Status)
				}
			}
		}
		if puts != 1 {
			t.Errorf("%d PUTs reached the registry, want 1:%s", puts, requests(log))
		}
	})
}

// TestPushBlobRetriesSession: a session that fails is started again from a
// new POST and a new open, never resumed.
func TestPushBlobRetriesSession(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Basic})
	isPut := func(req *http.Request) bool { return req.Method == http.MethodPut }
	isPatch := func(from string) func(*http.Request) bool {
		return func(req *http.Request) bool {
			return req.Method == http.MethodPatch && strings.HasPrefix(req.Header.Get("Content-Range"), from+"-")
		}
	}
	tests := []struct {
		name  string
		chunk int64
		fault registrytest.Fault
		want  []string
	}{
		{
			name:  "CutPut",
			fault: registrytest.Fault{Kind: registrytest.CutRequest, Bytes: 100_000, Times: 1, Match: isPut},
			want:  []string{"POST 202", "PUT 0", "POST 202", "PUT 201"},
		},
		{
			name:  "CutPost",
			fault: registrytest.Fault{Kind: registrytest.CutRequest, Times: 1},
			want:  []string{"POST 0", "POST 202", "PUT 201"},
		},
		{
			name:  "CutSecondPatch",
			chunk: 100_000,
			fault: registrytest.Fault{Kind: registrytest.CutRequest, Bytes: 50_000, Times: 1, Match: isPatch("100000")},
			want: []string{"POST 202", "PATCH 0-99999 202", "PATCH 100000-199999 0",
				"POST 202", "PATCH 0-99999 202", "PATCH 100000-199999 202", "PATCH 200000-299999 202", "PUT 201"},
		},
		{
			name:  "ServiceUnavailableOnPut",
			fault: registrytest.Fault{Kind: registrytest.Status, Code: 503, Times: 1, Match: isPut},
			want:  []string{"POST 202", "PUT 503", "POST 202", "PUT 201"},
		},
		{
			name:  "RangeNotSatisfiable",
			chunk: 150_000,
			fault: registrytest.Fault{Kind: registrytest.Status, Code: 416, Times: 1, Match: isPatch("150000")},
			want: []string{"POST 202", "PATCH 0-149999 202", "PATCH 150000-299999 416",
				"POST 202", "PATCH 0-149999 202", "PATCH 150000-299999 202", "PUT 201"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := r.FaultFront(t, tt.fault)
			c := newTestClient(t, r, credentials(t, r))
			repo := mustRef(t, front.Host+"/retry/"+strings.ToLower(tt.name))
			data, desc := newBlob(300_000, byte(20+i))
			var opens atomic.Int64
			if err := c.PushBlob(t.Context(), repo, desc, opener(data, &opens), UploadOptions{ChunkSize: tt.chunk}); err != nil {
				t.Fatal(err)
			}
			checkLog(t, settledLog(front.Requests, len(tt.want)), tt.want...)
			if want := int64(strings.Count(strings.Join(tt.want, ","), "POST 202")); opens.Load() != want {
				t.Errorf("the blob was opened %d times, want %d (once per session)", opens.Load(), want)
			}
			checkStored(t, c, repo, desc, data)
		})
	}
}

// TestPushBlobTokenRefusedMidSession: a registry that refuses the token in
// the middle of a session (it expired) gets a new token and a new session: the
// body already sent is not replayed.
func TestPushBlobTokenRefusedMidSession(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	challenge := `Bearer realm="` + r.TokenRealm + `",service="` + r.TokenService + `",scope="repository:expired/app:pull,push"`
	front := r.FaultFront(t, registrytest.Fault{Kind: registrytest.Status, Code: 401, Times: 1,
		Header: http.Header{"Www-Authenticate": {challenge}},
		Match: func(req *http.Request) bool {
			return req.Method == http.MethodPut && req.Header.Get("Authorization") != ""
		}})
	c := newTestClient(t, r, credentials(t, r))
	repo := mustRef(t, front.Host+"/expired/app")
	data, desc := newBlob(100_000, 11)
	var opens atomic.Int64
	if err := c.PushBlob(t.Context(), repo, desc, opener(data, &opens), UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	log := settledLog(front.Requests, 4)
	checkLog(t, log, "POST 202", "POST 202", "PUT 201")
	if opens.Load() != 2 {
		t.Errorf("the blob was opened %d times, want 2 (once per session)", opens.Load())
	}
	checkStored(t, c, repo, desc, data)
}

// TestPushBlobGivesUp: uploads that always fail end with a clear error after
// Options.Retries sessions, in bounded time.
func TestPushBlobGivesUp(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	data, desc := newBlob(300_000, 4)

	t.Run("CutEveryTime", func(t *testing.T) {
		front := r.FaultFront(t, registrytest.Fault{Kind: registrytest.CutRequest, Bytes: 1000, Match: func(req *http.Request) bool { return req.Method == http.MethodPut }})
		c := New(Options{Transport: r.Transport, Retries: 3, Backoff: 5 * time.Millisecond})
		repo := mustRef(t, front.Host+"/giveup/cut")
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		var opens atomic.Int64
		err := c.PushBlob(ctx, repo, desc, opener(data, &opens), UploadOptions{})
		if err == nil || ctx.Err() != nil {
			t.Fatalf("PushBlob = %v (context: %v); want an error before the deadline", err, ctx.Err())
		}
		t.Log(err)
		for _, part := range []string{"push blob " + desc.Digest.String(), repo.Name(), "3 attempts"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q does not say %q", err, part)
			}
		}
		if opens.Load() != 3 {
			t.Errorf("the blob was opened %d times, want 3", opens.Load())
		}
		checkLog(t, settledLog(front.Requests, 6), "POST 202", "PUT 0", "POST 202", "PUT 0", "POST 202", "PUT 0")
	})

	t.Run("StalledStream", func(t *testing.T) {
		c := New(Options{Transport: r.Transport, Retries: 2, Backoff: 5 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
		repo := mustRef(t, r.Host+"/giveup/stall")
		start := time.Now()
		var opens atomic.Int64
		err := c.PushBlob(t.Context(), repo, desc, func(context.Context) (io.ReadCloser, error) {
			opens.Add(1)
			return &stallingReader{data: data[:1000], closed: make(chan struct{})}, nil
		}, UploadOptions{})
		if !errors.Is(err, ErrStalled) {
			t.Fatalf("PushBlob of a stream that stalls: %v; want ErrStalled", err)
		}
		t.Log(err)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("gave up after %v", d)
		}
		if opens.Load() != 2 {
			t.Errorf("the blob was opened %d times, want 2", opens.Load())
		}
	})

	t.Run("Denied", func(t *testing.T) {
		token := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
		basic := registrytest.Start(t, registrytest.Config{Auth: registrytest.Basic})
		forbidden := r.FaultFront(t, registrytest.Fault{Kind: registrytest.Status, Code: 403, Match: registrytest.IsUpload})
		tests := []struct {
			name string
			r    *registrytest.Registry
			host string
			kc   auth.Keychain
			want string // besides the repository's name
		}{
			{"TokenAnonymous", token, token.Host, nil, "push access denied for "},
			{"TokenWrongPassword", token, token.Host, keychain(t, token.User, "wrong"), "refused the user " + token.User},
			{"BasicWrongPassword", basic, basic.Host, keychain(t, basic.User, "wrong"), "push access denied for "},
			{"Forbidden", r, forbidden.Host, nil, "push access denied for "},
		}
		for _, tt := range tests {
			c := newTestClient(t, tt.r, tt.kc)
			repo := mustRef(t, tt.host+"/giveup/denied")
			var opens atomic.Int64
			err := c.PushBlob(t.Context(), repo, desc, opener(data, &opens), UploadOptions{})
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), repo.Name()) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: PushBlob = %v; want ErrUnauthorized naming %s and saying %q", tt.name, err, repo.Name(), tt.want)
			}
			t.Logf("%s: %v", tt.name, err)
			if opens.Load() != 0 {
				t.Errorf("%s: the blob was opened %d times, want 0", tt.name, opens.Load())
			}
		}
	})
}

// TestPushBlobRegistryStops: a registry that stops reading an upload, or
// never answers it, ends the session with ErrStalled instead of hanging. The
// registry sits behind a proxy that holds every PUT without reading it, so a
// large body fills the socket buffers and a small one waits for an answer.
func TestPushBlobRegistryStops(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	backend, _ := url.Parse(r.URL)
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(backend) },
		Transport: r.Transport,
		ModifyResponse: func(resp *http.Response) error { // the session's requests come back here
			if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Host != "" {
				resp.Header.Set("Location", loc.RequestURI())
			}
			return nil
		},
	}
	release := make(chan struct{})
	var puts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPut {
			proxy.ServeHTTP(w, req)
			return
		}
		puts.Add(1)
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets the held PUTs end
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, size := range []int{300_000, 32 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			puts.Store(0)
			data, desc := newBlob(size, 9)
			c := New(Options{Transport: r.Transport, Retries: 2, Backoff: time.Millisecond, IdleTimeout: 300 * time.Millisecond})
			start := time.Now()
			var opens atomic.Int64
			err := c.PushBlob(t.Context(), mustRef(t, host+"/stops/app"), desc, opener(data, &opens), UploadOptions{})
			if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), host) {
				t.Fatalf("PushBlob to a registry that holds the PUT: %v; want ErrStalled naming %s", err, host)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("gave up after %v", d)
			}
			if puts.Load() != 2 || opens.Load() != 2 {
				t.Errorf("%d PUTs from %d opens, want 2 of each (one per session)", puts.Load(), opens.Load())
			}
		})
	}
}

// stallingReader sends data, then blocks until it is closed.
type stallingReader struct {
	data   []byte
	closed chan struct{}
	once   atomic.Bool
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if len(s.data) > 0 {
		n := copy(p, s.data)
		s.data = s.data[n:]
		return n, nil
	}
	<-s.closed
	return 0, errors.New("closed")
}

func (s *stallingReader) Close() error {
	if s.once.CompareAndSwap(false, true) {
		close(s.closed)
	}
	return nil
}

// TestPushBlobRefusesWrongContent: bytes that are not the descriptor's fail
// once, with the error that says so, and are not retried.
func TestPushBlobRefusesWrongContent(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	data, desc := newBlob(200_000, 5)
	other, _ := newBlob(200_000, 6)
	tests := []struct {
		name  string
		body  []byte
		chunk int64
		want  error
		log   []string // nil: not checked
	}{
		{"OtherBytes", other, 0, ErrDigestMismatch, []string{"POST 202", "PUT 400"}},
		{"OtherBytesChunked", other, 128 << 10, ErrDigestMismatch, []string{"POST 202", "PATCH 0-131071 202", "PATCH 131072-199999 202", "PUT 400"}},
		// A request whose body ends early may or may not reach the registry's log
		// (as a 502): the log is not checked; BlobExists is. A longer stream fails
		// before its last bytes go out, so the registry never has a whole blob.
		{"Shorter", data[:150_000], 0, ErrSizeMismatch, nil},
		{"ShorterChunked", data[:150_000], 128 << 10, ErrSizeMismatch, nil},
		{"Longer", append(slices.Clone(data), 'x'), 0, ErrSizeMismatch, nil},
		{"LongerChunked", append(slices.Clone(data), 'x'), 128 << 10, ErrSizeMismatch, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, r, nil)
			repo := mustRef(t, r.Host+"/wrong/"+strings.ToLower(tt.name))
			r.ResetRequests()
			var opens atomic.Int64
			err := c.PushBlob(t.Context(), repo, desc, opener(tt.body, &opens), UploadOptions{ChunkSize: tt.chunk})
			if !errors.Is(err, tt.want) {
				t.Fatalf("PushBlob = %v; want %v", err, tt.want)
			}
			t.Log(err)
			if want := strings.TrimPrefix(tt.want.Error(), "fetch: "); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), desc.Digest.String()) {
				t.Errorf("error %q does not say %q and name %s", err, want, desc.Digest)
			}
			if opens.Load() != 1 {
				t.Errorf("the blob was opened %d times, want 1 (no retry)", opens.Load())
			}
			if tt.log != nil {
				checkLog(t, r.Requests(), tt.log...)
			}
			if ok, err := c.BlobExists(t.Context(), repo, desc.Digest); err != nil || ok {
				t.Errorf("BlobExists after a refused upload = %v, %v", ok, err)
			}
		})
	}
}
