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
	path string
	// auths is keyed by authKey: "host" for a host or URL key, "host/path"
	// for a key naming a namespace or repository, as podman writes them.
	auths       map[string]Credential
	credsStore  string
	credHelpers map[string]string // keyed by normalizeHost of the file's key
}

// fileFlavor says how a file's repository keys ("quay.io/org/repo") read.
type fileFlavor int

const (
	// podmanFile: a repository key answers for that repository and the ones
	// under it only, as containers-auth.json(5) says.
	podmanFile fileFlavor = iota
	// dockerFile: as podmanFile, and a repository key also stands for its
	// whole host when the file has no key for the host itself, because docker
	// matches a key by its host part alone.
	dockerFile
)

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
func loadDockerConfig(path string, flavor fileFlavor) (*dockerConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read auth file: %w", err)
	}
	return parseDockerConfig(path, data, flavor)
}

// parseDockerConfig decodes every entry up front, so that a bad "auth" field is
// reported when the keychain is made rather than in the middle of a pull.
func parseDockerConfig(path string, data []byte, flavor fileFlavor) (*dockerConfig, error) {
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
	// ("https://index.docker.io/v1/" and "docker.io"); rank says which wins.
	keys := make([]string, 0, len(f.Auths))
	for k := range f.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rank := map[string]int{}
	file := func(key string, r int, c Credential) {
		if old, taken := rank[key]; !taken || r > old {
			rank[key] = r
			cfg.auths[key] = c
		}
	}
	for _, k := range keys {
		c, err := f.Auths[k].credential()
		if err != nil {
			return nil, fmt.Errorf("auth file %s: auths[%q]: %v: %w", path, k, err, ErrMalformedCredentials)
		}
		if c.Anonymous() {
			continue // docker writes empty entries when a credsStore holds the secret
		}
		key, scoped := authKey(k)
		switch {
		case scoped:
			file(key, rankExact, c)
			if flavor == dockerFile {
				file(normalizeHost(k), rankScopedHost, c)
			}
		case k == key:
			file(key, rankExact, c)
		default:
			file(key, rankURL, c)
		}
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

// How an auths key names a host, from weakest to strongest: a repository key
// standing for its host (dockerFile), a URL or a key in another case, the
// host itself.
const (
	rankScopedHost = iota + 1
	rankURL
	rankExact
)

// lookup follows docker's order: credHelpers[host], else credsStore, else
// auths, where the most specific key for repo wins (repo may be ""). A helper
// answering "credentials not found" means this file has nothing for the host.
func (cfg *dockerConfig) lookup(ctx context.Context, host, repo string) (Credential, bool, error) {
	if helper := cfg.helper(host); helper != "" {
		c, err := runHelper(ctx, helper, helperServer(host))
		if err != nil {
			return Credential{}, false, fmt.Errorf("auth file %s: %w", cfg.path, err)
		}
		return c, !c.Anonymous(), nil
	}
	for _, key := range authKeys(host, repo) {
		if c, ok := cfg.auths[key]; ok {
			return c, true, nil
		}
	}
	return Credential{}, false, nil
}

// scope is the repository key that answers for host and repo, or "" when the
// answer does not depend on repo (a helper, a host key, or nothing).
func (cfg *dockerConfig) scope(host, repo string) string {
	if cfg.helper(host) != "" {
		return ""
	}
	for _, key := range authKeys(host, repo) {
		if _, ok := cfg.auths[key]; ok {
			if key == host {
				return ""
			}
			return key
		}
	}
	return ""
}

// helper is the credential helper that holds host's secret, or "".
func (cfg *dockerConfig) helper(host string) string {
	if h, ok := cfg.credHelpers[host]; ok {
		return h
	}
	return cfg.credsStore
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
