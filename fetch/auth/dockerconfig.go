package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// dockerHub is the canonical key of Docker Hub among its aliases, and
// dockerHubServer the server address docker uses for it in config.json and
// when talking to credential helpers.
const (
	dockerHub       = "docker.io"
	dockerHubServer = "https://index.docker.io/v1/"
)

// dockerConfig is the part of docker's config.json (and of podman's auth.json,
// which has the same format) that holds credentials.
type dockerConfig struct {
	path        string
	auths       map[string]Credential // keyed by normalizeHost of the file's key
	credsStore  string
	credHelpers map[string]string // likewise
}

type dockerConfigFile struct {
	Auths       map[string]dockerAuthEntry `json:"auths"`
	CredsStore  string                     `json:"credsStore"`
	CredHelpers map[string]string          `json:"credHelpers"`
}

type dockerAuthEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// loadDockerConfig reads a config.json; a missing file returns an error
// satisfying errors.Is(err, fs.ErrNotExist).
func loadDockerConfig(path string) (*dockerConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read auth file: %w", err)
	}
	return parseDockerConfig(path, data)
}

// parseDockerConfig decodes every entry up front, so that a bad "auth" field is
// reported when the keychain is made rather than in the middle of a pull.
func parseDockerConfig(path string, data []byte) (*dockerConfig, error) {
	cfg := &dockerConfig{path: path, auths: map[string]Credential{}, credHelpers: map[string]string{}}
	if strings.TrimSpace(string(data)) == "" {
		return cfg, nil
	}
	var f dockerConfigFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("auth file %s: %v: %w", path, err, ErrMalformedCredentials)
	}
	cfg.credsStore = f.CredsStore
	// Sorted keys make the winner deterministic when two keys name one host
	// ("https://index.docker.io/v1/" and "docker.io"); an exact host key wins.
	keys := make([]string, 0, len(f.Auths))
	for k := range f.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c, err := f.Auths[k].credential()
		if err != nil {
			return nil, fmt.Errorf("auth file %s: auths[%q]: %v: %w", path, k, err, ErrMalformedCredentials)
		}
		if c.Anonymous() {
			continue // docker writes empty entries when a credsStore holds the secret
		}
		h := normalizeHost(k)
		if _, taken := cfg.auths[h]; taken && k != h {
			continue
		}
		cfg.auths[h] = c
	}
	keys = keys[:0]
	for k := range f.CredHelpers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h := normalizeHost(k)
		if _, taken := cfg.credHelpers[h]; taken && k != h {
			continue
		}
		if f.CredHelpers[k] != "" {
			cfg.credHelpers[h] = f.CredHelpers[k]
		}
	}
	return cfg, nil
}

// credential decodes one auths entry. "auth" (base64 of user:pass) wins over
// the username and password fields, as in docker.
func (e dockerAuthEntry) credential() (Credential, error) {
	c := Credential{
		Username:      e.Username,
		Password:      e.Password,
		IdentityToken: e.IdentityToken,
		RegistryToken: e.RegistryToken,
	}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Auth))
		if err != nil {
			return Credential{}, fmt.Errorf("auth field is not base64")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Credential{}, fmt.Errorf("auth field is not base64 of user:password")
		}
		c.Username, c.Password = user, pass
	}
	return c, nil
}

// lookup follows docker's order: credHelpers[host], else credsStore, else auths.
// A helper answering "credentials not found" means anonymous for that host.
func (cfg *dockerConfig) lookup(ctx context.Context, host string) (Credential, bool, error) {
	helper, ok := cfg.credHelpers[host]
	if !ok {
		helper = cfg.credsStore
	}
	if helper != "" {
		c, err := runHelper(ctx, helper, helperServer(host))
		if err != nil {
			return Credential{}, false, fmt.Errorf("auth file %s: %w", cfg.path, err)
		}
		return c, !c.Anonymous(), nil
	}
	c, ok := cfg.auths[host]
	return c, ok, nil
}

// normalizeHost turns a config.json key or an image reference's host into the
// key credentials are filed under: lower case, no scheme, no path, and one name
// for Docker Hub's aliases. "https://index.docker.io/v1/" and
// "registry-1.docker.io" both become "docker.io".
func normalizeHost(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	if isDockerHub(s) {
		return dockerHub
	}
	return s
}

func isDockerHub(host string) bool {
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return true
	}
	return false
}

// helperServer is the server URL a credential helper is asked about: docker's
// historical URL for Docker Hub, the bare host for everything else.
func helperServer(host string) string {
	if host == dockerHub {
		return dockerHubServer
	}
	return host
}
