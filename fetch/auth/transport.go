package auth

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// NewTransport returns a RoundTripper that authenticates requests to one
// registry host ("127.0.0.1:5000", "registry-1.docker.io"; Docker Hub's aliases
// count as one host) with the credential kc has for it. A nil base means
// http.DefaultTransport; a nil kc means anonymous.
//
// Requests first go out as they are (or with a token already fetched). A 401
// is answered by the challenge in WWW-Authenticate:
//   - Bearer: a token is fetched from the realm for the service and the scope
//     set (scopes, e.g. "repository:library/debian:pull", plus any scope a
//     challenge asked for), sending the credential to the realm: Basic for a
//     user name and password, an OAuth2 refresh_token POST for an identity
//     token; a RegistryToken is used as the token itself. Tokens are cached per
//     realm, service and scope set, presented pre-emptively to later requests,
//     renewed shortly before they expire and after a 401, and fetched once
//     however many requests need one at the same time.
//   - Basic: the user name and password are sent with every request.
//
// The request is then sent once more. A GET or HEAD is simply resent; a request
// with a body needs req.GetBody (http.NewRequest sets it for in-memory bodies),
// and one without it is preceded by a GET /v2/ that learns the challenge.
//
// When the registry or its token server still refuses, RoundTrip returns an
// error wrapping ErrUnauthorized that names the host and repository and hints
// at the flags to fix it, rather than the 401 response.
//
// Credentials and tokens never leave host: a request to any other host (the
// CDN or object store a blob GET redirects to) goes out with its Authorization
// header removed, including one the http.Client copied onto the redirect. The
// token realm is the only other host that sees the credential, as with docker.
//
// A credential goes to a token realm over plain HTTP only when the realm is on loopback, or with
// the PlainHTTPRealms option (roots --insecure); otherwise the token request fails with
// ErrPlainRealm before anything is sent. Anonymous token requests go anywhere.
func NewTransport(base http.RoundTripper, host string, scopes []string, kc Keychain, opts ...Option) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if kc == nil {
		kc = Static(Credential{})
	}
	t := &transport{
		base:   base,
		host:   strings.ToLower(host),
		kc:     kc,
		realm:  &http.Client{Transport: base, CheckRedirect: realmRedirect},
		scopes: addScopes(nil, scopes...),
		tokens: map[string]token{},
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// An Option changes what NewTransport makes.
type Option func(*transport)

// PlainHTTPRealms lets credentials go to a token realm over plain HTTP on any host, for networks
// the user says are trusted (roots --insecure).
func PlainHTTPRealms() Option { return func(t *transport) { t.plainRealms = true } }

// Repository names the repository on host the transport is for ("org/repo"),
// so that a RepositoryKeychain can answer with a credential filed under that
// repository or one of its namespaces rather than the host's.
func Repository(name string) Option { return func(t *transport) { t.repo = name } }

type transport struct {
	base        http.RoundTripper
	host        string
	kc          Keychain
	realm       *http.Client // talks to token realms; redirects keep credentials on one host
	plainRealms bool         // credentials may go to a realm over plain HTTP on any host
	repo        string       // the repository on host, or "" (see Repository)

	mu        sync.Mutex
	scopes    []string   // sorted, unique: asked for plus learned from challenges
	challenge *Challenge // the registry's last challenge; nil until its first 401
	tokens    map[string]token
	flights   flight[token]
}

// sent describes the authorization a request went out with.
type sent struct {
	scheme    string // "" (none), "bearer" or "basic"
	token     string // the bearer token
	anonymous bool   // no credential was behind it
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.isHost(req.URL) {
		return t.base.RoundTrip(withoutAuthorization(req))
	}
	ctx := req.Context()
	if !replayable(req) && t.currentChallenge() == nil {
		if err := t.ping(ctx, req.URL); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	first, s, err := t.authorize(ctx, req, "")
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base.RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	ch, err := t.learn(resp)
	if err != nil {
		return nil, err
	}
	if s.scheme == "basic" && ch.Scheme == "basic" {
		return nil, t.denied(req, s) // the same user and password would fail again
	}
	if !replayable(req) {
		return nil, fmt.Errorf("%s %s: registry asked for credentials again and the request body cannot be replayed: %w",
			req.Method, req.URL.Redacted(), ErrUnauthorized)
	}
	retry, s, err := t.authorize(ctx, req, s.token)
	if err != nil {
		return nil, err
	}
	if req.Body != nil && req.Body != http.NoBody {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, fmt.Errorf("%s %s: rewind request body: %w", req.Method, req.URL.Redacted(), err)
		}
	}
	resp, err = t.base.RoundTrip(retry)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	discard(resp)
	return nil, t.denied(req, s)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the base.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// authorize returns req, or a copy of it carrying the Authorization the last
// challenge asks for. stale is a bearer token the registry just refused.
func (t *transport) authorize(ctx context.Context, req *http.Request, stale string) (*http.Request, sent, error) {
	ch := t.currentChallenge()
	if ch == nil {
		return req, sent{}, nil
	}
	var header string
	var s sent
	switch ch.Scheme {
	case "bearer":
		tok, err := t.bearer(ctx, *ch, stale)
		if err != nil {
			return nil, sent{}, err
		}
		header, s = "Bearer "+tok.value, sent{scheme: "bearer", token: tok.value, anonymous: tok.anonymous}
	case "basic":
		c, err := t.credential(ctx)
		if err != nil {
			return nil, sent{}, err
		}
		if c.Username == "" {
			return nil, sent{}, fmt.Errorf("registry %s asks for a user name and password and none is configured: %w", t.host, ErrUnauthorized)
		}
		pair := base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
		header, s = "Basic "+pair, sent{scheme: "basic"}
	}
	r := req.Clone(ctx)
	r.Header.Set("Authorization", header)
	return r, s, nil
}

// credential asks the keychain for the host's credential, or the
// repository's when both are known.
func (t *transport) credential(ctx context.Context) (Credential, error) {
	if rk, ok := t.kc.(RepositoryKeychain); ok && t.repo != "" {
		return rk.GetRepository(ctx, t.host, t.repo)
	}
	return t.kc.Get(ctx, t.host)
}

// learn reads a 401's challenge, remembers it for later requests, and adds any
// scope it names to the scope set. It consumes resp.
func (t *transport) learn(resp *http.Response) (Challenge, error) {
	defer discard(resp)
	cs, err := ParseChallenges(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		return Challenge{}, fmt.Errorf("registry %s: %w", t.host, err)
	}
	var ch *Challenge
	for i := range cs {
		if cs[i].Scheme == "bearer" {
			ch = &cs[i]
			break
		}
		if cs[i].Scheme == "basic" && ch == nil {
			ch = &cs[i]
		}
	}
	if ch == nil {
		if len(cs) == 0 {
			return Challenge{}, fmt.Errorf("registry %s answered 401 without a WWW-Authenticate challenge: %w", t.host, ErrUnauthorized)
		}
		return Challenge{}, fmt.Errorf("registry %s asks for an unsupported authentication scheme %q: %w", t.host, cs[0].Scheme, ErrUnauthorized)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.challenge = ch
	t.scopes = addScopes(t.scopes, strings.Fields(ch.Params["scope"])...)
	return *ch, nil
}

// ping learns the challenge with a GET /v2/ before a request whose body could
// not be sent twice.
func (t *transport) ping(ctx context.Context, u *url.URL) error {
	v2 := url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/v2/"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v2.String(), nil)
	if err != nil {
		return fmt.Errorf("ping %s: %w", t.host, err)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("ping %s: %w", t.host, err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		discard(resp)
		return nil
	}
	_, err = t.learn(resp)
	return err
}

func (t *transport) currentChallenge() *Challenge {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.challenge
}

// denied is the error for a request the registry refused although it carried
// the authorization its challenge asked for.
func (t *transport) denied(req *http.Request, s sent) error {
	action := "pull"
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		action = "push"
	}
	what := t.host
	if repo := repository(req.URL.Path); repo != "" {
		what += "/" + repo
	}
	hint := "check the credentials"
	if s.anonymous {
		hint = "the repository does not exist or needs credentials"
	}
	return fmt.Errorf("%s access denied for %s: %s: %w", action, what, hint, ErrUnauthorized)
}

// isHost reports whether u addresses the registry host. Ports are compared
// after dropping the scheme's default port.
func (t *transport) isHost(u *url.URL) bool {
	got, want := canonicalHost(u.Host, u.Scheme), canonicalHost(t.host, u.Scheme)
	return got == want || (isDockerHub(got) && isDockerHub(want))
}

func canonicalHost(hostport, scheme string) string {
	hostport = strings.ToLower(hostport)
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || !(scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		return hostport
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// repository extracts NAME from a /v2/NAME/{manifests,blobs,tags}/... path.
func repository(path string) string {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return ""
	}
	for _, sep := range []string{"/manifests/", "/blobs/", "/tags/"} {
		if i := strings.LastIndex(rest, sep); i > 0 {
			return rest[:i]
		}
	}
	return ""
}

// addScopes merges scopes into the sorted set have.
func addScopes(have []string, scopes ...string) []string {
	out := slices.Clone(have)
	for _, s := range scopes {
		if s == "" {
			continue
		}
		if i, found := slices.BinarySearch(out, s); !found {
			out = slices.Insert(out, i, s)
		}
	}
	return out
}

func withoutAuthorization(req *http.Request) *http.Request {
	if _, ok := req.Header["Authorization"]; !ok {
		return req
	}
	r := req.Clone(req.Context())
	r.Header.Del("Authorization")
	return r
}

// realmRedirect follows a token realm's redirects, but lets the credential go
// only to the realm's own host.
func realmRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("token realm: stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("Authorization")
	}
	return nil
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// discard drains a little of a response we do not use, so that its
// connection can be reused, and closes it.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
