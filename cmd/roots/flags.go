package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/auth"
)

// cacheFlags choose the cache.
type cacheFlags struct {
	Cache *string `help:"Cache directory, or \"no\" to use none (layers stream straight into DEST). Default: /var/cache/roots as root, else $$XDG_CACHE_HOME/roots or ~/.cache/roots." env:"ROOTS_CACHE" placeholder:"DIR|no"`
}

// cacheDir returns the cache directory, or "" when the cache is off.
func (f cacheFlags) cacheDir(e *env) (string, error) {
	if f.Cache != nil {
		switch *f.Cache {
		case "no":
			return "", nil
		case "":
			return "", usagef(`--cache "" (or ROOTS_CACHE=""): name a directory, or "no" for no cache; leave both unset for the default`)
		}
		if looksLikeNo(*f.Cache) {
			return "", usagef(`--cache %s (or ROOTS_CACHE=%[1]s): for no cache write "no" (lower case); for a directory of that name write ./%[1]s`, *f.Cache)
		}
		switch *f.Cache {
		default:
			return filepath.Abs(*f.Cache)
		}
	}
	if os.Geteuid() == 0 {
		return "/var/cache/roots", nil
	}
	if x := e.getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "roots"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: %w (set --cache DIR or ROOTS_CACHE)", err)
	}
	return filepath.Join(home, ".cache", "roots"), nil
}

// looksLikeNo reports whether a cache setting other than "no" reads like one: "No", "NONE",
// "off", "false", "disable(d)"... A directory of such a name is still reachable as ./NAME.
func looksLikeNo(v string) bool {
	switch strings.ToLower(v) {
	case "no", "none", "off", "false", "disable", "disabled", "nocache", "no-cache":
		return v != "no"
	}
	return false
}

// offlineFlags keep a command off the network: it reads the cache alone.
type offlineFlags struct {
	Offline *bool `help:"Open no network connection: use the cache alone. A tag resolves through the cache's record of its last pull, a digest through the cached manifest; what the cache lacks is an error. Also ROOTS_OFFLINE=1 (0 or empty: online; --offline=false overrides it)."`
}

// offline reports whether the command runs offline: --offline, else ROOTS_OFFLINE, which is
// "1" (offline), "0" or empty (online); anything else ("true", "yes") is a usage error rather
// than a guess either way.
func (f offlineFlags) offline(e *env) (bool, error) {
	if f.Offline != nil {
		return *f.Offline, nil
	}
	switch v := e.getenv("ROOTS_OFFLINE"); v {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, usagef("ROOTS_OFFLINE=%s: write 1 to run offline, 0 (or leave it unset) to run online", v)
	}
}

// offlineCache is the cache of an offline command, which needs one.
func (f offlineFlags) offlineCache(cache string) error {
	if cache == "" {
		return usagef("--offline (or ROOTS_OFFLINE=1) with --cache=no: offline, the cache is all there is to read; drop --cache=no")
	}
	return nil
}

// registryFlags say how to reach and log in to registries.
type registryFlags struct {
	Insecure bool   `help:"Allow plain HTTP to registries that are not on loopback."`
	Auth     string `help:"Credentials file: a docker config.json, or a Google service-account key (used as _json_key)." type:"existingfile" placeholder:"FILE"`
	User     string `help:"Credentials for the registry. Without it, the first of --auth, $$REGISTRY_AUTH_FILE, docker's config.json and podman's auth.json files that has some for the registry." placeholder:"USER:PASS"`
	// Stalls: a connection is retried (from where it broke) and then given up.
	Timeout    time.Duration `default:"30s" help:"Retry, then give up on, a registry connection that sends nothing for this long."`
	SpeedLimit int64         `default:"1024" help:"Retry, then give up on, a transfer slower than this many bytes a second over --speed-time (0: no floor)." placeholder:"BYTES"`
	SpeedTime  time.Duration `default:"30s" help:"The window over which --speed-limit is measured."`
	// Mirrors: pulls go to the configured hosts first (push, copy targets and tags never).
	HostsDir string   `name:"hosts-dir" env:"ROOTS_HOSTS_DIR" help:"containerd hosts.toml directory: DIR/HOST[:PORT]/hosts.toml, DIR/_default/hosts.toml, docker.io for Docker Hub. Default: /etc/roots/hosts.d, else /etc/containerd/certs.d." placeholder:"DIR"`
	Mirror   []string `sep:"none" help:"A host to pull from before the registry's own (pull and resolve; repeatable; for this command)." placeholder:"URL"`
	Verbose  bool     `short:"v" help:"Say on stderr which host served each manifest and blob, and which mirror configuration applies."`
}

// options says how to reach registries, from these flags and the environment.
func (f registryFlags) options(e *env) (fetch.Options, error) {
	ao := authFiles(e)
	ao.User, ao.AuthFile = f.User, f.Auth
	kc, err := auth.NewKeychain(ao)
	if err != nil {
		return fetch.Options{}, err
	}
	if f.Timeout <= 0 || f.SpeedTime <= 0 || f.SpeedLimit < 0 {
		return fetch.Options{}, usagef("--timeout and --speed-time must be positive, --speed-limit 0 or more")
	}
	minSpeed := f.SpeedLimit
	if minSpeed == 0 {
		minSpeed = -1 // no floor
	}
	o := fetch.Options{
		IdleTimeout: f.Timeout,
		MinSpeed:    minSpeed,
		SpeedTime:   f.SpeedTime,
		Insecure:    f.Insecure,
		Keychain:    kc,
		UserAgent:   "roots/" + version,
		Backoff:     backoff(e),
	}
	if err := f.mirrors(e, &o); err != nil {
		return fetch.Options{}, err
	}
	return o, nil
}

// backoff lets tests shorten retry waits (ROOTS_TEST_BACKOFF=10ms); zero means the default.
func backoff(e *env) time.Duration {
	d, _ := time.ParseDuration(e.getenv("ROOTS_TEST_BACKOFF"))
	return d
}

// platformFlags choose one platform of a multi-platform image.
type platformFlags struct {
	Platform string `help:"Platform to pull from a multi-platform image (default: this host's)." placeholder:"OS/ARCH[/VARIANT]"`
	OS       string `name:"os" help:"Operating system part of --platform." placeholder:"OS"`
	Arch     string `help:"Architecture part of --platform." placeholder:"ARCH"`
	Variant  string `help:"Variant part of --platform (e.g. v7 for arm)." placeholder:"VARIANT"`
}

// platform returns the platform asked for, or nil when none was.
func (f platformFlags) platform() (*fetch.Platform, error) {
	if f.Platform != "" {
		if f.OS != "" || f.Arch != "" || f.Variant != "" {
			return nil, usagef("--platform and --os/--arch/--variant: give one or the other")
		}
		if !strings.Contains(f.Platform, "/") {
			return nil, usagef("--platform %q: want OS/ARCH[/VARIANT], e.g. linux/arm64 (--arch %s picks an architecture alone)", f.Platform, f.Platform)
		}
		p, err := fetch.ParsePlatform(f.Platform)
		if err != nil {
			return nil, usageError{err}
		}
		return &p, nil
	}
	if f.OS == "" && f.Arch == "" && f.Variant == "" {
		return nil, nil
	}
	host := fetch.HostPlatform()
	p := fetch.Platform{OS: f.OS, Architecture: f.Arch, Variant: f.Variant}
	if p.OS == "" {
		p.OS = host.OS
	}
	if p.Architecture == "" {
		if p.Variant != "" {
			return nil, usagef("--variant needs --arch")
		}
		p.Architecture, p.Variant = host.Architecture, host.Variant
	}
	q, err := fetch.ParsePlatform(p.String())
	if err != nil {
		return nil, usageError{err}
	}
	return &q, nil
}

// credentialHint adds to an authorization failure the credential sources that were tried,
// so that the one line says where roots looked.
func (f registryFlags) credentialHint(e *env, err error) error {
	if !errors.Is(err, auth.ErrUnauthorized) {
		return err
	}
	var tried []string
	if f.User != "" {
		tried = append(tried, "--user")
	}
	if f.Auth != "" {
		tried = append(tried, "--auth "+f.Auth)
	}
	tried = append(tried, existingAuthFiles(authFiles(e))...)
	if len(tried) == 0 {
		tried = append(tried, "none, anonymous")
	}
	return fmt.Errorf("%w (credentials tried: %s)", err, strings.Join(tried, ", "))
}
