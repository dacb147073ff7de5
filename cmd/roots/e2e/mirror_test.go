package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// hostsToml writes DIR/name/hosts.toml and returns DIR.
func hostsToml(t *testing.T, name, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name, "hosts.toml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMirror: Docker Hub names pulled through a hosts.toml mirror with the real Hub out of
// reach (server is a dead loopback port), --verbose naming the host of each object; digest and
// inspect through --mirror; copy reading through a mirror but asking the target itself; a bad
// hosts.toml refused before any request.
func TestMirror(t *testing.T) {
	NeedRoot(t)
	mirror := registrytest.Start(t, registrytest.Config{})
	img := mirror.Push(t, "library/alpine", "latest", smallImage("alpine"))
	dead := deadAddr(t)

	t.Run("DockerHubThroughHostsToml", func(t *testing.T) {
		dir := hostsToml(t, "docker.io", fmt.Sprintf("server = \"http://%s\"\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", dead, mirror.Host))
		dest := filepath.Join(t.TempDir(), "rootfs")
		r := Roots(t, []string{"ROOTS_HOSTS_DIR=" + dir}, "pull", "--verbose", "--cache=no", "alpine", dest)
		if r.Code != 0 {
			t.Fatalf("exit %d: %s", r.Code, r.Stderr)
		}
		from := "from http://" + mirror.Host + "/v2"
		if !strings.Contains(r.Stderr, "manifest docker.io/library/alpine:latest "+from) {
			t.Errorf("--verbose does not say where the manifest came from:\n%s", r.Stderr)
		}
		for _, l := range img.Layers {
			if !strings.Contains(r.Stderr, "blob "+l.Digest.String()+" "+from) {
				t.Errorf("--verbose does not say where layer %s came from:\n%s", l.Digest, r.Stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(dest, "a", "file")); err != nil {
			t.Error(err)
		}
	})

	t.Run("HostsTomlWinsOverRegistriesConf", func(t *testing.T) {
		dir := hostsToml(t, "docker.io", fmt.Sprintf("server = \"http://%s\"\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", dead, mirror.Host))
		conf := filepath.Join(t.TempDir(), "registries.conf")
		body := fmt.Sprintf("[[registry]]\nprefix = \"docker.io\"\nlocation = %q\n", dead)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		env := []string{"ROOTS_HOSTS_DIR=" + dir, "CONTAINERS_REGISTRIES_CONF=" + conf}
		r := Roots(t, env, "digest", "--verbose", "alpine")
		note := "roots: docker.io: " + filepath.Join(dir, "docker.io", "hosts.toml") + " configures docker.io; its registries.conf entry (prefix \"docker.io\" in " + conf + ") is not used\n"
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != img.Digest.String() || !strings.Contains(r.Stderr, note) {
			t.Errorf("digest --verbose with both: exit %d, %q, stderr %q; want %s and the note %q", r.Code, r.Stdout, r.Stderr, img.Digest, note)
		}
		if r := Roots(t, env, "digest", "alpine"); strings.Contains(r.Stderr, "is not used") {
			t.Errorf("without --verbose the note is printed: %q", r.Stderr)
		}
	})

	t.Run("DigestAndInspectWithMirrorFlag", func(t *testing.T) {
		server := registrytest.Start(t, registrytest.Config{})
		want := mirror.Push(t, "team/app", "v1", smallImage("app"))
		r := Roots(t, nil, "digest", "--mirror", "http://"+mirror.Host, server.Host+"/team/app:v1")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != want.Digest.String() {
			t.Fatalf("digest: exit %d, %q, want %s: %s", r.Code, r.Stdout, want.Digest, r.Stderr)
		}
		r = Roots(t, nil, "inspect", "--cache=no", "--mirror", "http://"+mirror.Host, server.Host+"/team/app:v1")
		if r.Code != 0 || !strings.Contains(r.Stdout, want.Digest.String()) {
			t.Fatalf("inspect: exit %d, %s: %s", r.Code, r.Stdout, r.Stderr)
		}
		if n := len(server.Requests()); n != 0 {
			t.Errorf("the server got %d requests; the mirror had everything", n)
		}
	})

	t.Run("CopyAsksTheTargetItself", func(t *testing.T) {
		src := registrytest.Start(t, registrytest.Config{})
		dst := registrytest.Start(t, registrytest.Config{})
		want := src.Push(t, "team/tool", "v1", smallImage("tool"))
		mirror.Push(t, "team/tool", "v1", smallImage("tool")) // a mirror that would say the target has it
		r := Roots(t, nil, "copy", "--cache=no", "--mirror", "http://"+mirror.Host, src.Host+"/team/tool:v1", dst.Host+"/team/tool:v1")
		if r.Code != 0 {
			t.Fatalf("copy: exit %d: %s", r.Code, r.Stderr)
		}
		put := false
		for _, q := range dst.Requests() {
			put = put || (q.Method == "PUT" && strings.HasSuffix(q.Path, "/manifests/v1"))
		}
		if !put {
			t.Errorf("the target got no manifest: the copy believed a mirror about it")
		}
		r = Roots(t, nil, "digest", dst.Host+"/team/tool:v1")
		if strings.TrimSpace(r.Stdout) != want.Digest.String() {
			t.Errorf("target digest %q, want %s (%s)", r.Stdout, want.Digest, r.Stderr)
		}
	})

	t.Run("RegistriesConfInsecureMirror", func(t *testing.T) {
		server := deadAddr(t)
		conf := filepath.Join(t.TempDir(), "registries.conf")
		body := fmt.Sprintf("[[registry]]\nprefix = %q\n[[registry.mirror]]\nlocation = %q\ninsecure = true\n", server+"/library", mirror.Host+"/library")
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		r := Roots(t, []string{"CONTAINERS_REGISTRIES_CONF=" + conf}, "digest", "--verbose", server+"/library/alpine")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != img.Digest.String() {
			t.Fatalf("exit %d, %q: %s", r.Code, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stderr, "manifest "+server+"/library/alpine:latest from http://"+mirror.Host+"/v2") { // loopback: plain HTTP
			t.Errorf("--verbose: %s", r.Stderr)
		}
	})

	t.Run("BadHostsTomlNamesFileAndKey", func(t *testing.T) {
		dir := hostsToml(t, mirror.Host, "[host.\"http://"+dead+"\"]\n  skip_verfy = true\n")
		r := Roots(t, []string{"ROOTS_HOSTS_DIR=" + dir}, "digest", mirror.Host+"/library/alpine")
		if r.Code != 2 || !strings.Contains(r.Stderr, filepath.Join(dir, mirror.Host, "hosts.toml")) || !strings.Contains(r.Stderr, "skip_verfy") {
			t.Errorf("exit %d: %s", r.Code, r.Stderr)
		}
	})
}
