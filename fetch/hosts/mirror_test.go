package hosts_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/fetch/hosts"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// testImage is a small two-layer image for this platform; mark makes
// images differ.
func testImage(mark string) registrytest.Image {
	return registrytest.Image{
		Layers: []registrytest.Layer{
			{Entries: []registrytest.Entry{{Name: "etc/os-release", Body: []byte("ID=" + mark + "\n")}}, Compression: registrytest.Gzip},
			{Entries: []registrytest.Entry{{Name: "mark", Body: []byte(mark)}}, Compression: registrytest.Gzip},
		},
		OS: "linux", Arch: runtime.GOARCH, Variant: fetch.HostPlatform().Variant, Format: registrytest.OCI,
	}
}

// deadHost is a loopback address nothing listens on: connections are refused.
func deadHost(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// hostsDir writes DIR/<name>/hosts.toml files and returns DIR.
func hostsDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "hosts.toml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// served records which host served what (Options.Served).
type served struct {
	mu   sync.Mutex
	list []fetch.Served
}

func (s *served) add(v fetch.Served) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, v)
}

// hosts counts the objects each host served: "ROOT kind" → n.
func (s *served) hosts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[string]int{}
	for _, v := range s.list {
		n[v.Host+" "+v.Kind]++
	}
	return n
}

// client loads cfg and returns a client using it, with short retries.
func client(t *testing.T, cfg hosts.Config, rec *served) *fetch.Client {
	t.Helper()
	set, err := hosts.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return newClient(set, rec, 2)
}

// newClient is a client for set with attempts per request.
func newClient(set *hosts.Set, rec *served, attempts int) *fetch.Client {
	return fetch.New(fetch.Options{Endpoints: set.Endpoints, Trust: set.Trust, Served: rec.add, Retries: attempts, Backoff: 5 * time.Millisecond})
}

// pull resolves ref and reads every layer (the content is verified by
// Resolve for manifests and config, and hashed here for layers).
func pull(t *testing.T, c *fetch.Client, ref string) (*fetch.Image, error) {
	t.Helper()
	r, err := fetch.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := c.Resolve(t.Context(), r, nil)
	if err != nil {
		return nil, err
	}
	for _, l := range img.Layers {
		rc, err := c.OpenBlob(t.Context(), r, l)
		if err != nil {
			return nil, err
		}
		h := l.Digest.Algorithm().Hash()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if got := fmt.Sprintf("%s:%x", l.Digest.Algorithm(), h.Sum(nil)); got != l.Digest.String() {
			return nil, fmt.Errorf("layer %s hashes to %s", l.Digest, got)
		}
	}
	return img, nil
}

// counts sums a registry's log: manifest GETs and HEADs, blob GETs, other
// (401 challenges aside).
func counts(r *registrytest.Registry) string {
	var man, head, blob, other int
	for _, q := range r.Requests() {
		switch {
		case q.Status == 401:
		case q.Method == "HEAD" && strings.Contains(q.Path, "/manifests/"):
			head++
		case q.Method == "GET" && strings.Contains(q.Path, "/manifests/"):
			man++
		case q.Method == "GET" && strings.Contains(q.Path, "/blobs/"):
			blob++
		default:
			other++
		}
	}
	return fmt.Sprintf("manifest GET %d, HEAD %d, blob GET %d, other %d", man, head, blob, other)
}

func TestMirrorFallbackPastDeadAnd404ToServer(t *testing.T) {
	server := registrytest.Start(t, registrytest.Config{})
	empty := registrytest.Start(t, registrytest.Config{})
	want := server.Push(t, "team/app", "v1", testImage("server"))
	dead := deadHost(t)
	dir := hostsDir(t, map[string]string{server.Host: fmt.Sprintf(`
[host."http://%s"]
[host."http://%s"]
  capabilities = ["pull", "resolve"]
`, dead, empty.Host)})
	rec := &served{}
	c := client(t, hosts.Config{HostsDir: dir}, rec)

	img, err := pull(t, c, server.Host+"/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != want.Digest {
		t.Fatalf("digest %s, want %s", img.Digest, want.Digest)
	}
	// The empty mirror is asked for the tag, the config and both layers (404 each);
	// the dead host refuses the first connection and is not tried again.
	if got, want := counts(empty), "manifest GET 1, HEAD 0, blob GET 3, other 0"; got != want {
		t.Errorf("404ing mirror: %s, want %s", got, want)
	}
	if got, want := counts(server), "manifest GET 1, HEAD 0, blob GET 3, other 0"; got != want {
		t.Errorf("server: %s, want %s", got, want)
	}
	t.Logf("dead %s: refused; mirror %s: %s; server %s: %s", dead, empty.Host, counts(empty), server.Host, counts(server))
	if got := rec.hosts(); got["http://"+server.Host+"/v2 manifest"] != 1 || got["http://"+server.Host+"/v2 blob"] != 3 || len(got) != 2 {
		t.Errorf("served: %v", got)
	}

	// Nobody has it: the error names every host tried.
	_, err = pull(t, c, server.Host+"/team/app:missing")
	if err == nil {
		t.Fatal("pulled a tag nobody has")
	}
	for _, h := range []string{dead, empty.Host, server.Host} {
		if !strings.Contains(err.Error(), h) {
			t.Errorf("error %q does not name %s", err, h)
		}
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "tried 3 hosts") {
		t.Errorf("error %q: want tried 3 hosts", err)
	}
}

func TestMirrorCapabilities(t *testing.T) {
	tests := []struct {
		name         string
		capabilities string
		wantFrom     string // "server" or "mirror": whose image the tag resolves to
	}{
		{"PullOnlyNeverAnswersTags", `["pull"]`, "server"},
		{"PullAndResolveAnswersTags", `["pull", "resolve"]`, "mirror"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := registrytest.Start(t, registrytest.Config{})
			mirror := registrytest.Start(t, registrytest.Config{})
			onServer := server.Push(t, "team/app", "v1", testImage("server"))
			mirror.Push(t, "team/app", "cached", testImage("server")) // the server's image, by digest
			other := mirror.Push(t, "team/app", "v1", testImage("mirror"))
			dir := hostsDir(t, map[string]string{server.Host: fmt.Sprintf("[host.\"http://%s\"]\n  capabilities = %s\n", mirror.Host, tt.capabilities)})
			rec := &served{}
			c := client(t, hosts.Config{HostsDir: dir}, rec)

			img, err := pull(t, c, server.Host+"/team/app:v1")
			if err != nil {
				t.Fatal(err)
			}
			want := onServer.Digest
			if tt.wantFrom == "mirror" {
				want = other.Digest
			}
			if img.Digest != want {
				t.Errorf("v1 resolved to %s, want the %s's %s", img.Digest, tt.wantFrom, want)
			}
			for _, q := range mirror.Requests() {
				if strings.HasSuffix(q.Path, "/manifests/v1") && tt.wantFrom == "server" {
					t.Errorf("a pull-only mirror was asked for a tag: %s %s", q.Method, q.Path)
				}
			}
			got := rec.hosts()
			mirrorRoot := "http://" + mirror.Host + "/v2"
			if got[mirrorRoot+" blob"] != 3 {
				t.Errorf("served %v: want the config and both layers from the mirror", got)
			}
			t.Logf("mirror: %s; server: %s; served %v", counts(mirror), counts(server), got)
			switch tt.wantFrom {
			case "server":
				if got, want := counts(server), "manifest GET 1, HEAD 0, blob GET 0, other 0"; got != want {
					t.Errorf("server: %s, want %s (the tag only)", got, want)
				}
			case "mirror":
				if got := counts(server); got != "manifest GET 0, HEAD 0, blob GET 0, other 0" {
					t.Errorf("server: %s, want no request", got)
				}
			}
		})
	}
}

func TestMirrorDockerHubNamesWithoutInternet(t *testing.T) {
	mirror := registrytest.Start(t, registrytest.Config{})
	want := mirror.Push(t, "library/alpine", "latest", testImage("alpine"))
	dead := deadHost(t)
	// server is a dead loopback port: nothing can reach registry-1.docker.io.
	dir := hostsDir(t, map[string]string{"docker.io": fmt.Sprintf("server = \"http://%s\"\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", dead, mirror.Host)})
	rec := &served{}
	c := client(t, hosts.Config{HostsDir: dir}, rec)
	img, err := pull(t, c, "alpine")
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != want.Digest {
		t.Errorf("digest %s, want %s", img.Digest, want.Digest)
	}
	r, _ := fetch.ParseReference("alpine")
	d, err := c.Digest(t.Context(), r, nil)
	if err != nil || d != want.Digest {
		t.Errorf("Digest: %s, %v; want %s", d, err, want.Digest)
	}
	for k := range rec.hosts() {
		if !strings.HasPrefix(k, "http://"+mirror.Host+"/") {
			t.Errorf("served by %s", k)
		}
	}
	t.Logf("mirror %s: %s", mirror.Host, counts(mirror))
}

func TestMirrorFlagAndRegistriesConf(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(t *testing.T, server, mirror string) hosts.Config
	}{
		{"--mirror", func(t *testing.T, server, mirror string) hosts.Config {
			return hosts.Config{Mirrors: []string{"http://" + mirror}}
		}},
		{"registries.conf", func(t *testing.T, server, mirror string) hosts.Config {
			dir := t.TempDir()
			conf := filepath.Join(dir, "registries.conf")
			body := fmt.Sprintf("[[registry]]\nprefix = %q\n[[registry.mirror]]\nlocation = %q\n", server, mirror+"/cache")
			if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			return hosts.Config{RegistriesConf: conf}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mirror := registrytest.Start(t, registrytest.Config{})
			server := registrytest.Start(t, registrytest.Config{})
			repo := "team/app"
			if tt.name == "registries.conf" {
				repo = "cache/team/app" // the mirror's location has a path: it prefixes the repository
			}
			want := mirror.Push(t, repo, "v1", testImage("m"))
			rec := &served{}
			c := client(t, tt.cfg(t, server.Host, mirror.Host), rec)
			img, err := pull(t, c, server.Host+"/team/app:v1")
			if err != nil {
				t.Fatal(err)
			}
			if img.Digest != want.Digest {
				t.Errorf("digest %s, want %s", img.Digest, want.Digest)
			}
			if got := counts(server); got != "manifest GET 0, HEAD 0, blob GET 0, other 0" {
				t.Errorf("server: %s, want nothing", got)
			}
			if got, want := counts(mirror), "manifest GET 1, HEAD 0, blob GET 3, other 0"; got != want {
				t.Errorf("mirror: %s, want %s", got, want)
			}
		})
	}
}

func TestMirrorOverridePath(t *testing.T) {
	harbor := registrytest.Start(t, registrytest.Config{})
	want := harbor.Push(t, "proxy-project/team/app", "v1", testImage("harbor"))
	dead := deadHost(t)
	dir := hostsDir(t, map[string]string{"reg.example": fmt.Sprintf("server = \"http://%s\"\n[host.\"http://%s/v2/proxy-project\"]\n  override_path = true\n", dead, harbor.Host)})
	c := client(t, hosts.Config{HostsDir: dir}, &served{})
	img, err := pull(t, c, "reg.example/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != want.Digest {
		t.Errorf("digest %s, want %s", img.Digest, want.Digest)
	}
	var paths []string
	for _, q := range harbor.Requests() {
		paths = append(paths, q.Path)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if !strings.HasPrefix(p, "/v2/proxy-project/team/app/") {
			t.Errorf("request to %s", p)
		}
	}
}

func TestMirrorTLSTrust(t *testing.T) {
	// certsDir is a certs.d root holding, for r's host, files copied from r's (name: path).
	certsDir := func(t *testing.T, r *registrytest.Registry, files map[string]string) string {
		root := filepath.Join(t.TempDir(), "containers", "certs.d")
		if err := os.MkdirAll(filepath.Join(root, r.Host), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, from := range files {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, r.Host, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	tests := []struct {
		name     string
		mutual   bool // the registry demands a client certificate
		setup    func(t *testing.T, r *registrytest.Registry) hosts.Config
		wantErr  []string
		wantWarn int
	}{
		{"CertsDirClientPair", true, func(t *testing.T, r *registrytest.Registry) hosts.Config {
			return hosts.Config{CertsDirs: []string{certsDir(t, r, map[string]string{"ca.crt": r.CAFile, "client.cert": r.ClientCertFile, "client.key": r.ClientKeyFile})}}
		}, nil, 0},
		{"NoClientPair", true, func(t *testing.T, r *registrytest.Registry) hosts.Config {
			return hosts.Config{CertsDirs: []string{certsDir(t, r, map[string]string{"ca.crt": r.CAFile})}}
		}, []string{"demands a client certificate", "certificate required", "*.cert, *.key"}, 0},
		{"NoTrustNamesThePlaces", false, func(t *testing.T, r *registrytest.Registry) hosts.Config {
			return hosts.Config{CertsDirs: []string{filepath.Join(t.TempDir(), "docker", "certs.d")}}
		}, []string{"certificate", "docker/certs.d/" + "HOST" + "/*.crt"}, 0},
		{"CertsDirCA", false, func(t *testing.T, r *registrytest.Registry) hosts.Config {
			root := filepath.Join(t.TempDir(), "containers", "certs.d")
			ca, err := os.ReadFile(r.CAFile)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(root, r.Host), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, r.Host, "ca.crt"), ca, 0o644); err != nil {
				t.Fatal(err)
			}
			return hosts.Config{CertsDirs: []string{t.TempDir(), root}}
		}, nil, 0},
		{"HostsTomlCA", false, func(t *testing.T, r *registrytest.Registry) hosts.Config {
			return hosts.Config{HostsDir: hostsDir(t, map[string]string{r.Host: fmt.Sprintf("ca = %q\n", r.CAFile)})}
		}, nil, 0},
		{"SkipVerify", false, func(t *testing.T, r *registrytest.Registry) hosts.Config {
			return hosts.Config{HostsDir: hostsDir(t, map[string]string{r.Host: "skip_verify = true\n"})}
		}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registrytest.Start(t, registrytest.Config{TLS: true, ClientCerts: tt.mutual})
			r.Push(t, "team/app", "v1", testImage("tls"))
			cfg := tt.setup(t, r)
			var warnings []string
			cfg.Warn = func(s string) { warnings = append(warnings, s) }
			c := client(t, cfg, &served{})
			for range 2 {
				_, err := pull(t, c, r.Host+"/team/app:v1")
				if len(tt.wantErr) == 0 && err != nil {
					t.Fatal(err)
				}
				if err != nil {
					t.Logf("error: %v", err)
				}
				for _, w := range tt.wantErr {
					w = strings.ReplaceAll(w, "HOST", r.Host)
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Fatalf("error %v does not say %q", err, w)
					}
				}
			}
			if len(warnings) != tt.wantWarn {
				t.Errorf("warnings %q, want %d", warnings, tt.wantWarn)
			}
		})
	}
}

func TestMirrorCredentialsStayWithTheirHost(t *testing.T) {
	server := registrytest.Start(t, registrytest.Config{Auth: registrytest.Basic})
	mirror := registrytest.Start(t, registrytest.Config{Auth: registrytest.Basic, Users: map[string]string{"bob": "other"}})
	want := server.Push(t, "team/app", "v1", testImage("private"))
	mirror.Push(t, "team/app", "v1", testImage("private"))
	config := filepath.Join(t.TempDir(), "config.json")
	cred := base64.StdEncoding.EncodeToString([]byte(server.User + ":" + server.Password))
	if err := os.WriteFile(config, []byte(`{"auths":{"`+server.Host+`":{"auth":"`+cred+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	kc, err := auth.NewKeychain(auth.Options{DockerConfig: config})
	if err != nil {
		t.Fatal(err)
	}
	set, err := hosts.Load(hosts.Config{Mirrors: []string{"http://" + mirror.Host}})
	if err != nil {
		t.Fatal(err)
	}
	c := fetch.New(fetch.Options{Keychain: kc, Endpoints: set.Endpoints, Trust: set.Trust, Retries: 2, Backoff: 5 * time.Millisecond})
	img, err := pull(t, c, server.Host+"/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != want.Digest {
		t.Errorf("digest %s, want %s", img.Digest, want.Digest)
	}
	for _, q := range mirror.Requests() {
		if a := q.Header.Get("Authorization"); a != "" {
			t.Errorf("the mirror got credentials: %s %s Authorization: %s", q.Method, q.Path, a)
		}
	}
	t.Logf("mirror (401s): %d requests; server: %s", len(mirror.Requests()), counts(server))
}

func TestMirrorSkips5xxAndBadManifests(t *testing.T) {
	manifests := func(req *http.Request) bool { return strings.Contains(req.URL.Path, "/manifests/") }
	tests := []struct {
		name       string
		faults     []registrytest.Fault
		wantMirror string // the fault front's log
	}{
		// Retries: 2, so each object is asked twice of the mirror before the server.
		{"503AfterRetries", []registrytest.Fault{{Kind: registrytest.Status, Code: 503, Match: func(*http.Request) bool { return true }}},
			"manifest GET 2, HEAD 0, blob GET 6"},
		// A manifest that does not hash to the digest the mirror itself announces.
		{"CorruptManifest", []registrytest.Fault{{Kind: registrytest.WrongBytes, Bytes: 10, Match: manifests}},
			"manifest GET 1, HEAD 0, blob GET 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := registrytest.Start(t, registrytest.Config{})
			mirror := registrytest.Start(t, registrytest.Config{})
			want := server.Push(t, "team/app", "v1", testImage("x"))
			mirror.Push(t, "team/app", "v1", testImage("x"))
			front := mirror.FaultFront(t, tt.faults...)
			rec := &served{}
			c := client(t, hosts.Config{Mirrors: []string{front.URL}}, rec)
			img, err := pull(t, c, server.Host+"/team/app:v1")
			if err != nil {
				t.Fatal(err)
			}
			if img.Digest != want.Digest {
				t.Errorf("digest %s, want %s", img.Digest, want.Digest)
			}
			log := registrytest.Count(front.Requests())
			var gets int
			for _, q := range front.Requests() {
				if q.Method == "GET" && strings.Contains(q.Path, "/manifests/") {
					gets++
				}
			}
			got := fmt.Sprintf("manifest GET %d, HEAD %d, blob GET %d", gets, log.Heads, log.BlobGets)
			if got != tt.wantMirror {
				t.Errorf("mirror: %s, want %s", got, tt.wantMirror)
			}
			t.Logf("mirror: %s; server: %s; served %v", got, counts(server), rec.hosts())
		})
	}
}

func TestMirrorTagOnly(t *testing.T) {
	server := registrytest.Start(t, registrytest.Config{})
	mirror := registrytest.Start(t, registrytest.Config{})
	want := server.Push(t, "team/app", "v1", testImage("t"))
	mirror.Push(t, "team/app", "v1", testImage("t"))
	conf := filepath.Join(t.TempDir(), "registries.conf")
	body := fmt.Sprintf("[[registry]]\nprefix = %q\n[[registry.mirror]]\nlocation = %q\npull-from-mirror = \"tag-only\"\n", server.Host, mirror.Host)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c := client(t, hosts.Config{RegistriesConf: conf}, &served{})
	if _, err := pull(t, c, server.Host+"/team/app:v1"); err != nil {
		t.Fatal(err)
	}
	if got := counts(server); got != "manifest GET 0, HEAD 0, blob GET 0, other 0" {
		t.Errorf("by tag, server: %s, want nothing", got)
	}
	mirror.ResetRequests()
	if _, err := pull(t, c, server.Host+"/team/app@"+want.Digest.String()); err != nil {
		t.Fatal(err)
	}
	if n := len(mirror.Requests()); n != 0 {
		t.Errorf("by digest, the tag-only mirror got %d requests", n)
	}
	t.Logf("by digest, server: %s", counts(server))
}

func TestMirrorHeaders(t *testing.T) {
	mirror := registrytest.Start(t, registrytest.Config{})
	server := registrytest.Start(t, registrytest.Config{})
	mirror.Push(t, "team/app", "v1", testImage("h"))
	dir := hostsDir(t, map[string]string{server.Host: fmt.Sprintf("[host.\"http://%s\"]\n  [host.\"http://%s\".header]\n    x-mirror-token = \"abc\"\n", mirror.Host, mirror.Host)})
	c := client(t, hosts.Config{HostsDir: dir}, &served{})
	if _, err := pull(t, c, server.Host+"/team/app:v1"); err != nil {
		t.Fatal(err)
	}
	for _, q := range mirror.Requests() {
		if q.Header.Get("X-Mirror-Token") != "abc" {
			t.Errorf("%s %s without the configured header", q.Method, q.Path)
		}
	}
	if n := len(server.Requests()); n != 0 {
		t.Errorf("server: %d requests", n)
	}
}

// TestRegistriesConfInsecureNonLoopback: registries.conf's insecure = true lets plain HTTP go to
// a host that is not loopback (here a name the test's dialer sends to a loopback registry);
// without it, the same pull is refused as plain HTTP.
func TestRegistriesConfInsecureNonLoopback(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	want := r.Push(t, "team/app", "v1", testImage("plain"))
	_, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		t.Fatal(err)
	}
	name := "plain.test:" + port
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == name {
			addr = r.Host
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	t.Cleanup(base.CloseIdleConnections)
	for _, insecure := range []bool{true, false} {
		conf := filepath.Join(t.TempDir(), "registries.conf")
		body := fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = %v\n", name, insecure)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		set, err := hosts.Load(hosts.Config{RegistriesConf: conf, HostsDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		c := fetch.New(fetch.Options{Endpoints: set.Endpoints, Trust: set.Trust, Transport: base, Retries: 1})
		img, err := pull(t, c, name+"/team/app:v1")
		switch {
		case insecure && (err != nil || img.Digest != want.Digest):
			t.Errorf("insecure = true: %v, want %s", err, want.Digest)
		case !insecure && !errors.Is(err, fetch.ErrPlainHTTP):
			t.Errorf("insecure = false: %v, want an error wrapping ErrPlainHTTP", err)
		}
	}
}
