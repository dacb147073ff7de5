package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testHelper is a docker-credential-test speaking the credential-helper
// protocol: the server URL on stdin, JSON or an error message on stdout. It
// logs every server it is asked about to $HELPER_LOG.
const testHelper = `#!/bin/sh
[ "$1" = get ] || { echo "unsupported action $1"; exit 1; }
server=$(cat)
echo "$server" >> "$HELPER_LOG"
case "$server" in
ghcr.io) echo '{"ServerURL":"ghcr.io","Username":"helper-user","Secret":"helper-pass"}' ;;
https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"hub-refresh"}' ;;
broken.example) echo 'keyring is locked' >&2; exit 3 ;;
*) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`

// installHelper puts docker-credential-test on PATH and returns the log of
// the servers it was asked about.
func installHelper(t *testing.T) (log func() []string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-test"), []byte(testHelper), 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "log")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("HELPER_LOG", logPath)
	return func() []string {
		data, err := os.ReadFile(logPath)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(string(data))
	}
}

func TestCredentialHelpers(t *testing.T) {
	auths := `"auths":{"ghcr.io":{"auth":"` + b64("file-user:pw") + `"},"quay.io":{"auth":"` + b64("file-user:pw") + `"}}`
	tests := []struct {
		name    string
		config  string
		host    string
		want    Credential
		wantLog []string // servers the helper was asked about
	}{
		{"CredHelperForHost", `{"credHelpers":{"ghcr.io":"test"},` + auths + `}`, "ghcr.io",
			Credential{Username: "helper-user", Password: "helper-pass"}, []string{"ghcr.io"}},
		{"CredHelperOnlyForItsHost", `{"credHelpers":{"ghcr.io":"test"},` + auths + `}`, "quay.io",
			Credential{Username: "file-user", Password: "pw"}, nil},
		{"CredsStoreForEveryHost", `{"credsStore":"test",` + auths + `}`, "ghcr.io",
			Credential{Username: "helper-user", Password: "helper-pass"}, []string{"ghcr.io"}},
		{"NotFoundIsAnonymousNotAuths", `{"credsStore":"test",` + auths + `}`, "quay.io",
			Credential{}, []string{"quay.io"}},
		{"CredHelperBeatsCredsStore", `{"credsStore":"missing-helper","credHelpers":{"ghcr.io":"test"}}`, "ghcr.io",
			Credential{Username: "helper-user", Password: "helper-pass"}, []string{"ghcr.io"}},
		{"HubAskedAsIndexV1", `{"credHelpers":{"https://index.docker.io/v1/":"test"}}`, "registry-1.docker.io",
			Credential{IdentityToken: "hub-refresh"}, []string{"https://index.docker.io/v1/"}},
		{"HubHelperKeyedDockerIO", `{"credHelpers":{"docker.io":"test"}}`, "docker.io",
			Credential{IdentityToken: "hub-refresh"}, []string{"https://index.docker.io/v1/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := installHelper(t)
			kc, err := NewKeychain(Options{DockerConfig: writeFile(t, "config.json", tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			if got := get(t, kc, tt.host); got != tt.want {
				t.Fatalf("Get(%q) = %#v, want %#v", tt.host, got, tt.want)
			}
			// A second Get is answered from memory.
			if got := get(t, kc, tt.host); got != tt.want {
				t.Fatalf("second Get(%q) = %#v, want %#v", tt.host, got, tt.want)
			}
			if got := log(); strings.Join(got, " ") != strings.Join(tt.wantLog, " ") {
				t.Fatalf("helper asked about %q, want %q", got, tt.wantLog)
			}
		})
	}
}

func TestCredentialHelperFailures(t *testing.T) {
	tests := []struct {
		name     string
		config   string
		host     string
		wantText []string
	}{
		{"HelperFails", `{"credsStore":"test"}`, "broken.example", []string{"docker-credential-test", "keyring is locked", "config.json"}},
		{"HelperMissing", `{"credHelpers":{"ghcr.io":"nonexistent"}}`, "ghcr.io", []string{"docker-credential-nonexistent", "not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			installHelper(t)
			kc, err := NewKeychain(Options{DockerConfig: writeFile(t, "config.json", tt.config)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = kc.Get(context.Background(), tt.host)
			if !errors.Is(err, ErrCredentialHelper) {
				t.Fatalf("Get(%q) = %v, want ErrCredentialHelper", tt.host, err)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestCredentialHelperHonoursContext(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\nexec sleep 60\n"
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-slow"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	kc, err := NewKeychain(Options{DockerConfig: writeFile(t, "config.json", `{"credsStore":"slow"}`)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := kc.Get(ctx, "ghcr.io"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with a context that times out = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Get returned after %v: the helper was not stopped", d)
	}
}
