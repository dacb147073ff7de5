package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/fetch/registrytest"
)

var testImage = registrytest.Image{Layers: []registrytest.Layer{
	{Entries: []registrytest.Entry{{Name: "a", Body: []byte("first layer\n")}}, Compression: registrytest.Gzip},
	{Entries: []registrytest.Entry{{Name: "b", Body: []byte("second layer\n")}}, Compression: registrytest.Gzip},
	{Entries: []registrytest.Entry{{Name: "c", Body: []byte("third layer\n")}}, Compression: registrytest.Gzip},
}}

// puller is an http.Client over the transport under test, aimed at one
// registry address (the registry's own or a fault proxy's).
type puller struct {
	client *http.Client
	url    string // "http(s)://127.0.0.1:PORT"
	repo   string
}

func newPuller(r *registrytest.Registry, url, host, repo string, kc Keychain) *puller {
	scopes := []string{"repository:" + repo + ":pull"}
	return &puller{client: &http.Client{Transport: NewTransport(r.Transport, host, scopes, kc)}, url: url, repo: repo}
}

// get fetches /v2/REPO/KIND/REF and checks its digest.
func (p *puller) get(ctx context.Context, kind string, d digest.Digest) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/v2/"+p.repo+"/"+kind+"/"+d.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s %s: %s", kind, d, resp.Status)
	}
	if got := digest.FromBytes(body); got != d {
		return fmt.Errorf("GET %s %s: got %s", kind, d, got)
	}
	return nil
}

// pull fetches the manifest and then every blob of the image.
func (p *puller) pull(ctx context.Context, img registrytest.Pushed) error {
	if err := p.get(ctx, "manifests", img.Digest); err != nil {
		return err
	}
	for d := range img.Blobs {
		if err := p.get(ctx, "blobs", d); err != nil {
			return err
		}
	}
	return nil
}

func countStatus(reqs []registrytest.Request, status int) int {
	n := 0
	for _, r := range reqs {
		if r.Status == status {
			n++
		}
	}
	return n
}

// refreshToken asks the harness's issuer for an OAuth2 refresh token, as
// `docker login` does for registries that hand them out.
func refreshToken(t *testing.T, r *registrytest.Registry) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.TokenRealm+"?service="+r.TokenService+"&offline_token=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(r.User, r.Password)
	resp, err := (&http.Client{Transport: r.Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.RefreshToken == "" {
		t.Fatalf("no refresh token from %s: %s, %v", r.TokenRealm, resp.Status, err)
	}
	return answer.RefreshToken
}

func TestTokenAuth(t *testing.T) {
	t.Parallel()
	const repo = "team/app"
	type registry struct {
		r   *registrytest.Registry
		img registrytest.Pushed
	}
	const private, public, privateTLS = "private", "public", "privateTLS"
	registries := map[string]registry{}
	for name, cfg := range map[string]registrytest.Config{
		private:    {Auth: registrytest.Token},
		public:     {Auth: registrytest.Token, AnonymousPull: true},
		privateTLS: {Auth: registrytest.Token, TLS: true},
	} {
		r := registrytest.Start(t, cfg)
		registries[name] = registry{r: r, img: r.Push(t, repo, "v1", testImage)}
	}

	tests := []struct {
		name     string
		cfg      string // which registry
		cred     func(*registrytest.Registry) Credential
		wantErr  bool     // errors.Is(err, ErrUnauthorized)
		wantText []string // in the error; "HOST" is replaced by the registry host
		wantPOST bool     // the token came from the OAuth2 POST form
	}{
		{name: "RightPassword", cfg: private,
			cred: func(r *registrytest.Registry) Credential { return Credential{Username: r.User, Password: r.Password} }},
		{name: "RightPasswordTLS", cfg: privateTLS,
			cred: func(r *registrytest.Registry) Credential { return Credential{Username: r.User, Password: r.Password} }},
		{name: "RightPasswordAnonymousPullAllowed", cfg: public,
			cred: func(r *registrytest.Registry) Credential { return Credential{Username: r.User, Password: r.Password} }},
		{name: "WrongPassword", cfg: private,
			cred:    func(r *registrytest.Registry) Credential { return Credential{Username: r.User, Password: "wrong"} },
			wantErr: true, wantText: []string{"token server", "refused the user " + "alice", "for HOST", "check the credentials"}},
		{name: "UnknownUser", cfg: public,
			cred:    func(*registrytest.Registry) Credential { return Credential{Username: "mallory", Password: "x"} },
			wantErr: true, wantText: []string{"refused the user mallory", "check the credentials"}},
		{name: "AnonymousPullAllowed", cfg: public,
			cred: func(*registrytest.Registry) Credential { return Credential{} }},
		{name: "AnonymousPullRefused", cfg: private,
			cred:    func(*registrytest.Registry) Credential { return Credential{} },
			wantErr: true, wantText: []string{"pull access denied for HOST/" + repo + ": the repository does not exist or needs credentials"}},
		{name: "IdentityToken", cfg: private,
			cred:     func(r *registrytest.Registry) Credential { return Credential{IdentityToken: refreshToken(t, r)} },
			wantPOST: true},
		{name: "UnknownIdentityToken", cfg: private,
			cred:    func(*registrytest.Registry) Credential { return Credential{IdentityToken: "not-a-refresh-token"} },
			wantErr: true, wantText: []string{"refused the identity token", "check the credentials"}, wantPOST: true},
		{name: "RegistryToken", cfg: private,
			cred: func(r *registrytest.Registry) Credential {
				return Credential{RegistryToken: r.IssueToken(t, "alice", time.Hour, "repository:"+repo+":pull")}
			}},
		{name: "ExpiredRegistryToken", cfg: private,
			cred: func(r *registrytest.Registry) Credential {
				return Credential{RegistryToken: r.IssueToken(t, "alice", -10*time.Minute, "repository:"+repo+":pull")}
			},
			wantErr: true, wantText: []string{"pull access denied for HOST/" + repo + ": check the credentials"}},
		{name: "RegistryTokenForAnotherRepository", cfg: private,
			cred: func(r *registrytest.Registry) Credential {
				return Credential{RegistryToken: r.IssueToken(t, "alice", time.Hour, "repository:other:pull")}
			},
			wantErr: true, wantText: []string{"pull access denied for HOST/" + repo}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := registries[tt.cfg]
			r := reg.r
			cred := tt.cred(r)
			tokensBefore := r.TokenRequests()
			p := newPuller(r, r.URL, r.Host, repo, Static(cred))
			err := p.pull(context.Background(), reg.img)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("pull with %v: %v", cred, err)
				}
			} else {
				if !errors.Is(err, ErrUnauthorized) {
					t.Fatalf("pull with %v = %v, want ErrUnauthorized", cred, err)
				}
				for _, s := range tt.wantText {
					if s = strings.ReplaceAll(s, "HOST", r.Host); !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
			}
			for _, secret := range []string{cred.Password, cred.IdentityToken, cred.RegistryToken} {
				if err != nil && secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a secret", err)
				}
			}
			tokens := r.TokenRequests()[len(tokensBefore):]
			if cred.RegistryToken != "" && len(tokens) != 0 {
				t.Errorf("a registry token was exchanged at the issuer: %d requests", len(tokens))
			}
			if cred.RegistryToken == "" && len(tokens) != 1 {
				t.Errorf("issuer got %d token requests, want 1", len(tokens))
			}
			for _, tok := range tokens {
				if got := tok.Method == http.MethodPost; got != tt.wantPOST {
					t.Errorf("token request %s %s?%s, want POST: %v", tok.Method, tok.Path, tok.Query, tt.wantPOST)
				}
				user, _, basic := (&http.Request{Header: tok.Header}).BasicAuth()
				if basic != (cred.Username != "") || user != cred.Username {
					t.Errorf("token request carried Basic user %q (%v), want %q", user, basic, cred.Username)
				}
			}
		})
	}
}

func TestTokenReusedAcrossRequests(t *testing.T) {
	t.Parallel()
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	img := r.Push(t, "reuse", "v1", testImage)
	p := newPuller(r, r.URL, r.Host, "reuse", Static(Credential{Username: r.User, Password: r.Password}))

	// Cold start: parallel downloads all meet the challenge at once, and share
	// one token fetch.
	const workers = 8
	errs := make(chan error, workers)
	for range workers {
		go func() { errs <- p.pull(context.Background(), img) }()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.TokenRequests()); n != 1 {
		t.Fatalf("%d parallel pulls made %d token requests, want 1", workers, n)
	}

	// Warm: the token goes out pre-emptively, no 401 round trip.
	r.ResetRequests()
	for range 5 {
		if err := p.pull(context.Background(), img); err != nil {
			t.Fatal(err)
		}
	}
	reqs := r.Requests()
	if n := countStatus(reqs, http.StatusUnauthorized); n != 0 {
		t.Errorf("warm pulls met %d 401s, want 0", n)
	}
	for _, req := range reqs {
		if !strings.HasPrefix(req.Header.Get("Authorization"), "Bearer ") {
			t.Errorf("%s %s went without a bearer token", req.Method, req.Path)
		}
	}
	if n := len(r.TokenRequests()); n != 1 {
		t.Errorf("warm pulls fetched tokens again: %d token requests, want 1", n)
	}
}

func TestTokenRenewedWhenExpired(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token, TokenTTL: ttl})
	img := r.Push(t, "renew", "v1", testImage)
	p := newPuller(r, r.URL, r.Host, "renew", Static(Credential{Username: r.User, Password: r.Password}))

	if err := p.get(context.Background(), "manifests", img.Digest); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 500*time.Millisecond)
	if err := p.get(context.Background(), "manifests", img.Digest); err != nil {
		t.Fatal(err)
	}
	// The registry accepts expired tokens for 60 s, so only the issuer's log
	// shows whether the transport renewed on its own.
	if n := len(r.TokenRequests()); n != 2 {
		t.Errorf("%d token requests, want 2 (one renewal after expiry)", n)
	}
	if n := countStatus(r.Requests(), http.StatusUnauthorized); n != 1 {
		t.Errorf("%d 401s, want 1: the renewal should not wait for a refusal", n)
	}
}

func TestTokenRenewedAfterRefusal(t *testing.T) {
	t.Parallel()
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	img := r.Push(t, "refused", "v1", testImage)
	// Once armed, the proxy refuses the next authorized request as a registry
	// that revoked the token would.
	var armed atomic.Bool
	challenge := fmt.Sprintf(`Bearer realm=%q,service=%q,scope="repository:refused:pull"`, r.TokenRealm, r.TokenService)
	front := r.FaultFront(t, registrytest.Fault{
		Kind: registrytest.Status, Code: http.StatusUnauthorized, Times: 1,
		Header: http.Header{"Www-Authenticate": {challenge}},
		Match:  func(req *http.Request) bool { return armed.Load() && req.Header.Get("Authorization") != "" },
	})
	p := newPuller(r, front.URL, front.Host, "refused", Static(Credential{Username: r.User, Password: r.Password}))

	if err := p.get(context.Background(), "manifests", img.Digest); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	if err := p.get(context.Background(), "manifests", img.Digest); err != nil {
		t.Fatalf("after one refusal of a cached token: %v", err)
	}
	if n := len(r.TokenRequests()); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
	reqs := front.Requests()
	var statuses []int
	for _, req := range reqs {
		statuses = append(statuses, req.Status)
	}
	if fmt.Sprint(statuses) != "[401 200 401 200]" {
		t.Fatalf("statuses %v, want [401 200 401 200]", statuses)
	}
	if reqs[2].Header.Get("Authorization") == reqs[3].Header.Get("Authorization") {
		t.Errorf("the refused token was sent again")
	}
}

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Basic})
	img := r.Push(t, "basic", "v1", testImage)
	tests := []struct {
		name     string
		cred     Credential
		wantText string // "" = success
	}{
		{"RightPassword", Credential{Username: r.User, Password: r.Password}, ""},
		{"WrongPassword", Credential{Username: r.User, Password: "wrong"}, "pull access denied for " + r.Host + "/basic: check the credentials"},
		{"NoCredentials", Credential{}, "registry " + r.Host + " asks for a user name and password and none is configured"},
		{"OnlyIdentityToken", Credential{IdentityToken: "x"}, "asks for a user name and password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPuller(r, r.URL, r.Host, "basic", Static(tt.cred))
			before := len(r.Requests())
			err := p.pull(context.Background(), img)
			if tt.wantText == "" {
				if err != nil {
					t.Fatal(err)
				}
				if n := countStatus(r.Requests()[before:], http.StatusUnauthorized); n != 1 {
					t.Errorf("%d 401s, want 1: after the first, Basic goes out pre-emptively", n)
				}
				return
			}
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("pull = %v, want ErrUnauthorized saying %q", err, tt.wantText)
			}
			if tt.cred.Password != "" && strings.Contains(err.Error(), tt.cred.Password) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// authRecorder is another loopback host, standing in for the CDN a blob GET
// redirects to. It serves any blob it is told about and records the
// Authorization headers it receives.
type authRecorder struct {
	blobs map[string][]byte // path → body
	mu    sync.Mutex
	seen  []string
}

func (a *authRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, req.Header.Get("Authorization"))
	a.mu.Unlock()
	body, ok := a.blobs[req.URL.Path]
	if !ok {
		http.NotFound(w, req)
		return
	}
	w.Write(body)
}

func TestCredentialsStayOnHost(t *testing.T) {
	t.Parallel()
	for _, cfg := range []registrytest.Config{{Auth: registrytest.Token}, {Auth: registrytest.Basic}} {
		t.Run(cfg.Auth.String(), func(t *testing.T) {
			t.Parallel()
			r := registrytest.Start(t, cfg)
			img := r.Push(t, "cdn", "v1", testImage)
			cdn := &authRecorder{blobs: map[string][]byte{}}
			for d, b := range img.Blobs {
				cdn.blobs["/blobs/"+d.Encoded()] = b
			}
			// Same IP, another port: Go's http.Client copies an Authorization
			// header onto such a redirect, since it compares host names only.
			other := httptest.NewServer(cdn)
			t.Cleanup(other.Close)
			front := r.FaultFront(t, registrytest.Fault{
				Kind: registrytest.Status, Code: http.StatusTemporaryRedirect,
				Match: func(req *http.Request) bool {
					// Blob GETs the transport authorized go to the CDN; the
					// challenge comes from the registry.
					a := req.Header.Get("Authorization")
					return registrytest.IsBlobGet(req) && a != "" && !strings.Contains(a, "caller-secret")
				},
			})
			// The Location depends on the blob, so the fault proxy only decides
			// *that* it redirects; a wrapper rewrites where.
			kc := Static(Credential{Username: r.User, Password: r.Password})
			tr := NewTransport(r.Transport, front.Host, []string{"repository:cdn:pull"}, kc)
			client := &http.Client{Transport: locationRewriter{tr, other.URL}}

			for d := range img.Blobs {
				req, err := http.NewRequest(http.MethodGet, front.URL+"/v2/cdn/blobs/"+d.String(), nil)
				if err != nil {
					t.Fatal(err)
				}
				// What a careless caller (or Go's redirect code) might carry along.
				req.Header.Set("Authorization", "Bearer caller-secret")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || digest.FromBytes(body) != d {
					t.Fatalf("GET blob %s via redirect: %s", d, resp.Status)
				}
			}
			cdn.mu.Lock()
			defer cdn.mu.Unlock()
			if len(cdn.seen) != len(img.Blobs) {
				t.Fatalf("the other host got %d requests, want %d", len(cdn.seen), len(img.Blobs))
			}
			for _, a := range cdn.seen {
				if a != "" {
					t.Errorf("the other host received Authorization %q", a)
				}
			}
			redirected := 0
			for _, req := range front.Requests() {
				if req.Status == http.StatusTemporaryRedirect {
					redirected++
					if a := req.Header.Get("Authorization"); a == "" || strings.Contains(a, "caller-secret") {
						t.Errorf("registry host got Authorization %q, want the transport's own", a)
					}
				}
			}
			if redirected != len(img.Blobs) {
				t.Errorf("%d redirects, want %d", redirected, len(img.Blobs))
			}
		})
	}
}

// locationRewriter points the fault proxy's bare 307s at the other host.
type locationRewriter struct {
	next  http.RoundTripper
	other string
}

func (l locationRewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTemporaryRedirect {
		i := strings.LastIndex(req.URL.Path, "sha256:")
		resp.Header.Set("Location", l.other+"/blobs/"+req.URL.Path[i+len("sha256:"):])
	}
	return resp, err
}

func TestTokenFetchHonoursContext(t *testing.T) {
	t.Parallel()
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	img := r.Push(t, "hang", "v1", testImage)
	// A token server that never answers.
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(stop) })
	front := r.FaultFront(t, registrytest.Fault{
		Kind: registrytest.Status, Code: http.StatusUnauthorized,
		Header: http.Header{"Www-Authenticate": {`Bearer realm="` + hang.URL + `/token",service="x"`}},
		Match:  func(*http.Request) bool { return true },
	})
	p := newPuller(r, front.URL, front.Host, "hang", Static(Credential{Username: "alice", Password: "secret"}))

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := p.get(ctx, "manifests", img.Digest)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

func TestRequestBodies(t *testing.T) {
	t.Parallel()
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	kc := Static(Credential{Username: r.User, Password: r.Password})
	tests := []struct {
		name     string
		body     func([]byte) io.Reader
		wantPing bool
	}{
		// http.NewRequest sets GetBody for a *bytes.Reader: replay after the 401.
		{"Rewindable", func(b []byte) io.Reader { return bytes.NewReader(b) }, false},
		// No GetBody: the challenge is learned with GET /v2/ first.
		{"OneShot", func(b []byte) io.Reader { return io.NopCloser(bytes.NewReader(b)) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := "upload/" + strings.ToLower(tt.name)
			scopes := []string{"repository:" + repo + ":pull,push"}
			blob := []byte("a blob pushed as " + tt.name + "\n")
			d := digest.FromBytes(blob)

			// Start an upload with one transport...
			starter := &http.Client{Transport: NewTransport(r.Transport, r.Host, scopes, kc)}
			resp, err := starter.Post(r.URL+"/v2/"+repo+"/blobs/uploads/", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, err := resp.Location()
			if resp.StatusCode != http.StatusAccepted || err != nil {
				t.Fatalf("start upload: %s, Location: %v", resp.Status, err)
			}
			q := loc.Query()
			q.Set("digest", d.String())

			// ...and finish it with a fresh one, whose first request meets the
			// challenge while carrying the body.
			client := &http.Client{Transport: NewTransport(r.Transport, r.Host, scopes, kc)}
			before := len(r.Requests())
			req, err := http.NewRequest(http.MethodPut, r.URL+loc.Path+"?"+q.Encode(), tt.body(blob))
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = int64(len(blob))
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err = client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("finish upload: %s", resp.Status)
			}
			pinged := false
			for _, req := range r.Requests()[before:] {
				pinged = pinged || (req.Method == http.MethodGet && req.Path == "/v2/")
			}
			if pinged != tt.wantPing {
				t.Errorf("GET /v2/ sent: %v, want %v", pinged, tt.wantPing)
			}
		})
	}
}

// TestPlainHTTPRealm: a registry whose token realm is plain HTTP on another host never gets the
// credentials sent there, unless the caller allows it (roots --insecure); anonymous requests go.
func TestPlainHTTPRealm(t *testing.T) {
	t.Parallel()
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://realm.example.test/token",service="reg"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	tests := []struct {
		name      string
		cred      Credential
		opts      []Option
		wantRealm bool // a request reaches the realm
	}{
		{"CredentialsRefused", Credential{Username: "bob", Password: "secret"}, nil, false},
		{"IdentityTokenRefused", Credential{IdentityToken: "refresh"}, nil, false},
		{"Anonymous", Credential{}, nil, true},
		{"CredentialsWithInsecure", Credential{Username: "bob", Password: "secret"}, []Option{PlainHTTPRealms()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &realmRecorder{next: http.DefaultTransport, realm: "realm.example.test"}
			tr := NewTransport(base, host, []string{"repository:x:pull"}, Static(tt.cred), tt.opts...)
			req, _ := http.NewRequest(http.MethodGet, reg.URL+"/v2/x/manifests/latest", nil)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if got := base.hits.Load() > 0; got != tt.wantRealm {
				t.Errorf("realm reached: %v, want %v (err %v)", got, tt.wantRealm, err)
			}
			if !tt.wantRealm && !errors.Is(err, ErrPlainRealm) {
				t.Errorf("error %v, want ErrPlainRealm", err)
			}
		})
	}
}

// realmRecorder counts requests to the realm host and answers them 503 itself.
type realmRecorder struct {
	next  http.RoundTripper
	realm string
	hits  atomic.Int32
}

func (r *realmRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Hostname() == r.realm {
		r.hits.Add(1)
		return nil, errors.New("realm reached")
	}
	return r.next.RoundTrip(req)
}
