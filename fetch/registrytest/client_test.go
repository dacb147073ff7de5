package registrytest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// client is the least a registry client needs, written out plainly so the
// tests check the harness with the protocol, not with roots' own client.
type client struct {
	t          *testing.T
	r          *Registry
	base       string // front to talk to
	user, pass string // "" = anonymous
	token      string // Bearer token, once fetched
}

// newClient talks to r's address with r's credential.
func newClient(t *testing.T, r *Registry) *client {
	return &client{t: t, r: r, base: r.URL, user: r.User, pass: r.Password}
}

func (c *client) get(path string, hdr http.Header) (*http.Response, []byte) {
	c.t.Helper()
	return c.do(http.MethodGet, path, hdr)
}

// do sends one request, answering a Bearer challenge once.
func (c *client) do(method, path string, hdr http.Header) (*http.Response, []byte) {
	c.t.Helper()
	resp, body := c.send(method, path, hdr)
	if resp.StatusCode == http.StatusUnauthorized && c.r.cfg.Auth == Token && c.token == "" {
		c.token = c.fetchToken(resp.Header.Get("WWW-Authenticate"))
		resp, body = c.send(method, path, hdr)
	}
	return resp, body
}

func (c *client) send(method, path string, hdr http.Header) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.r.cfg.Auth == Basic && c.user != "":
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := (&http.Client{Transport: c.r.Transport}).Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, body
}

var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

// challenge parses `Bearer realm="..",service="..",scope=".."`.
func challenge(h string) map[string]string {
	out := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(h, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func (c *client) fetchToken(wwwAuth string) string {
	c.t.Helper()
	if !strings.HasPrefix(wwwAuth, "Bearer ") {
		c.t.Fatalf("challenge %q is not Bearer", wwwAuth)
	}
	p := challenge(wwwAuth)
	q := url.Values{"service": {p["service"]}}
	if p["scope"] != "" {
		q.Set("scope", p["scope"])
	}
	req, err := http.NewRequestWithContext(c.t.Context(), http.MethodGet, p["realm"]+"?"+q.Encode(), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := (&http.Client{Transport: c.r.Transport}).Do(req)
	if err != nil {
		c.t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var tr struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("token: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		c.t.Fatalf("token: %v", err)
	}
	return tr.Token
}

// jwtClaims decodes a token's claims without checking it.
func jwtClaims(t *testing.T, tok string) claims {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// acceptAll is an Accept header for every manifest type the harness pushes.
var acceptAll = http.Header{"Accept": {
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
	MediaTypeDockerManifest,
	MediaTypeDockerManifestList,
}}
