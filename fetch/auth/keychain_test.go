package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// writeFile writes content to a new file in a test directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func get(t *testing.T, kc Keychain, host string) Credential {
	t.Helper()
	c, err := kc.Get(context.Background(), host)
	if err != nil {
		t.Fatalf("Get(%q): %v", host, err)
	}
	return c
}

func TestDockerConfigLookup(t *testing.T) {
	tests := []struct {
		name   string
		config string
		host   string
		want   Credential
	}{
		{"AuthField", `{"auths":{"ghcr.io":{"auth":"` + b64("alice:pa:ss") + `"}}}`, "ghcr.io",
			Credential{Username: "alice", Password: "pa:ss"}},
		{"UserPasswordFields", `{"auths":{"ghcr.io":{"username":"bob","password":"pw"}}}`, "ghcr.io",
			Credential{Username: "bob", Password: "pw"}},
		{"AuthFieldWinsOverFields", `{"auths":{"ghcr.io":{"auth":"` + b64("alice:a") + `","username":"bob","password":"b"}}}`, "ghcr.io",
			Credential{Username: "alice", Password: "a"}},
		{"IdentityToken", `{"auths":{"myregistry.azurecr.io":{"auth":"` + b64("00000000-0000-0000-0000-000000000000:") + `","identitytoken":"refresh"}}}`, "myregistry.azurecr.io",
			Credential{Username: "00000000-0000-0000-0000-000000000000", IdentityToken: "refresh"}},
		{"RegistryToken", `{"auths":{"ghcr.io":{"registrytoken":"bearer-me"}}}`, "ghcr.io",
			Credential{RegistryToken: "bearer-me"}},
		{"KeyWithSchemeAndPath", `{"auths":{"https://ghcr.io/v2/":{"auth":"` + b64("a:b") + `"}}}`, "ghcr.io",
			Credential{Username: "a", Password: "b"}},
		{"KeyCaseAndPort", `{"auths":{"HTTP://Registry.Example:5000":{"auth":"` + b64("a:b") + `"}}}`, "registry.example:5000",
			Credential{Username: "a", Password: "b"}},
		{"HostCaseIgnored", `{"auths":{"ghcr.io":{"auth":"` + b64("a:b") + `"}}}`, "GHCR.io",
			Credential{Username: "a", Password: "b"}},
		{"PortMatters", `{"auths":{"127.0.0.1:5000":{"auth":"` + b64("a:b") + `"}}}`, "127.0.0.1:5001",
			Credential{}},
		{"RepositoryScopedKey", `{"auths":{"quay.io/org/repo":{"auth":"` + b64("a:b") + `"}}}`, "quay.io",
			Credential{Username: "a", Password: "b"}},
		{"ExactKeyWinsOverScopedKey", `{"auths":{"quay.io/org":{"auth":"` + b64("scoped:x") + `"},"quay.io":{"auth":"` + b64("exact:y") + `"}}}`, "quay.io",
			Credential{Username: "exact", Password: "y"}},
		{"HubV1KeyForDockerIO", `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw") + `"}}}`, "docker.io",
			Credential{Username: "hub", Password: "pw"}},
		{"HubV1KeyForRegistry1", `{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw") + `"}}}`, "registry-1.docker.io",
			Credential{Username: "hub", Password: "pw"}},
		{"HubPodmanKeyForIndex", `{"auths":{"docker.io":{"auth":"` + b64("hub:pw") + `"}}}`, "index.docker.io",
			Credential{Username: "hub", Password: "pw"}},
		{"EmptyEntryIsAnonymous", `{"auths":{"ghcr.io":{}}}`, "ghcr.io", Credential{}},
		{"UnknownHost", `{"auths":{"ghcr.io":{"auth":"` + b64("a:b") + `"}}}`, "quay.io", Credential{}},
		{"EmptyFile", ``, "ghcr.io", Credential{}},
		{"NoAuths", `{"psFormat":"table"}`, "ghcr.io", Credential{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc, err := NewKeychain(Options{DockerConfig: writeFile(t, "config.json", tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			if got := get(t, kc, tt.host); got != tt.want {
				t.Fatalf("Get(%q) = %#v, want %#v", tt.host, got, tt.want)
			}
		})
	}
}

func TestNewKeychainRejects(t *testing.T) {
	tests := []struct {
		name     string
		user     string
		config   string // written to a file and passed as each of the file options
		wantText string
	}{
		{"UserWithoutColon", "alice", "", "user credentials"},
		{"UserWithoutName", ":secret", "", "user credentials"},
		{"NotJSON", "", `{"auths":`, "config.json"},
		{"AuthNotBase64", "", `{"auths":{"ghcr.io":{"auth":"%%%"}}}`, `"ghcr.io"`},
		{"AuthWithoutColon", "", `{"auths":{"ghcr.io":{"auth":"` + b64("nocolon") + `"}}}`, `"ghcr.io"`},
		{"AuthsNotAnObject", "", `{"auths":[]}`, "config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []Options{{User: tt.user}}
			if tt.config != "" {
				path := writeFile(t, "config.json", tt.config)
				opts = []Options{{AuthFile: path}, {RegistryAuthFile: path}, {DockerConfig: path}, {PodmanAuthFiles: []string{path}}}
			}
			for _, o := range opts {
				_, err := NewKeychain(o)
				if !errors.Is(err, ErrMalformedCredentials) {
					t.Fatalf("NewKeychain(%+v) = %v, want ErrMalformedCredentials", o, err)
				}
				if !strings.Contains(err.Error(), tt.wantText) {
					t.Fatalf("error %q does not mention %q", err, tt.wantText)
				}
			}
		})
	}
}

func TestNewKeychainMissingFiles(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.json")
	kc, err := NewKeychain(Options{RegistryAuthFile: missing, DockerConfig: missing})
	if err != nil {
		t.Fatalf("missing REGISTRY_AUTH_FILE and docker config: %v, want no error", err)
	}
	if c := get(t, kc, "ghcr.io"); !c.Anonymous() {
		t.Fatalf("got %v, want anonymous", c)
	}
	if _, err := NewKeychain(Options{AuthFile: missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing --auth file: %v, want an error naming it", err)
	}
}

func TestKeychainPrecedence(t *testing.T) {
	entry := func(host, user string) string {
		return `"` + host + `":{"auth":"` + b64(user+":pw") + `"}`
	}
	authFile := writeFile(t, "auth.json", `{"auths":{`+entry("a.example", "from-auth")+`}}`)
	registryAuthFile := writeFile(t, "registry-auth.json", `{"auths":{`+entry("a.example", "from-registry-auth")+`,`+entry("b.example", "from-registry-auth")+`}}`)
	dockerConfig := writeFile(t, "config.json", `{"auths":{`+entry("a.example", "from-docker")+`,`+entry("b.example", "from-docker")+`,`+entry("c.example", "from-docker")+`}}`)
	all := Options{AuthFile: authFile, RegistryAuthFile: registryAuthFile, DockerConfig: dockerConfig}

	tests := []struct {
		name string
		opts Options
		host string
		want string // Username
	}{
		{"UserBeatsEverything", Options{User: "flag:pw", AuthFile: authFile, RegistryAuthFile: registryAuthFile, DockerConfig: dockerConfig}, "a.example", "flag"},
		{"UserForEveryHost", Options{User: "flag:pw"}, "unknown.example", "flag"},
		{"AuthFileBeatsRegistryAuthFile", all, "a.example", "from-auth"},
		{"RegistryAuthFileBeatsDockerConfig", all, "b.example", "from-registry-auth"},
		{"DockerConfigLast", all, "c.example", "from-docker"},
		{"NobodyKnows", all, "d.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc, err := NewKeychain(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := get(t, kc, tt.host); got.Username != tt.want {
				t.Fatalf("Get(%q) = %v, want user %q", tt.host, got, tt.want)
			}
		})
	}
}

func TestUserPasswordMayHoldColons(t *testing.T) {
	kc, err := NewKeychain(Options{User: "alice:a:b:c"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := get(t, kc, "ghcr.io"), (Credential{Username: "alice", Password: "a:b:c"}); got != want {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

func TestServiceAccountKey(t *testing.T) {
	key := `{
  "type": "service_account",
  "project_id": "p",
  "private_key_id": "k",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
  "client_email": "puller@p.iam.gserviceaccount.com"
}`
	tests := []struct {
		name    string
		content string
	}{
		{"TypeServiceAccount", key + "\n"},
		{"PrivateKeyOnly", `{"private_key":"-----BEGIN PRIVATE KEY-----\n"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc, err := NewKeychain(Options{
				AuthFile:     writeFile(t, "key.json", tt.content),
				DockerConfig: writeFile(t, "config.json", `{"auths":{"gcr.io":{"auth":"`+b64("docker:pw")+`"}}}`),
			})
			if err != nil {
				t.Fatal(err)
			}
			want := Credential{Username: "_json_key", Password: strings.TrimRight(tt.content, "\n")}
			for _, host := range []string{"gcr.io", "europe-docker.pkg.dev", "127.0.0.1:5000"} {
				if got := get(t, kc, host); got != want {
					t.Fatalf("Get(%q) = %#v, want the key as _json_key", host, got)
				}
			}
		})
	}
}

func TestCredentialStringHidesSecrets(t *testing.T) {
	c := Credential{Username: "alice", Password: "hunter2", IdentityToken: "refresh-secret", RegistryToken: "bearer-secret"}
	for _, s := range []string{c.String(), c.GoString()} {
		for _, secret := range []string{"hunter2", "refresh-secret", "bearer-secret"} {
			if strings.Contains(s, secret) {
				t.Fatalf("%q shows a secret", s)
			}
		}
	}
}
