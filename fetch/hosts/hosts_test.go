package hosts

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rootsdev/roots/fetch"
)

// write creates files under dir (name → content) and returns dir.
func write(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// short is an endpoint as "ROOT REPO caps[ server]".
func short(eps []fetch.Endpoint) []string {
	var out []string
	for _, e := range eps {
		s := e.Root + " " + e.Repo + " "
		if e.Pull {
			s += "p"
		}
		if e.Resolve {
			s += "r"
		}
		if e.Server {
			s += " server"
		}
		if e.TagOnly {
			s += " tag-only"
		}
		out = append(out, s)
	}
	return out
}

func TestHostsEndpoints(t *testing.T) {
	tests := []struct {
		name    string
		hosts   map[string]string // under the hosts dir
		conf    string            // registries.conf
		mirrors []string
		ref     string // domain/path
		want    []string
	}{
		{
			name: "no configuration is the registry itself",
			ref:  "docker.io/library/alpine",
			want: []string{"https://registry-1.docker.io/v2 library/alpine pr server"},
		},
		{
			name: "hosts in file order, then the server",
			hosts: map[string]string{"docker.io/hosts.toml": `
server = "https://registry-1.docker.io"
[host."http://127.0.0.1:5002"]
  capabilities = ["pull", "resolve"]
[host."https://b.example:5000"]
  capabilities = ["pull"]
[host."a.example"]
`},
			ref: "docker.io/library/alpine",
			want: []string{
				"http://127.0.0.1:5002/v2 library/alpine pr",
				"https://b.example:5000/v2 library/alpine p",
				"https://a.example/v2 library/alpine pr",
				"https://registry-1.docker.io/v2 library/alpine pr server",
			},
		},
		{
			name: "override_path: the URL path is the API root",
			hosts: map[string]string{"reg.example/hosts.toml": `
[host."https://harbor.example/v2/proxy-project"]
  override_path = true
[host."https://other.example/prefix"]
`},
			ref: "reg.example/team/app",
			want: []string{
				"https://harbor.example/v2/proxy-project team/app pr",
				"https://other.example/prefix/v2 team/app pr",
				"https://reg.example/v2 team/app pr server",
			},
		},
		{
			name:  "containerd's host_port_ directory",
			hosts: map[string]string{"127.0.0.1_5000_/hosts.toml": `[host."http://127.0.0.1:6000"]` + "\n"},
			ref:   "127.0.0.1:5000/x",
			want:  []string{"http://127.0.0.1:6000/v2 x pr", "https://127.0.0.1:5000/v2 x pr server"},
		},
		{
			name:  "_default for registries without their own",
			hosts: map[string]string{"_default/hosts.toml": `[host."http://127.0.0.1:6000"]` + "\n", "q.example/hosts.toml": ""},
			ref:   "ghcr.io/o/r",
			want:  []string{"http://127.0.0.1:6000/v2 o/r pr", "https://ghcr.io/v2 o/r pr server"},
		},
		{
			name: "registries.conf mirrors, location and prefix rewriting",
			conf: `
unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5002"
[[registry.mirror]]
location = "mirror.example/hub"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.example"
pull-from-mirror = "tag-only"
[[registry]]
prefix = "example.com/team"
location = "internal.example:5000/ext/team"
`,
			ref: "docker.io/library/alpine",
			want: []string{
				"https://127.0.0.1:5002/v2 library/alpine pr",
				"https://mirror.example/v2 hub/library/alpine p",
				"https://tags.example/v2 library/alpine pr tag-only",
				"https://registry-1.docker.io/v2 library/alpine pr server",
			},
		},
		{
			name: "registries.conf location with a path",
			conf: `
[[registry]]
prefix = "example.com/team"
location = "internal.example:5000/ext/team"
[[registry]]
prefix = "example.com"
`,
			ref:  "example.com/team/app",
			want: []string{"https://internal.example:5000/v2 ext/team/app pr server"},
		},
		{
			name:  "hosts.toml wins over registries.conf",
			hosts: map[string]string{"docker.io/hosts.toml": `[host."http://127.0.0.1:7000"]` + "\n"},
			conf:  "[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"127.0.0.1:5002\"\n",
			ref:   "docker.io/library/alpine",
			want:  []string{"http://127.0.0.1:7000/v2 library/alpine pr", "https://registry-1.docker.io/v2 library/alpine pr server"},
		},
		{
			name:    "--mirror comes first",
			hosts:   map[string]string{"docker.io/hosts.toml": `[host."http://127.0.0.1:7000"]` + "\n"},
			mirrors: []string{"http://127.0.0.1:9000", "127.0.0.1:9001"},
			ref:     "docker.io/library/alpine",
			want: []string{
				"http://127.0.0.1:9000/v2 library/alpine pr",
				"https://127.0.0.1:9001/v2 library/alpine pr",
				"http://127.0.0.1:7000/v2 library/alpine pr",
				"https://registry-1.docker.io/v2 library/alpine pr server",
			},
		},
		{
			name: "hosts.toml server replaces the registry",
			hosts: map[string]string{"docker.io/hosts.toml": `server = "http://127.0.0.1:1"
[host."http://127.0.0.1:7000"]
  capabilities = ["pull", "resolve", "push"]
`},
			ref:  "docker.io/library/alpine",
			want: []string{"http://127.0.0.1:7000/v2 library/alpine pr", "http://127.0.0.1:1/v2 library/alpine pr server"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{HostsDir: write(t, filepath.Join(dir, "hosts.d"), tt.hosts), Mirrors: tt.mirrors}
			if tt.conf != "" {
				cfg.RegistriesConf = filepath.Join(write(t, dir, map[string]string{"registries.conf": tt.conf}), "registries.conf")
			}
			var notes []string
			cfg.Note = func(s string) { notes = append(notes, s) }
			s, err := Load(cfg)
			if err != nil {
				t.Fatal(err)
			}
			domain, path, _ := strings.Cut(tt.ref, "/")
			eps, err := s.Endpoints(domain, path)
			if err != nil {
				t.Fatal(err)
			}
			if got := short(eps); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("endpoints\n got %q\nwant %q", got, tt.want)
			}
			if tt.hosts != nil && tt.conf != "" && len(notes) != 1 {
				t.Errorf("notes %q, want one saying hosts.toml wins", notes)
			}
		})
	}
}

func TestHostsBlocked(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{"registries.conf": "[[registry]]\nprefix = \"example.com/bad\"\nblocked = true\n"})
	s, err := Load(Config{RegistriesConf: filepath.Join(dir, "registries.conf")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Endpoints("example.com", "bad/app"); !errors.Is(err, ErrBlocked) {
		t.Errorf("blocked: got %v", err)
	}
	if _, err := s.Endpoints("example.com", "good/app"); err != nil {
		t.Errorf("not blocked: got %v", err)
	}
}

func TestHostsConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // "hosts.d/X/hosts.toml" or "registries.conf"
		body string
		want []string // in the error
	}{
		{"unknown top-level key", "hosts.d/docker.io/hosts.toml", "sever = \"https://x\"\n", []string{"docker.io/hosts.toml", "unknown key sever"}},
		{"unknown host key", "hosts.d/docker.io/hosts.toml", "[host.\"http://127.0.0.1:5\"]\n  capabilites = [\"pull\"]\n", []string{"docker.io/hosts.toml", "capabilites"}},
		{"bad TOML", "hosts.d/docker.io/hosts.toml", "[host.\"http://x\"\n", []string{"docker.io/hosts.toml", "line 2", "table name"}},
		{"unknown capability", "hosts.d/docker.io/hosts.toml", "[host.\"http://x\"]\n  capabilities = [\"pul\"]\n", []string{"docker.io/hosts.toml", `"pul"`}},
		{"ca of the wrong type", "hosts.d/docker.io/hosts.toml", "[host.\"http://x\"]\n  ca = 3\n", []string{"docker.io/hosts.toml", "ca"}},
		{"registries.conf unknown key", "registries.conf", "[[registry]]\nprefix = \"x\"\nmirrors = []\n", []string{"registries.conf", "registry.mirrors"}},
		{"registries.conf v1 and v2", "registries.conf", "[registries.search]\nregistries = [\"docker.io\"]\n[[registry]]\nprefix = \"x\"\n", []string{"registries.conf", "v1"}},
		{"registries.conf v1 unknown key", "registries.conf", "[registries.serch]\nregistries = [\"docker.io\"]\n", []string{"registries.conf", "registries.serch"}},
		{"registries.conf bad TOML", "registries.conf", "[[registry]\n", []string{"registries.conf", "line 2"}},
		{"mirror with a scheme", "registries.conf", "[[registry]]\nprefix = \"x\"\n[[registry.mirror]]\nlocation = \"http://m\"\n", []string{"registries.conf", "no scheme"}},
		{"empty host URL", "hosts.d/docker.io/hosts.toml", "[host.\"\"]\n", []string{"docker.io/hosts.toml", "needs a URL"}},
		{"pull-from-mirror", "registries.conf", "[[registry]]\nprefix = \"x\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"sometimes\"\n", []string{"registries.conf", "sometimes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := write(t, t.TempDir(), map[string]string{tt.file: tt.body})
			_, err := Load(Config{HostsDir: filepath.Join(dir, "hosts.d"), RegistriesConf: filepath.Join(dir, "registries.conf")})
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestHostsRegistriesConfV1(t *testing.T) {
	dir := write(t, t.TempDir(), map[string]string{"registries.conf": `
[registries.search]
registries = ["docker.io", "quay.io"]
[registries.insecure]
registries = ["insecure.example:5000"]
[registries.block]
registries = ["blocked.example"]
`})
	s, err := Load(Config{RegistriesConf: filepath.Join(dir, "registries.conf")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Endpoints("blocked.example", "app"); !errors.Is(err, ErrBlocked) {
		t.Errorf("blocked: %v", err)
	}
	tr, err := s.Trust("insecure.example:5000")
	if err != nil || !tr.Insecure {
		t.Errorf("insecure: %+v, %v", tr, err)
	}
	eps, err := s.Endpoints("docker.io", "library/alpine")
	if err != nil || len(eps) != 1 || eps[0].Host != "registry-1.docker.io" {
		t.Errorf("docker.io: %q, %v", short(eps), err)
	}
}

func TestHostsDropIns(t *testing.T) {
	dir := write(t, t.TempDir(), map[string]string{
		"registries.conf":           "[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"a.example\"\n",
		"registries.conf.d/10.conf": "[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"b.example\"\n",
	})
	s, err := Load(Config{RegistriesConf: filepath.Join(dir, "registries.conf"), RegistriesConfDir: filepath.Join(dir, "registries.conf.d")})
	if err != nil {
		t.Fatal(err)
	}
	eps, err := s.Endpoints("docker.io", "library/alpine")
	if err != nil {
		t.Fatal(err)
	}
	if eps[0].Host != "b.example" || len(eps) != 2 {
		t.Errorf("the drop-in's entry should replace the file's: %q", short(eps))
	}
}
