package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// defaultTokenLifetime applies when the token server gives no expires_in,
	// as the distribution token specification says.
	defaultTokenLifetime = 60 * time.Second
	// maxTokenLifetime bounds an absurd expires_in.
	maxTokenLifetime = 24 * time.Hour
	// maxRenewMargin is how long before expiry a token is renewed, at most; a
	// short-lived token is renewed when four fifths of its life are gone.
	maxRenewMargin = 30 * time.Second
	// clientID names roots to token servers that ask (OAuth2 POST).
	clientID = "roots"
	// maxTokenResponse bounds what is read from a token server.
	maxTokenResponse = 1 << 20
)

// token is a bearer token and when to stop presenting it.
type token struct {
	value     string
	renewAt   time.Time // zero: never (a RegistryToken from the user)
	anonymous bool      // fetched without a credential
}

func (tok token) fresh(now time.Time) bool {
	return tok.renewAt.IsZero() || now.Before(tok.renewAt)
}

// bearer returns a fresh token for the challenge's realm and service and the
// current scope set, from the cache or from the realm. stale is a token the
// registry refused: it is dropped and not returned again.
func (t *transport) bearer(ctx context.Context, ch Challenge, stale string) (token, error) {
	t.mu.Lock()
	scopes := t.scopes
	t.mu.Unlock()
	key := ch.Params["realm"] + "\n" + ch.Params["service"] + "\n" + strings.Join(scopes, " ")
	if tok, ok := t.cachedToken(key, stale); ok {
		return tok, nil
	}
	return t.flights.do(ctx, key, func(ctx context.Context) (token, error) {
		if tok, ok := t.cachedToken(key, stale); ok {
			return tok, nil
		}
		tok, err := t.fetchToken(ctx, ch, scopes)
		if err != nil {
			return token{}, err
		}
		t.mu.Lock()
		t.tokens[key] = tok
		t.mu.Unlock()
		return tok, nil
	})
}

func (t *transport) cachedToken(key, stale string) (token, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tok, ok := t.tokens[key]
	if !ok {
		return token{}, false
	}
	if stale != "" && tok.value == stale {
		delete(t.tokens, key)
		return token{}, false
	}
	return tok, tok.fresh(time.Now())
}

// tokenResponse is what token servers answer: the distribution token
// specification's "token", or OAuth2's "access_token".
type tokenResponse struct {
	Token       string  `json:"token"`
	AccessToken string  `json:"access_token"`
	ExpiresIn   float64 `json:"expires_in"`
	IssuedAt    string  `json:"issued_at"`
}

// fetchToken asks the challenge's realm for a token.
func (t *transport) fetchToken(ctx context.Context, ch Challenge, scopes []string) (token, error) {
	realm, err := url.Parse(ch.Params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return token{}, fmt.Errorf("registry %s: bearer challenge has no usable realm %q: %w", t.host, ch.Params["realm"], ErrMalformedChallenge)
	}
	cred, err := t.credential(ctx)
	if err != nil {
		return token{}, err
	}
	if cred.RegistryToken != "" {
		return token{value: cred.RegistryToken}, nil
	}
	if realm.Scheme == "http" && !cred.Anonymous() && !t.plainRealms && !Loopback(realm.Host) {
		return token{}, fmt.Errorf("token for %s: realm %s: %w: the credentials of %s are not sent there",
			t.host, realm.Redacted(), ErrPlainRealm, cred)
	}
	req, err := tokenRequest(ctx, realm, ch.Params["service"], scopes, cred)
	if err != nil {
		return token{}, fmt.Errorf("token for %s: %w", t.host, err)
	}
	start := time.Now()
	resp, err := t.realm.Do(req)
	if err != nil {
		return token{}, fmt.Errorf("token for %s: %w", t.host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return token{}, fmt.Errorf("token for %s: read answer from %s: %w", t.host, realm.Host, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return token{}, t.realmDenied(realm.Host, cred)
	case resp.StatusCode != http.StatusOK:
		return token{}, fmt.Errorf("token for %s: %s answered %s: %s", t.host, realm.Host, resp.Status, snippet(body))
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return token{}, fmt.Errorf("token for %s: answer from %s is not JSON: %v", t.host, realm.Host, err)
	}
	value := tr.Token
	if value == "" {
		value = tr.AccessToken
	}
	if value == "" {
		return token{}, fmt.Errorf("token for %s: answer from %s holds no token", t.host, realm.Host)
	}
	return token{value: value, renewAt: tr.renewAt(start), anonymous: cred.Anonymous()}, nil
}

// tokenRequest builds the distribution token GET (Basic credentials when there
// are a user and password), or the OAuth2 refresh_token POST for an identity
// token.
func tokenRequest(ctx context.Context, realm *url.URL, service string, scopes []string, cred Credential) (*http.Request, error) {
	if cred.IdentityToken != "" {
		form := url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {cred.IdentityToken},
			"client_id":     {clientID},
		}
		if service != "" {
			form.Set("service", service)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}
	u := *realm
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	if cred.Username != "" {
		q.Set("account", cred.Username)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if cred.Username != "" || cred.Password != "" {
		req.SetBasicAuth(cred.Username, cred.Password)
	}
	return req, nil
}

// renewAt is when to stop presenting the token. Its life counts from when we
// asked for it, or from issued_at if the server says it is older than that (a
// server that hands out cached tokens); an issued_at that would make it
// already expired is clock skew and ignored.
func (tr tokenResponse) renewAt(start time.Time) time.Time {
	life := defaultTokenLifetime
	switch {
	case tr.ExpiresIn > maxTokenLifetime.Seconds():
		life = maxTokenLifetime
	case tr.ExpiresIn > 0:
		life = time.Duration(tr.ExpiresIn * float64(time.Second))
	}
	issued := start
	if at, err := time.Parse(time.RFC3339, tr.IssuedAt); err == nil && at.Before(start) && at.Add(life).After(start) {
		issued = at
	}
	return issued.Add(life - min(life/5, maxRenewMargin))
}

// realmDenied is the error for a token server refusing the credential.
func (t *transport) realmDenied(realmHost string, cred Credential) error {
	if cred.Anonymous() {
		return fmt.Errorf("token server %s refused anonymous access to %s: it needs credentials: %w",
			realmHost, t.host, ErrUnauthorized)
	}
	return fmt.Errorf("token server %s refused the %s for %s: check the credentials: %w",
		realmHost, cred, t.host, ErrUnauthorized)
}

func snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// Loopback reports whether hostport (a host, with or without a port) names this machine:
// localhost, 127.0.0.0/8 or ::1, where plain HTTP stays on the machine.
func Loopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
