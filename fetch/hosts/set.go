package hosts

import (
	"fmt"
	"strings"
	"sync"

	"github.com/rootsdev/roots/fetch"
)

// Config says where the configuration is. Empty fields are not read, so
// tests point every field at temporary directories.
type Config struct {
	HostsDir          string   // containerd's hosts.toml tree (also a certs.d root)
	RegistriesConf    string   // containers-registries.conf(5) file
	RegistriesConfDir string   // its drop-in directory (*.conf)
	CertsDirs         []string // certs.d roots: /etc/docker/certs.d, /etc/containers/certs.d
	Mirrors           []string // pull+resolve hosts in front of every registry (--mirror)
	// Warn gets the one-line warnings (a host whose certificates are not
	// verified), once per host; Note gets what --verbose shows (hosts.toml
	// taking a registry over from registries.conf), once per registry.
	Warn func(string)
	Note func(string)
}

// Set is the loaded configuration. It is safe for concurrent use.
type Set struct {
	cfg     Config
	files   map[string]*hostsFile // registry name ("docker.io", "_default") → its hosts.toml
	regs    []registry
	mirrors []host

	mu     sync.Mutex
	told   map[string]bool // warnings and notes given
	trusts map[string]trustEntry
}

// Load reads every file now, so that a configuration error stops a command
// before any request.
func Load(cfg Config) (*Set, error) {
	files, err := readHostsDir(cfg.HostsDir)
	if err != nil {
		return nil, err
	}
	regs, err := readRegistriesConf(cfg.RegistriesConf, cfg.RegistriesConfDir)
	if err != nil {
		return nil, err
	}
	s := &Set{cfg: cfg, files: files, regs: regs, told: map[string]bool{}, trusts: map[string]trustEntry{}}
	for _, m := range cfg.Mirrors {
		h := host{pull: true, resolve: true, file: "--mirror"}
		if h.scheme, h.addr, h.root, err = parseHostURL(m, false); err != nil {
			return nil, fmt.Errorf("--mirror %s: %w", m, err)
		}
		s.mirrors = append(s.mirrors, h)
	}
	return s, nil
}

// Endpoints lists the hosts that may serve pulls of domain/path, in the
// order they are tried: --mirror hosts, then the registry's hosts.toml
// hosts and its server, or else its registries.conf mirrors and location,
// or else _default's hosts and server, or else the registry itself.
func (s *Set) Endpoints(domain, path string) ([]fetch.Endpoint, error) {
	var eps []fetch.Endpoint
	for _, m := range s.mirrors {
		eps = append(eps, endpoint(m, path, false))
	}
	name := domain + "/" + path
	reg, inConf := match(s.regs, name)
	if inConf && reg.blocked {
		return nil, fmt.Errorf("%s is blocked by %s ([[registry]] prefix %q): %w", name, reg.file, reg.prefix, ErrBlocked)
	}
	if f, ok := s.files[domain]; ok {
		if inConf {
			s.tell(s.cfg.Note, "note "+domain, fmt.Sprintf("%s: %s configures %s; its registries.conf entry (prefix %q in %s) is not used", domain, f.path, domain, reg.prefix, reg.file))
		}
		return append(eps, fileEndpoints(f, domain, path)...), nil
	}
	if inConf {
		return append(eps, confEndpoints(reg, name)...), nil
	}
	if f, ok := s.files["_default"]; ok {
		return append(eps, fileEndpoints(f, domain, path)...), nil
	}
	return append(eps, registryItself(domain, path)), nil
}

// fileEndpoints are a hosts.toml's hosts, then its server.
func fileEndpoints(f *hostsFile, domain, path string) []fetch.Endpoint {
	var eps []fetch.Endpoint
	for _, h := range f.hosts {
		eps = append(eps, endpoint(h, path, false))
	}
	if f.server.addr == "" {
		srv := registryItself(domain, path)
		srv.Header = f.server.header
		return append(eps, srv)
	}
	srv := endpoint(f.server, path, true)
	return append(eps, srv)
}

// confEndpoints are a registries.conf entry's mirrors, then its location.
func confEndpoints(r registry, name string) []fetch.Endpoint {
	var eps []fetch.Endpoint
	for _, m := range r.mirrors {
		addr, repo := r.rewrite(name, m.location)
		eps = append(eps, fetch.Endpoint{Root: "https://" + apiHost(addr) + "/v2", Host: apiHost(addr), Repo: repo, Pull: m.pull, Resolve: m.resolve, TagOnly: m.tagOnly})
	}
	location := r.location
	if location == "" {
		location = r.prefix
		if strings.HasPrefix(location, "*") {
			domain, _, _ := strings.Cut(name, "/")
			location = domain
		}
	}
	addr, repo := r.rewrite(name, location)
	return append(eps, fetch.Endpoint{Root: "https://" + apiHost(addr) + "/v2", Host: apiHost(addr), Repo: repo, Pull: true, Resolve: true, Server: true})
}

// endpoint makes h an Endpoint for repository path.
func endpoint(h host, path string, server bool) fetch.Endpoint {
	return fetch.Endpoint{Root: h.rootURL(), Host: h.addr, Repo: path, Pull: h.pull, Resolve: h.resolve, Server: server, Header: h.header}
}

// registryItself is the registry's own API.
func registryItself(domain, path string) fetch.Endpoint {
	return fetch.Endpoint{Root: "https://" + apiHost(domain) + "/v2", Host: apiHost(domain), Repo: path, Pull: true, Resolve: true, Server: true}
}

// apiHost is the host serving a registry's API: registry-1.docker.io for
// Docker Hub.
func apiHost(domain string) string {
	if domain == "docker.io" || domain == "index.docker.io" {
		return "registry-1.docker.io"
	}
	return domain
}

// tell calls to with msg once per key.
func (s *Set) tell(to func(string), key, msg string) {
	if to == nil {
		return
	}
	s.mu.Lock()
	first := !s.told[key]
	s.told[key] = true
	s.mu.Unlock()
	if first {
		to(msg)
	}
}
