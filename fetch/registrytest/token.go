package registrytest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The issuer's and the service's names, as the registry config and the
// tokens carry them.
const (
	issuerName  = "registrytest-issuer"
	serviceName = "registrytest"
	adminUser   = "registrytest-admin"
)

// issuer implements the Docker token protocol (GET with Basic credentials,
// and the OAuth2 POST form) and signs ES256 JWTs that the registry trusts
// through its rootcertbundle.
type issuer struct {
	name, service string
	key           *ecdsa.PrivateKey
	certDER       []byte // self-signed signing certificate, sent as x5c
	users         map[string]string
	ttl           time.Duration
	anonPull      bool

	mu      sync.Mutex
	refresh map[string]string // refresh token → user
}

func newIssuer(cfg Config) (*issuer, error) {
	key, der, err := selfSigned("registrytest token signer")
	if err != nil {
		return nil, err
	}
	return &issuer{
		name:     issuerName,
		service:  serviceName,
		key:      key,
		certDER:  der,
		users:    cfg.Users,
		ttl:      cfg.TokenTTL,
		anonPull: cfg.AnonymousPull,
		refresh:  map[string]string{},
	}, nil
}

// access is one entry of a token's "access" claim.
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

type claims struct {
	Issuer     string   `json:"iss"`
	Subject    string   `json:"sub"`
	Audience   string   `json:"aud"`
	Expiration int64    `json:"exp"`
	NotBefore  int64    `json:"nbf"`
	IssuedAt   int64    `json:"iat"`
	JWTID      string   `json:"jti"`
	Access     []access `json:"access"`
}

// sign makes a JWT for sub with the given access, valid for ttl from now.
// A negative ttl makes a token that expired -ttl ago.
func (is *issuer) sign(sub string, grants []access, now time.Time, ttl time.Duration) (string, error) {
	issued := now
	if ttl <= 0 {
		issued = now.Add(ttl).Add(-time.Minute)
	}
	if grants == nil {
		grants = []access{}
	}
	header, err := json.Marshal(map[string]any{
		"typ": "JWT",
		"alg": "ES256",
		"x5c": []string{base64.StdEncoding.EncodeToString(is.certDER)},
	})
	if err != nil {
		return "", fmt.Errorf("token header: %w", err)
	}
	body, err := json.Marshal(claims{
		Issuer:     is.name,
		Subject:    sub,
		Audience:   is.service,
		Expiration: now.Add(ttl).Unix(),
		NotBefore:  issued.Unix(),
		IssuedAt:   issued.Unix(),
		JWTID:      randomHex(16),
		Access:     grants,
	})
	if err != nil {
		return "", fmt.Errorf("token claims: %w", err)
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(body)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, is.key, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	sig := make([]byte, 64) // JWS ES256: r and s, 32 bytes each, big-endian
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + enc.EncodeToString(sig), nil
}

// grant decides what user ("" = anonymous) gets of the requested scopes:
// a known user everything asked, an anonymous client pull on repositories
// when AnonymousPull is set, nothing otherwise.
func (is *issuer) grant(user string, scopes []string) []access {
	var out []access
	for _, scope := range scopes {
		a, ok := parseScope(scope)
		if !ok {
			continue
		}
		if user == "" {
			if !is.anonPull || a.Type != "repository" {
				continue
			}
			var pull []string
			for _, act := range a.Actions {
				if act == "pull" {
					pull = append(pull, act)
				}
			}
			if len(pull) == 0 {
				continue
			}
			a.Actions = pull
		}
		out = append(out, a)
	}
	return out
}

// parseScope reads "TYPE:NAME:ACTION,ACTION".
func parseScope(scope string) (access, bool) {
	first := strings.IndexByte(scope, ':')
	last := strings.LastIndexByte(scope, ':')
	if first < 0 || last == first {
		return access{}, false
	}
	a := access{Type: scope[:first], Name: scope[first+1 : last]}
	for _, act := range strings.Split(scope[last+1:], ",") {
		if act != "" {
			a.Actions = append(a.Actions, act)
		}
	}
	return a, a.Name != "" && len(a.Actions) > 0
}

func (is *issuer) checkPassword(user, password string) bool {
	want, ok := is.users[user]
	return ok && want == password
}

func (is *issuer) newRefreshToken(user string) string {
	tok := randomHex(24)
	is.mu.Lock()
	defer is.mu.Unlock()
	is.refresh[tok] = user
	return tok
}

func (is *issuer) refreshUser(tok string) (string, bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	user, ok := is.refresh[tok]
	return user, ok
}

func (is *issuer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/token" {
		http.NotFound(w, req)
		return
	}
	switch req.Method {
	case http.MethodGet:
		is.serveGet(w, req)
	case http.MethodPost:
		is.servePost(w, req)
	default:
		w.Header().Set("Allow", "GET, POST")
		tokenError(w, http.StatusMethodNotAllowed, "unsupported", "method not allowed")
	}
}

// serveGet answers GET realm?service=..&scope=..[&offline_token=true].
func (is *issuer) serveGet(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	if s := q.Get("service"); s != "" && s != is.service {
		tokenError(w, http.StatusBadRequest, "invalid_request", "unknown service "+s)
		return
	}
	user := ""
	if u, p, ok := req.BasicAuth(); ok {
		if !is.checkPassword(u, p) {
			w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
			tokenError(w, http.StatusUnauthorized, "unauthorized", "invalid username or password")
			return
		}
		user = u
	}
	var scopes []string
	for _, s := range q["scope"] {
		scopes = append(scopes, strings.Fields(s)...)
	}
	now := time.Now()
	tok, err := is.sign(user, is.grant(user, scopes), now, is.ttl)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	resp := map[string]any{
		"token":        tok,
		"access_token": tok,
		"expires_in":   expiresIn(is.ttl),
		"issued_at":    now.UTC().Format(time.RFC3339),
	}
	if user != "" && q.Get("offline_token") == "true" {
		resp["refresh_token"] = is.newRefreshToken(user)
	}
	writeJSON(w, http.StatusOK, resp)
}

// servePost answers the OAuth2 form: grant_type=password (username,
// password) or grant_type=refresh_token (refresh_token), with service,
// scope (space separated), client_id and access_type=offline.
func (is *issuer) servePost(w http.ResponseWriter, req *http.Request) {
	if err := req.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	f := req.PostForm
	if s := f.Get("service"); s != "" && s != is.service {
		tokenError(w, http.StatusBadRequest, "invalid_request", "unknown service "+s)
		return
	}
	var user, refresh string
	switch f.Get("grant_type") {
	case "password":
		if !is.checkPassword(f.Get("username"), f.Get("password")) {
			tokenError(w, http.StatusUnauthorized, "invalid_grant", "invalid username or password")
			return
		}
		user = f.Get("username")
		if f.Get("access_type") == "offline" {
			refresh = is.newRefreshToken(user)
		}
	case "refresh_token":
		u, ok := is.refreshUser(f.Get("refresh_token"))
		if !ok {
			tokenError(w, http.StatusUnauthorized, "invalid_grant", "unknown refresh token")
			return
		}
		user, refresh = u, f.Get("refresh_token")
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be password or refresh_token")
		return
	}
	scopes := strings.Fields(f.Get("scope"))
	now := time.Now()
	tok, err := is.sign(user, is.grant(user, scopes), now, is.ttl)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	resp := map[string]any{
		"access_token": tok,
		"scope":        strings.Join(scopes, " "),
		"expires_in":   expiresIn(is.ttl),
		"issued_at":    now.UTC().Format(time.RFC3339),
	}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	writeJSON(w, http.StatusOK, resp)
}

func expiresIn(ttl time.Duration) int64 {
	return int64(math.Ceil(ttl.Seconds()))
}

func tokenError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, map[string]string{"error": kind, "error_description": msg, "details": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

// IssueToken signs a token for user granting every action in scopes
// ("repository:NAME:pull,push"), valid for ttl; a negative ttl makes a
// token that expired -ttl ago (the registry refuses it once -ttl exceeds its
// 60s leeway). It fails the test unless Auth is Token.
func (r *Registry) IssueToken(t testing.TB, user string, ttl time.Duration, scopes ...string) string {
	t.Helper()
	if r.issuer == nil {
		t.Fatalf("registrytest: IssueToken needs Auth: Token, registry has %v", r.cfg.Auth)
	}
	var grants []access
	for _, s := range scopes {
		a, ok := parseScope(s)
		if !ok {
			t.Fatalf("registrytest: bad scope %q", s)
		}
		grants = append(grants, a)
	}
	tok, err := r.issuer.sign(user, grants, time.Now(), ttl)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	return tok
}
