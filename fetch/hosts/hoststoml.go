package hosts

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// hostsFile is one parsed hosts.toml: its hosts in file order, then the
// server.
type hostsFile struct {
	path   string
	hosts  []host
	server host // root "" when the file names no server: the registry itself, with the file's top-level settings
}

// host is one [host."URL"] table (or the file's top level, for the server).
type host struct {
	scheme, addr string // "https", "mirror:5000"
	root         string // API root path: "/v2", or the URL's path with override_path
	pull         bool
	resolve      bool
	skipVerify   *bool
	ca           []string    // CA files, absolute
	clients      [][2]string // cert, key ("" = in the cert file)
	header       http.Header
	dialTimeout  time.Duration
	file         string // the hosts.toml it comes from
}

// rootURL is the host's API root as a URL.
func (h host) rootURL() string { return h.scheme + "://" + h.addr + h.root }

// fileHost is the TOML shape of a host table, and of a file's top level.
type fileHost struct {
	Capabilities []string       `toml:"capabilities"`
	CA           any            `toml:"ca"`
	Client       any            `toml:"client"`
	SkipVerify   *bool          `toml:"skip_verify"`
	Header       map[string]any `toml:"header"`
	OverridePath bool           `toml:"override_path"`
	DialTimeout  string         `toml:"dial_timeout"`
}

// fileHosts is the TOML shape of a hosts.toml.
type fileHosts struct {
	Server string `toml:"server"`
	fileHost
	Host map[string]fileHost `toml:"host"`
}

// readHostsFile reads and checks file. Relative paths in it (ca, client)
// are relative to its directory, as in containerd.
func readHostsFile(file string) (*hostsFile, error) {
	var raw fileHosts
	md, err := toml.DecodeFile(file, &raw)
	if err != nil {
		return nil, fileError(file, err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		return nil, fmt.Errorf("%s: unknown key %s: %w", file, keys[0], ErrConfig)
	}
	dir := filepath.Dir(file)
	f := &hostsFile{path: file}
	for _, k := range md.Keys() {
		if len(k) != 2 || k[0] != "host" {
			continue
		}
		if k[1] == "" {
			return nil, fmt.Errorf("%s: %s: a host table needs a URL: %w", file, k, ErrConfig)
		}
		h, err := parseHost(k[1], raw.Host[k[1]], dir, file)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, k, err)
		}
		f.hosts = append(f.hosts, h)
	}
	f.server, err = parseHost(raw.Server, raw.fileHost, dir, file)
	if err != nil {
		key := "server"
		if raw.Server == "" {
			key = "top level"
		}
		return nil, fmt.Errorf("%s: %s: %w", file, key, err)
	}
	return f, nil
}

// fileError names file in a read or parse error.
func fileError(file string, err error) error {
	var perr toml.ParseError
	if errors.As(err, &perr) {
		return fmt.Errorf("%s: line %d: %s: %w", file, perr.Position.Line, perr.Message, ErrConfig)
	}
	return fmt.Errorf("%s: %w", file, err)
}

// parseHost reads one host table. rawURL "" is the registry itself (the
// file's top level without server).
func parseHost(rawURL string, fh fileHost, dir, file string) (host, error) {
	h := host{file: file, skipVerify: fh.SkipVerify}
	if rawURL != "" {
		var err error
		if h.scheme, h.addr, h.root, err = parseHostURL(rawURL, fh.OverridePath); err != nil {
			return host{}, err
		}
	}
	if len(fh.Capabilities) == 0 {
		h.pull, h.resolve = true, true
	}
	for _, c := range fh.Capabilities {
		switch c {
		case "pull":
			h.pull = true
		case "resolve":
			h.resolve = true
		case "push": // roots pushes to the registry itself only
		default:
			return host{}, fmt.Errorf("capabilities: unknown capability %q (pull, resolve, push): %w", c, ErrConfig)
		}
	}
	var err error
	if h.ca, err = stringList("ca", fh.CA, dir); err != nil {
		return host{}, err
	}
	if h.clients, err = clientPairs(fh.Client, dir); err != nil {
		return host{}, err
	}
	if h.header, err = headers(fh.Header); err != nil {
		return host{}, err
	}
	if fh.DialTimeout != "" {
		if h.dialTimeout, err = time.ParseDuration(fh.DialTimeout); err != nil || h.dialTimeout <= 0 {
			return host{}, fmt.Errorf("dial_timeout %q: not a positive duration: %w", fh.DialTimeout, ErrConfig)
		}
	}
	return h, nil
}

// parseHostURL reads a host URL as containerd does: no scheme is https; the
// path gets "/v2" appended unless it ends with it, or unless overridePath,
// where the path is the API root itself.
func parseHostURL(raw string, overridePath bool) (scheme, addr, root string, err error) {
	s := raw
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		if strings.Contains(s, "://") {
			return "", "", "", fmt.Errorf("%q: only http and https hosts: %w", raw, ErrConfig)
		}
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", "", "", fmt.Errorf("%q: not a host URL (scheme://host[:port][/path]): %w", raw, ErrConfig)
	}
	root = u.Path
	if root != "" {
		root = path.Clean(root)
	}
	if !overridePath && !strings.HasSuffix(root, "/v2") {
		root += "/v2"
	}
	return u.Scheme, u.Host, strings.TrimSuffix(root, "/"), nil
}

// stringList reads a TOML string or list of strings as file paths relative
// to dir.
func stringList(key string, v any, dir string) ([]string, error) {
	var out []string
	switch v := v.(type) {
	case nil:
	case string:
		out = append(out, absIn(dir, v))
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s: %v is not a string: %w", key, e, ErrConfig)
			}
			out = append(out, absIn(dir, s))
		}
	default:
		return nil, fmt.Errorf("%s: want a string or a list of strings: %w", key, ErrConfig)
	}
	return out, nil
}

// clientPairs reads client: a file holding both cert and key, a list of
// such files, or a list of [cert, key] pairs.
func clientPairs(v any, dir string) ([][2]string, error) {
	var pairs [][2]string
	switch v := v.(type) {
	case nil:
	case string:
		pairs = append(pairs, [2]string{absIn(dir, v), ""})
	case []any:
		for _, e := range v {
			switch e := e.(type) {
			case string:
				pairs = append(pairs, [2]string{absIn(dir, e), ""})
			case []any:
				files, err := stringList("client", e, dir)
				if err != nil || len(files) != 2 {
					return nil, fmt.Errorf("client: a pair is [cert, key]: %w", ErrConfig)
				}
				pairs = append(pairs, [2]string{files[0], files[1]})
			default:
				return nil, fmt.Errorf("client: %v is not a file or a [cert, key] pair: %w", e, ErrConfig)
			}
		}
	default:
		return nil, fmt.Errorf("client: want a file, a list of files or of [cert, key] pairs: %w", ErrConfig)
	}
	return pairs, nil
}

// headers reads [header]: name = "value" or ["values"].
func headers(m map[string]any) (http.Header, error) {
	if len(m) == 0 {
		return nil, nil
	}
	h := http.Header{}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			h.Add(k, v)
		case []any:
			for _, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("header.%s: %v is not a string: %w", k, e, ErrConfig)
				}
				h.Add(k, s)
			}
		default:
			return nil, fmt.Errorf("header.%s: want a string or a list of strings: %w", k, ErrConfig)
		}
	}
	return h, nil
}

func absIn(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// readHostsDir reads every DIR/<name>/hosts.toml; the map's keys are
// registry names ("docker.io", "mirror:5000", "_default"), containerd's
// "host_port_" directory names read as "host:port".
func readHostsDir(dir string) (map[string]*hostsFile, error) {
	files := map[string]*hostsFile{}
	if dir == "" {
		return files, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return files, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hosts directory: %w", err)
	}
	for _, e := range entries {
		file := filepath.Join(dir, e.Name(), "hosts.toml")
		if _, err := os.Stat(file); err != nil {
			continue // a certs.d directory without hosts.toml: certificates only
		}
		f, err := readHostsFile(file)
		if err != nil {
			return nil, err
		}
		files[registryName(e.Name())] = f
	}
	return files, nil
}

// registryName reads containerd's "host_port_" directory name as "host:port".
func registryName(dir string) string {
	if base, ok := strings.CutSuffix(dir, "_"); ok {
		if i := strings.LastIndex(base, "_"); i > 0 {
			return base[:i] + ":" + base[i+1:]
		}
	}
	return dir
}
