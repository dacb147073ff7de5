package registrytest

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

var smallImage = Image{Layers: []Layer{{Entries: []Entry{
	{Name: "etc/", Type: '5'},
	{Name: "etc/hostname", Body: []byte("registrytest\n")},
}}}}

func TestStartServesEveryAuthMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       Config
		challenge string // WWW-Authenticate prefix of an anonymous GET /v2/; "" = no challenge
	}{
		{"Anonymous", Config{}, ""},
		{"AnonymousTLS", Config{TLS: true}, ""},
		{"Basic", Config{Auth: Basic}, "Basic "},
		{"BasicTLS", Config{Auth: Basic, TLS: true}, "Basic "},
		{"Token", Config{Auth: Token}, "Bearer "},
		{"TokenTLS", Config{Auth: Token, TLS: true}, "Bearer "},
		{"TokenAnonymousPull", Config{Auth: Token, AnonymousPull: true}, "Bearer "},
		{"BasicManyUsers", Config{Auth: Basic, Users: map[string]string{"bob": "b0b", "carol": "c4r0l"}}, "Basic "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := Start(t, tt.cfg)
			wantScheme := "http://"
			if tt.cfg.TLS {
				wantScheme = "https://"
			}
			if r.URL != wantScheme+r.Host || !strings.HasPrefix(r.Host, "127.0.0.1:") {
				t.Fatalf("Host %q URL %q", r.Host, r.URL)
			}
			if tt.cfg.Auth != Anonymous && (r.User == "" || r.Users[r.User] != r.Password) {
				t.Fatalf("credential %q/%q not among %v", r.User, r.Password, r.Users)
			}
			p := r.Push(t, "lib/small", "v1", smallImage)

			anon := &client{t: t, r: r, base: r.URL}
			resp, _ := anon.send(http.MethodGet, "/v2/", nil)
			got := resp.Header.Get("WWW-Authenticate")
			if tt.challenge == "" && resp.StatusCode != http.StatusOK {
				t.Fatalf("anonymous GET /v2/: %s", resp.Status)
			}
			if tt.challenge != "" && (resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(got, tt.challenge)) {
				t.Fatalf("anonymous GET /v2/: %s, WWW-Authenticate %q, want %q...", resp.Status, got, tt.challenge)
			}
			if tt.cfg.Auth == Token {
				c := challenge(got)
				if c["realm"] != r.TokenRealm || c["service"] != r.TokenService {
					t.Fatalf("challenge %q, want realm %s service %s", got, r.TokenRealm, r.TokenService)
				}
			}

			resp, body := newClient(t, r).get("/v2/lib/small/manifests/v1", acceptAll)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET manifest: %s: %s", resp.Status, body)
			}
			if d := resp.Header.Get("Docker-Content-Digest"); d != p.Digest.String() || digest.FromBytes(body) != p.Digest {
				t.Fatalf("manifest digest %s (header %s), pushed %s", digest.FromBytes(body), d, p.Digest)
			}

			resp, _ = anon.get("/v2/lib/small/manifests/v1", acceptAll)
			wantAnon := http.StatusUnauthorized
			if tt.cfg.Auth == Anonymous || tt.cfg.AnonymousPull {
				wantAnon = http.StatusOK
			}
			if resp.StatusCode != wantAnon {
				t.Fatalf("anonymous GET manifest: %s, want %d", resp.Status, wantAnon)
			}
		})
	}
}

func TestCAFileIsTheTrustOfTheTLSEndpoint(t *testing.T) {
	t.Parallel()
	r := Start(t, Config{TLS: true})
	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CAFile %s holds no certificate", r.CAFile)
	}
	for _, host := range []string{r.Host, strings.Replace(r.Host, "127.0.0.1", "localhost", 1)} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + host + "/v2/")
		if err != nil {
			t.Fatalf("GET https://%s/v2/ trusting only CAFile: %v", host, err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
	}
	if _, err := http.Get(r.URL + "/v2/"); err == nil {
		t.Fatal("the system trust accepted the test CA's certificate")
	}
}

func TestRequestsLogWhatTheFrontReceived(t *testing.T) {
	t.Parallel()
	r := Start(t, Config{Auth: Basic})
	r.Push(t, "a/b", "latest", smallImage)
	if got := r.Requests(); len(got) != 0 {
		t.Fatalf("Push shows in Requests: %+v", got)
	}
	c := newClient(t, r)
	c.get("/v2/", http.Header{"User-Agent": {"registrytest-check"}})
	c.get("/v2/a/b/manifests/latest", acceptAll)
	c.get("/v2/a/b/manifests/nope", acceptAll)
	(&client{t: t, r: r, base: r.URL}).get("/v2/", nil)

	want := []Request{
		{Method: "GET", Path: "/v2/", Status: 200},
		{Method: "GET", Path: "/v2/a/b/manifests/latest", Status: 200},
		{Method: "GET", Path: "/v2/a/b/manifests/nope", Status: 404},
		{Method: "GET", Path: "/v2/", Status: 401},
	}
	got := r.Requests()
	if len(got) != len(want) {
		t.Fatalf("got %d requests, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Method != want[i].Method || got[i].Path != want[i].Path || got[i].Status != want[i].Status {
			t.Errorf("request %d: %s %s %d, want %s %s %d", i, got[i].Method, got[i].Path, got[i].Status, want[i].Method, want[i].Path, want[i].Status)
		}
	}
	if ua := got[0].Header.Get("User-Agent"); ua != "registrytest-check" {
		t.Errorf("logged User-Agent %q", ua)
	}
	if got[1].Header.Get("Authorization") == "" || got[3].Header.Get("Authorization") != "" {
		t.Errorf("logged Authorization headers wrong: %q, %q", got[1].Header.Get("Authorization"), got[3].Header.Get("Authorization"))
	}
	r.ResetRequests()
	if n := len(r.Requests()); n != 0 {
		t.Fatalf("%d requests after ResetRequests", n)
	}
}

// An upload through a front must continue through the same front: the
// registry's Location headers have to name it, not the registry process.
func TestUploadLocationPointsAtTheFront(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{}, {Auth: Token, TLS: true}} {
		r := Start(t, cfg)
		fault := r.FaultFront(t)
		for _, base := range []string{r.URL, fault.URL} {
			c := newClient(t, r)
			c.base = base
			resp, body := c.do(http.MethodPost, "/v2/up/load/blobs/uploads/", nil)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST upload via %s: %s: %s", base, resp.Status, body)
			}
			loc := resp.Header.Get("Location")
			if !strings.HasPrefix(loc, base+"/v2/up/load/blobs/uploads/") {
				t.Fatalf("upload Location %q via %s", loc, base)
			}
		}
	}
}
