package auth

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// authJSON is a config.json or auth.json with one auths entry per key, each
// user "key-NAME" where NAME is the entry's label, so that a test sees which
// entry answered.
func authJSON(entries ...[2]string) string {
	var b strings.Builder
	b.WriteString(`{"auths":{`)
	for i, e := range entries {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + e[0] + `":{"auth":"` + b64(e[1]+":pw") + `"}`)
	}
	b.WriteString(`}}`)
	return b.String()
}

// entry is one auths key and the user name its credential has.
func entry(key, user string) [2]string { return [2]string{key, user} }

func user(name string) Credential { return Credential{Username: name, Password: "pw"} }

// TestKeychainFileOrder checks which file answers for a host several hold:
// --user > --auth > $REGISTRY_AUTH_FILE > docker's config.json > podman's
// ${XDG_RUNTIME_DIR}/containers/auth.json > podman's ~/.config/containers/auth.json.
func TestKeychainFileOrder(t *testing.T) {
	const host = "registry.example:5000"
	tests := []struct {
		name string
		// Contents of each file; "" means the file does not exist.
		user, authFile, registryAuthFile, docker, runtime, config string
		want                                                      Credential
	}{
		{name: "RuntimeAuthJSONAlone", runtime: authJSON(entry(host, "runtime")), want: user("runtime")},
		{name: "ConfigAuthJSONAlone", config: authJSON(entry(host, "config")), want: user("config")},
		{name: "RuntimeBeforeConfig", runtime: authJSON(entry(host, "runtime")), config: authJSON(entry(host, "config")),
			want: user("runtime")},
		{name: "RuntimeForOtherHostThenConfig", runtime: authJSON(entry("ghcr.io", "runtime")), config: authJSON(entry(host, "config")),
			want: user("config")},
		{name: "DockerBeforePodman", docker: authJSON(entry(host, "docker")), runtime: authJSON(entry(host, "runtime")),
			config: authJSON(entry(host, "config")), want: user("docker")},
		{name: "DockerForOtherHostThenPodman", docker: authJSON(entry("ghcr.io", "docker")), runtime: authJSON(entry(host, "runtime")),
			want: user("runtime")},
		{name: "DockerHostKeyBeforePodmanRepositoryKey", docker: authJSON(entry(host, "docker")),
			runtime: authJSON(entry(host+"/org/app", "runtime")), want: user("docker")},
		{name: "RegistryAuthFileBeforeDocker", registryAuthFile: authJSON(entry(host, "registry-auth-file")),
			docker: authJSON(entry(host, "docker")), want: user("registry-auth-file")},
		{name: "RegistryAuthFileHidesPodmanFiles", registryAuthFile: authJSON(entry("ghcr.io", "registry-auth-file")),
			runtime: authJSON(entry(host, "runtime")), config: authJSON(entry(host, "config")), want: Credential{}},
		{name: "RegistryAuthFileForOtherHostThenDocker", registryAuthFile: authJSON(entry("ghcr.io", "registry-auth-file")),
			docker: authJSON(entry(host, "docker")), want: user("docker")},
		{name: "AuthFlagBeforeEverything", authFile: authJSON(entry(host, "auth-flag")),
			registryAuthFile: authJSON(entry(host, "registry-auth-file")), docker: authJSON(entry(host, "docker")),
			runtime: authJSON(entry(host, "runtime")), want: user("auth-flag")},
		{name: "UserBeforeEverything", user: "flag:pw", authFile: authJSON(entry(host, "auth-flag")),
			runtime: authJSON(entry(host, "runtime")), want: user("flag")},
		{name: "EmptyPodmanFileHoldsNothing", runtime: " \n", config: authJSON(entry(host, "config")), want: user("config")},
		{name: "NoFiles", want: Credential{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := func(name, content string) string {
				p := filepath.Join(dir, name)
				if content != "" {
					p = writeFile(t, name, content)
				}
				return p // a path that does not exist holds nothing
			}
			o := Options{
				User:             tt.user,
				RegistryAuthFile: path("registry-auth-file.json", tt.registryAuthFile),
				DockerConfig:     path("config.json", tt.docker),
				PodmanAuthFiles:  []string{path("runtime-auth.json", tt.runtime), path("config-auth.json", tt.config)},
			}
			if tt.registryAuthFile == "" {
				o.RegistryAuthFile = ""
			}
			if tt.authFile != "" {
				o.AuthFile = path("auth-flag.json", tt.authFile)
			}
			kc, err := NewKeychain(o)
			if err != nil {
				t.Fatal(err)
			}
			if got := get(t, kc, host); got != tt.want {
				t.Fatalf("Get(%q) = %#v, want %#v", host, got, tt.want)
			}
		})
	}
}

// TestRepositoryKeys checks podman's per-repository keys: the most specific key
// for the repository wins, a key never answers for another repository, another
// namespace or another host, and only docker's config.json lets a repository
// key stand for its whole host.
func TestRepositoryKeys(t *testing.T) {
	podmanFile := authJSON(
		entry("quay.io", "host"),
		entry("quay.io/org", "org"),
		entry("quay.io/org/team/app", "app"),
		entry("ghcr.io/only/this", "only-this"),
		entry("docker.io/library/alpine", "hub-alpine"),
		entry("127.0.0.1:5000/private/app", "port-5000"),
		entry("https://legacy.example/v2/", "legacy"),
	)
	tests := []struct {
		name       string
		file       string
		docker     bool // the file is docker's config.json rather than podman's auth.json
		host, repo string
		want       Credential
	}{
		{"RepositoryKey", podmanFile, false, "quay.io", "org/team/app", user("app")},
		{"NamespaceKey", podmanFile, false, "quay.io", "org/other", user("org")},
		{"NamespaceKeyForNestedRepository", podmanFile, false, "quay.io", "org/team/other", user("org")},
		{"HostKeyOutsideNamespace", podmanFile, false, "quay.io", "organ/x", user("host")},
		{"HostKeyWithoutRepository", podmanFile, false, "quay.io", "", user("host")},
		{"RepositoryKeyNotForSibling", podmanFile, false, "ghcr.io", "only/that", Credential{}},
		{"RepositoryKeyNotForParent", podmanFile, false, "ghcr.io", "only", Credential{}},
		{"RepositoryKeyNotForHostAlone", podmanFile, false, "ghcr.io", "", Credential{}},
		{"RepositoryKeyNotForOtherHost", podmanFile, false, "quay.example", "org/team/app", Credential{}},
		{"RepositoryKeyPortMatters", podmanFile, false, "127.0.0.1:5001", "private/app", Credential{}},
		{"RepositoryKeyWithPort", podmanFile, false, "127.0.0.1:5000", "private/app", user("port-5000")},
		{"HubRepositoryKey", podmanFile, false, "registry-1.docker.io", "library/alpine", user("hub-alpine")},
		{"HubRepositoryKeyNotForOtherImage", podmanFile, false, "docker.io", "library/debian", Credential{}},
		{"URLKeyIsHostKey", podmanFile, false, "legacy.example", "any/repo", user("legacy")},
		{"DockerRepositoryKeyStandsForHost", authJSON(entry("ghcr.io/only/this", "only-this")), true, "ghcr.io", "other/repo",
			user("only-this")},
		{"DockerRepositoryKeyStillMostSpecific", authJSON(entry("ghcr.io", "host"), entry("ghcr.io/only/this", "only-this")), true,
			"ghcr.io", "only/this", user("only-this")},
		{"DockerHostKeyWinsOverRepositoryKeyForHost", authJSON(entry("ghcr.io/a", "a"), entry("ghcr.io", "host")), true,
			"ghcr.io", "b/c", user("host")},
		{"DockerRepositoryKeyNotForOtherHost", authJSON(entry("ghcr.io/only/this", "only-this")), true, "ghcr.io.example", "only/this",
			Credential{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{PodmanAuthFiles: []string{writeFile(t, "auth.json", tt.file)}}
			if tt.docker {
				o = Options{DockerConfig: writeFile(t, "config.json", tt.file)}
			}
			kc, err := NewKeychain(o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := kc.(RepositoryKeychain).GetRepository(context.Background(), tt.host, tt.repo)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("GetRepository(%q, %q) = %#v, want %#v", tt.host, tt.repo, got, tt.want)
			}
		})
	}
}

// TestRepositoryKeysRemembered asks one keychain about several repositories in
// turn: answers are remembered per host and matching key, so that one
// repository's answer is never handed to another.
func TestRepositoryKeysRemembered(t *testing.T) {
	kc, err := NewKeychain(Options{
		DockerConfig: writeFile(t, "config.json", authJSON(entry("ghcr.io", "docker"))),
		PodmanAuthFiles: []string{
			writeFile(t, "runtime.json", authJSON(entry("quay.io/a", "runtime-a"))),
			writeFile(t, "config.json", authJSON(entry("quay.io/b", "config-b"), entry("quay.io", "config-host"))),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rk := kc.(RepositoryKeychain)
	for _, round := range []int{1, 2} {
		for _, q := range []struct {
			repo string
			want Credential
		}{
			{"a/x", user("runtime-a")},
			{"b/x", user("config-b")},
			{"c/x", user("config-host")},
			{"", user("config-host")},
			{"a", user("runtime-a")},
		} {
			got, err := rk.GetRepository(context.Background(), "quay.io", q.repo)
			if err != nil {
				t.Fatal(err)
			}
			if got != q.want {
				t.Fatalf("round %d: GetRepository(quay.io, %q) = %#v, want %#v", round, q.repo, got, q.want)
			}
		}
	}
}

// TestPodmanFileRejected checks that a podman auth.json that exists but does
// not parse stops the keychain with an error naming it, and that one hidden by
// REGISTRY_AUTH_FILE is not read.
func TestPodmanFileRejected(t *testing.T) {
	bad := writeFile(t, "auth.json", `{"auths":{"quay.io":{"auth":"%%%"}}}`)
	_, err := NewKeychain(Options{PodmanAuthFiles: []string{filepath.Join(t.TempDir(), "missing.json"), bad}})
	if !errors.Is(err, ErrMalformedCredentials) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("NewKeychain = %v, want ErrMalformedCredentials naming %s", err, bad)
	}
	if _, err := NewKeychain(Options{RegistryAuthFile: filepath.Join(t.TempDir(), "missing.json"), PodmanAuthFiles: []string{bad}}); err != nil {
		t.Fatalf("NewKeychain with REGISTRY_AUTH_FILE set read podman's file: %v", err)
	}
}

// TestHelperOncePerHostAcrossRepositories checks that a credential helper,
// which answers per host, runs once for a host however many repositories ask.
func TestHelperOncePerHostAcrossRepositories(t *testing.T) {
	log := installHelper(t)
	kc, err := NewKeychain(Options{PodmanAuthFiles: []string{writeFile(t, "auth.json", `{"credHelpers":{"ghcr.io":"test"}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"a/x", "b/y", ""} {
		got, err := kc.(RepositoryKeychain).GetRepository(context.Background(), "ghcr.io", repo)
		if err != nil {
			t.Fatal(err)
		}
		if want := (Credential{Username: "helper-user", Password: "helper-pass"}); got != want {
			t.Fatalf("GetRepository(ghcr.io, %q) = %#v, want %#v", repo, got, want)
		}
	}
	if got := log(); len(got) != 1 {
		t.Fatalf("helper asked %v, want once for ghcr.io", got)
	}
}
