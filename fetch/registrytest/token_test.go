package registrytest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTokenIssuerGrants(t *testing.T) {
	t.Parallel()
	private := Start(t, Config{Auth: Token, TokenTTL: 90 * time.Second})
	public := Start(t, Config{Auth: Token, AnonymousPull: true})
	tests := []struct {
		name       string
		r          *Registry
		user, pass string
		scopes     []string
		status     int
		want       []access
	}{
		{"UserGetsWhatItAsks", private, "alice", "secret", []string{"repository:a/b:pull,push"}, 200,
			[]access{{"repository", "a/b", []string{"pull", "push"}}}},
		{"ScopesRepeat", private, "alice", "secret", []string{"repository:a:pull", "repository:b:push"}, 200,
			[]access{{"repository", "a", []string{"pull"}}, {"repository", "b", []string{"push"}}}},
		{"SpaceSeparatedScopes", private, "alice", "secret", []string{"repository:a:pull registry:catalog:*"}, 200,
			[]access{{"repository", "a", []string{"pull"}}, {"registry", "catalog", []string{"*"}}}},
		{"WrongPassword", private, "alice", "nope", []string{"repository:a:pull"}, 401, nil},
		{"UnknownUser", public, "mallory", "secret", []string{"repository:a:pull"}, 401, nil},
		{"AnonymousGetsNothingWhenPrivate", private, "", "", []string{"repository:a:pull"}, 200, []access{}},
		{"AnonymousGetsPullOnly", public, "", "", []string{"repository:a:pull,push"}, 200,
			[]access{{"repository", "a", []string{"pull"}}}},
		{"AnonymousNoCatalog", public, "", "", []string{"registry:catalog:*"}, 200, []access{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := url.Values{"service": {tt.r.TokenService}, "scope": tt.scopes}
			req, _ := http.NewRequestWithContext(t.Context(), "GET", tt.r.TokenRealm+"?"+q.Encode(), nil)
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := (&http.Client{Transport: tt.r.Transport}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %s, want %d", resp.Status, tt.status)
			}
			if tt.status != http.StatusOK {
				return
			}
			var tr struct {
				Token       string `json:"token"`
				AccessToken string `json:"access_token"`
				ExpiresIn   int    `json:"expires_in"`
				IssuedAt    string `json:"issued_at"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
				t.Fatal(err)
			}
			if tr.Token == "" || tr.AccessToken != tr.Token || tr.IssuedAt == "" {
				t.Fatalf("answer %+v", tr)
			}
			c := jwtClaims(t, tr.Token)
			if !reflect.DeepEqual(c.Access, tt.want) {
				t.Fatalf("access %+v, want %+v", c.Access, tt.want)
			}
			if c.Subject != tt.user || c.Audience != tt.r.TokenService || c.Issuer != issuerName || c.JWTID == "" {
				t.Fatalf("claims %+v", c)
			}
			ttl := tt.r.cfg.TokenTTL
			if tr.ExpiresIn != int(ttl.Seconds()) || c.Expiration-c.IssuedAt != int64(ttl.Seconds()) || c.NotBefore != c.IssuedAt {
				t.Fatalf("expires_in %d, exp-iat %d, want %v", tr.ExpiresIn, c.Expiration-c.IssuedAt, ttl)
			}
		})
	}
}

// The registry must take the issuer's tokens, and refuse them when they
// expired, name another repository or lack the action.
func TestRegistryChecksTokens(t *testing.T) {
	t.Parallel()
	r := Start(t, Config{Auth: Token, TLS: true})
	r.Push(t, "team/app", "v1", smallImage)
	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"Valid", r.IssueToken(t, "alice", time.Minute, "repository:team/app:pull"), 200},
		{"AllActions", r.IssueToken(t, "alice", time.Minute, "repository:team/app:*"), 200},
		{"ExpiredPastLeeway", r.IssueToken(t, "alice", -2*time.Minute, "repository:team/app:pull"), 401},
		{"OtherRepository", r.IssueToken(t, "alice", time.Minute, "repository:team/other:pull"), 401},
		{"PushOnly", r.IssueToken(t, "alice", time.Minute, "repository:team/app:push"), 401},
		{"NoAccess", r.IssueToken(t, "alice", time.Minute), 401},
		{"Tampered", tamper(r.IssueToken(t, "alice", time.Minute, "repository:team/app:pull")), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &client{t: t, r: r, base: r.URL, token: tt.token}
			resp, body := c.send(http.MethodGet, "/v2/team/app/manifests/v1", acceptAll)
			if resp.StatusCode != tt.status {
				t.Fatalf("GET manifest: %s, want %d: %s", resp.Status, tt.status, body)
			}
			if tt.status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

// tamper gives the token to another subject, keeping the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	b = bytes.Replace(b, []byte(`"sub":"alice"`), []byte(`"sub":"mallory"`), 1)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestTokenIssuerOAuthForm(t *testing.T) {
	t.Parallel()
	r := Start(t, Config{Auth: Token})
	r.Push(t, "o/auth", "v1", smallImage)
	post := func(form url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := (&http.Client{Transport: r.Transport}).PostForm(r.TokenRealm, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	base := url.Values{"service": {r.TokenService}, "scope": {"repository:o/auth:pull"}, "client_id": {"registrytest"}}
	with := func(kv ...string) url.Values {
		f := url.Values{}
		for k, v := range base {
			f[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}

	code, out := post(with("grant_type", "password", "username", "alice", "password", "secret", "access_type", "offline"))
	refresh, _ := out["refresh_token"].(string)
	if code != 200 || refresh == "" || out["access_token"] == "" {
		t.Fatalf("password grant: %d %v", code, out)
	}
	code, out = post(with("grant_type", "refresh_token", "refresh_token", refresh))
	tok, _ := out["access_token"].(string)
	if code != 200 || tok == "" {
		t.Fatalf("refresh grant: %d %v", code, out)
	}
	c := &client{t: t, r: r, base: r.URL, token: tok}
	if resp, body := c.send(http.MethodGet, "/v2/o/auth/manifests/v1", acceptAll); resp.StatusCode != 200 {
		t.Fatalf("GET with refreshed token: %s %s", resp.Status, body)
	}

	for _, bad := range []url.Values{
		with("grant_type", "password", "username", "alice", "password", "wrong"),
		with("grant_type", "refresh_token", "refresh_token", "made-up"),
	} {
		if code, out := post(bad); code != http.StatusUnauthorized {
			t.Errorf("%v: %d %v, want 401", bad, code, out)
		}
	}
	if code, _ := post(with("grant_type", "client_credentials")); code != http.StatusBadRequest {
		t.Errorf("unknown grant: %d, want 400", code)
	}
	if n := len(r.TokenRequests()); n != 5 {
		t.Errorf("TokenRequests has %d entries, want 5", n)
	}
}
