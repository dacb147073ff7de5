package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// TestPullAuth pulls from registries with each kind of authentication, with
// credentials given each way a user can give them.
func TestPullAuth(t *testing.T) {
	NeedRoot(t)
	img := registrytest.Image{Layers: []registrytest.Layer{{Compression: "gzip", Entries: []reg{{Name: "hello", Body: []byte("hi")}}}}}
	want := map[string]entry{"hello": testtree.File(0o644, "hi")}
	dockerConfig := func(t *testing.T, r *registrytest.Registry) string {
		dir := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.Host, auth)), 0o600)
		return dir
	}
	tests := []struct {
		name    string
		cfg     registrytest.Config
		creds   func(t *testing.T, r *registrytest.Registry) (env, args []string)
		wantErr string // "" = the pull succeeds
	}{
		{"Anonymous", registrytest.Config{}, nil, ""},
		{"TLSAnonymous", registrytest.Config{TLS: true}, nil, ""},
		{"BasicUserFlag", registrytest.Config{Auth: registrytest.Basic}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			return nil, []string{"--user", r.User + ":" + r.Password}
		}, ""},
		{"BasicWrongPassword", registrytest.Config{Auth: registrytest.Basic}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			return nil, []string{"--user", r.User + ":wrong"}
		}, "unauthorized"},
		{"BasicNoCredentials", registrytest.Config{Auth: registrytest.Basic}, nil, "unauthorized"},
		{"TokenUserFlag", registrytest.Config{Auth: registrytest.Token}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			return nil, []string{"--user", r.User + ":" + r.Password}
		}, ""},
		{"TokenDockerConfig", registrytest.Config{Auth: registrytest.Token, TLS: true}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			return []string{"DOCKER_CONFIG=" + dockerConfig(t, r)}, nil
		}, ""},
		{"TokenRegistryAuthFile", registrytest.Config{Auth: registrytest.Token}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			return []string{"REGISTRY_AUTH_FILE=" + dockerConfig(t, r) + "/config.json"}, nil
		}, ""},
		{"TokenAuthFlag", registrytest.Config{Auth: registrytest.Token}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			return nil, []string{"--auth", dockerConfig(t, r) + "/config.json"}
		}, ""},
		// podman's files: read after docker's config, in podman's order.
		{"TokenPodmanRuntimeAuthJSON", registrytest.Config{Auth: registrytest.Token}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			dir := t.TempDir()
			writeAuth(t, filepath.Join(dir, "containers", "auth.json"), r.Host, r.User, r.Password)
			return []string{"XDG_RUNTIME_DIR=" + dir}, nil
		}, ""},
		{"BasicPodmanConfigAuthJSON", registrytest.Config{Auth: registrytest.Basic}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			home := t.TempDir()
			writeAuth(t, filepath.Join(home, ".config", "containers", "auth.json"), r.Host, r.User, r.Password)
			return []string{"HOME=" + home, "XDG_RUNTIME_DIR=" + t.TempDir()}, nil
		}, ""},
		{"TokenPodmanRepositoryKey", registrytest.Config{Auth: registrytest.Token}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			dir := t.TempDir()
			writeAuth(t, filepath.Join(dir, "containers", "auth.json"), r.Host+"/private/app", r.User, r.Password)
			return []string{"XDG_RUNTIME_DIR=" + dir}, nil
		}, ""},
		{"TokenPodmanOtherRepositoryKey", registrytest.Config{Auth: registrytest.Token}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			dir := t.TempDir()
			writeAuth(t, filepath.Join(dir, "containers", "auth.json"), r.Host+"/private/other", r.User, r.Password)
			return []string{"XDG_RUNTIME_DIR=" + dir}, nil
		}, "unauthorized"},
		{"TokenDockerRightPodmanWrong", registrytest.Config{Auth: registrytest.Token}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			dir := t.TempDir()
			writeAuth(t, filepath.Join(dir, "containers", "auth.json"), r.Host, r.User, "wrong")
			return []string{"DOCKER_CONFIG=" + dockerConfig(t, r), "XDG_RUNTIME_DIR=" + dir}, nil
		}, ""},
		{"TokenDockerWrongPodmanRight", registrytest.Config{Auth: registrytest.Token}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			docker, podman := t.TempDir(), t.TempDir()
			writeAuth(t, filepath.Join(docker, "config.json"), r.Host, r.User, "wrong")
			writeAuth(t, filepath.Join(podman, "containers", "auth.json"), r.Host, r.User, r.Password)
			return []string{"DOCKER_CONFIG=" + docker, "XDG_RUNTIME_DIR=" + podman}, nil
		}, "unauthorized"},
		{"TokenRegistryAuthFileHidesPodman", registrytest.Config{Auth: registrytest.Token}, func(t *testing.T, r *registrytest.Registry) ([]string, []string) {
			dir := t.TempDir()
			writeAuth(t, filepath.Join(dir, "containers", "auth.json"), r.Host, r.User, r.Password)
			return []string{"XDG_RUNTIME_DIR=" + dir, "REGISTRY_AUTH_FILE=" + filepath.Join(dir, "missing.json")}, nil
		}, "unauthorized"},
		{"TokenAnonymousPull", registrytest.Config{Auth: registrytest.Token, AnonymousPull: true}, nil, ""},
		{"TokenAnonymousRefused", registrytest.Config{Auth: registrytest.Token}, nil, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := registrytest.Start(t, tt.cfg)
			r.Push(t, "private/app", "1", img)
			var env, args []string
			if tt.creds != nil {
				env, args = tt.creds(t, r)
			}
			if tt.cfg.TLS {
				env = append(env, "SSL_CERT_FILE="+r.CAFile)
			}
			dest := filepath.Join(t.TempDir(), "rootfs")
			args = append(args, "--cache=no", r.Host+"/private/app:1", dest)
			res := Roots(t, env, append([]string{"pull"}, args...)...)
			if tt.wantErr == "" {
				if res.Code != 0 {
					t.Fatalf("pull: exit %d: %s", res.Code, res.Stderr)
				}
				SameTree(t, testtree.Scan(t, dest), want)
				return
			}
			if res.Code != 1 || !strings.Contains(strings.ToLower(res.Stderr), tt.wantErr) || strings.Count(res.Stderr, "\n") != 1 {
				t.Fatalf("pull: exit %d, stderr %q; want exit 1 and one line mentioning %q", res.Code, res.Stderr, tt.wantErr)
			}
			if _, err := os.Lstat(dest); !os.IsNotExist(err) {
				t.Fatalf("failed pull left %s", dest)
			}
			AssertNoStaging(t, filepath.Dir(dest))
		})
	}
}

// writeAuth writes an auth.json (or config.json) at path holding user and password under key:
// a host, or a host and repository as podman login HOST/REPO writes.
func writeAuth(t *testing.T, path, key, user, password string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, key, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
}
