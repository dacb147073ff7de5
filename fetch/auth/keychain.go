package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
)

// Credential is what a registry login needs. The zero value is anonymous.
type Credential struct {
	Username, Password string
	// IdentityToken is an OAuth2 refresh token (config.json "identitytoken", or a
	// credential helper answering with Username "<token>"). It is exchanged for an
	// access token with a POST to the token realm.
	IdentityToken string
	// RegistryToken is a bearer token sent to the registry as it is.
	RegistryToken string
}

// Anonymous reports whether c holds no credential at all.
func (c Credential) Anonymous() bool { return c == Credential{} }

// String describes c without its secrets, so that a credential printed by
// mistake leaks nothing.
func (c Credential) String() string {
	switch {
	case c.RegistryToken != "":
		return "registry token"
	case c.IdentityToken != "":
		return "identity token"
	case c.Username != "":
		return "user " + c.Username
	}
	return "anonymous"
}

// GoString keeps %#v as discreet as %v.
func (c Credential) GoString() string { return "auth.Credential{" + c.String() + "}" }

// Keychain finds the credential for a registry host, written as in image
// references: "docker.io", "ghcr.io", "127.0.0.1:5000". A host it knows nothing
// about gets the zero (anonymous) Credential and no error.
type Keychain interface {
	Get(ctx context.Context, host string) (Credential, error)
}

// RepositoryKeychain is a Keychain that can also answer for one repository of
// a host ("org/repo" on "quay.io"), for files that key credentials by
// repository as podman's auth.json does. NewTransport uses it when it is told
// the repository (the Repository option).
type RepositoryKeychain interface {
	Keychain
	GetRepository(ctx context.Context, host, repository string) (Credential, error)
}

// Options says where credentials come from. The library reads no environment
// variables: the CLI fills these in.
type Options struct {
	// User is "--user USER:PASS", used for every host. The password may contain
	// colons; a value without a colon is an error.
	User string
	// AuthFile is "--auth FILE": either a docker config.json, or a Google
	// service-account key (JSON with "type":"service_account" or "private_key"),
	// which becomes Username "_json_key" with the file's content as Password and,
	// like --user, is used for every host: the user named the file for this pull.
	// A missing file is an error.
	AuthFile string
	// RegistryAuthFile is $REGISTRY_AUTH_FILE: a podman/skopeo auth.json, which
	// has docker's config.json format. A missing file holds no credentials.
	// When it is set, PodmanAuthFiles are not read: podman reads its default
	// files only when REGISTRY_AUTH_FILE is unset.
	RegistryAuthFile string
	// DockerConfig is the path of docker's config.json ($DOCKER_CONFIG/config.json
	// or ~/.docker/config.json); "" means none. A missing file holds no credentials.
	DockerConfig string
	// PodmanAuthFiles are podman's default auth.json files in podman's order:
	// ${XDG_RUNTIME_DIR}/containers/auth.json (/run/containers/UID/auth.json
	// without XDG_RUNTIME_DIR), then ${XDG_CONFIG_HOME:-$HOME/.config}/containers/auth.json.
	// They are asked after DockerConfig. A missing file holds no credentials.
	PodmanAuthFiles []string
}

// NewKeychain reads every configured source now, so that a malformed file is
// reported before any network traffic; the error names the file.
//
// Sources are asked in the order User > AuthFile > RegistryAuthFile >
// DockerConfig > PodmanAuthFiles (in their order), and the first one that has
// a credential for the host answers; a host in several files gets the first
// file's. User and a service-account key have one for every host, so nothing
// after them is consulted. Within a file, docker's order holds: credHelpers
// for the host, else credsStore, else auths, where a key naming the
// repository or one of its namespaces ("quay.io/org/repo", "quay.io/org") wins
// over the host's key. Only docker's config.json and --auth let such a key
// stand for its whole host, as docker does, when the file has no host key.
// A credential helper is run only when a host is first asked for, and its
// answer is remembered for the life of the Keychain.
func NewKeychain(o Options) (Keychain, error) {
	k := &keychain{cache: map[string]Credential{}}
	if o.User != "" {
		user, pass, ok := strings.Cut(o.User, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("user credentials must be USER:PASSWORD: %w", ErrMalformedCredentials)
		}
		k.sources = append(k.sources, static(Credential{Username: user, Password: pass}))
	}
	if o.AuthFile != "" {
		src, err := loadAuthFile(o.AuthFile)
		if err != nil {
			return nil, err
		}
		k.sources = append(k.sources, src)
	}
	files := []authFile{{o.RegistryAuthFile, podmanFile}, {o.DockerConfig, dockerFile}}
	if o.RegistryAuthFile == "" {
		for _, p := range o.PodmanAuthFiles {
			files = append(files, authFile{p, podmanFile})
		}
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		cfg, err := loadDockerConfig(f.path, f.flavor)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		k.sources = append(k.sources, cfg)
	}
	return k, nil
}

// authFile is a config.json or auth.json to read, and how to read it.
type authFile struct {
	path   string
	flavor fileFlavor
}

// Static returns a Keychain that answers every host with c.
func Static(c Credential) Keychain { return static(c) }

// source is one place credentials live. found is false when the source knows
// nothing about host (and repo, which may be ""), so that the next source is
// asked. scope is the repository key the answer depends on, "" when it depends
// on the host alone.
type source interface {
	lookup(ctx context.Context, host, repo string) (c Credential, found bool, err error)
	scope(host, repo string) string
}

type static Credential

func (s static) lookup(context.Context, string, string) (Credential, bool, error) {
	return Credential(s), !Credential(s).Anonymous(), nil
}

func (static) scope(string, string) string { return "" }

func (s static) Get(context.Context, string) (Credential, error) { return Credential(s), nil }

// keychain asks its sources in order and remembers answers per host and
// matching repository keys, so that a slow credential helper runs once per
// host however many transports and repositories ask.
type keychain struct {
	sources []source
	flights flight[Credential]

	mu    sync.Mutex
	cache map[string]Credential
}

func (k *keychain) Get(ctx context.Context, host string) (Credential, error) {
	return k.GetRepository(ctx, host, "")
}

func (k *keychain) GetRepository(ctx context.Context, host, repo string) (Credential, error) {
	h := normalizeHost(host)
	key := h
	for _, s := range k.sources {
		key += "\x00" + s.scope(h, repo)
	}
	k.mu.Lock()
	c, ok := k.cache[key]
	k.mu.Unlock()
	if ok {
		return c, nil
	}
	return k.flights.do(ctx, key, func(ctx context.Context) (Credential, error) {
		for _, s := range k.sources {
			c, found, err := s.lookup(ctx, h, repo)
			if err != nil {
				return Credential{}, fmt.Errorf("credentials for %s: %w", host, err)
			}
			if found {
				k.remember(key, c)
				return c, nil
			}
		}
		k.remember(key, Credential{})
		return Credential{}, nil
	})
}

func (k *keychain) remember(key string, c Credential) {
	k.mu.Lock()
	k.cache[key] = c
	k.mu.Unlock()
}

// loadAuthFile reads --auth FILE: a service-account key or a docker config.json.
func loadAuthFile(path string) (source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read auth file: %w", err)
	}
	var probe struct {
		Type       string `json:"type"`
		PrivateKey string `json:"private_key"`
	}
	if json.Unmarshal(data, &probe) == nil && (probe.Type == "service_account" || probe.PrivateKey != "") {
		key := strings.TrimRight(string(data), "\r\n")
		return static(Credential{Username: "_json_key", Password: key}), nil
	}
	return parseDockerConfig(path, data, dockerFile)
}
