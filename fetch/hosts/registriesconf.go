package hosts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// registry is one [[registry]] of registries.conf.
type registry struct {
	prefix   string // "docker.io", "example.com/team", "*.example.com"
	location string // what replaces prefix ("" = prefix itself)
	insecure bool
	blocked  bool
	mirrors  []mirror
	file     string
}

// mirror is one [[registry.mirror]].
type mirror struct {
	location      string
	insecure      bool
	pull, resolve bool
	tagOnly       bool // only for images pulled by tag
}

// regFile is the TOML shape of registries.conf v2. The keys roots does
// not use are listed so that they are not unknown.
type regFile struct {
	UnqualifiedSearchRegistries    []string          `toml:"unqualified-search-registries"`
	ShortNameMode                  string            `toml:"short-name-mode"`
	CredentialHelpers              []string          `toml:"credential-helpers"`
	Aliases                        map[string]string `toml:"aliases"`
	AdditionalLayerStoreAuthHelper string            `toml:"additional-layer-store-auth-helper"`
	// The v1 format, still written by some distributions: search (unused here), insecure
	// and block lists of registries.
	Registries *struct {
		Search   struct{ Registries []string } `toml:"search"`
		Insecure struct{ Registries []string } `toml:"insecure"`
		Block    struct{ Registries []string } `toml:"block"`
	} `toml:"registries"`
	Registry []struct {
		Prefix             string `toml:"prefix"`
		Location           string `toml:"location"`
		Insecure           bool   `toml:"insecure"`
		Blocked            bool   `toml:"blocked"`
		MirrorByDigestOnly bool   `toml:"mirror-by-digest-only"`
		Mirror             []struct {
			Location       string `toml:"location"`
			Insecure       bool   `toml:"insecure"`
			PullFromMirror string `toml:"pull-from-mirror"`
		} `toml:"mirror"`
	} `toml:"registry"`
}

// readRegistriesConf reads file (if it exists), then dropins/*.conf in
// name order; a [[registry]] with the prefix of an earlier one replaces it.
func readRegistriesConf(file, dropins string) ([]registry, error) {
	var files []string
	if file != "" {
		files = append(files, file)
	}
	if dropins != "" {
		matches, err := filepath.Glob(filepath.Join(dropins, "*.conf"))
		if err != nil {
			return nil, err
		}
		sort.Strings(matches)
		files = append(files, matches...)
	}
	var regs []registry
	for _, f := range files {
		more, err := readRegistriesFile(f)
		if err != nil {
			return nil, err
		}
		for _, r := range more {
			i := indexPrefix(regs, r.prefix)
			if i < 0 {
				regs = append(regs, r)
			} else {
				regs[i] = r
			}
		}
	}
	return regs, nil
}

func indexPrefix(regs []registry, prefix string) int {
	for i, r := range regs {
		if r.prefix == prefix {
			return i
		}
	}
	return -1
}

// readRegistriesFile reads one registries.conf; a missing file is empty.
func readRegistriesFile(file string) ([]registry, error) {
	var raw regFile
	md, err := toml.DecodeFile(file, &raw)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fileError(file, err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		return nil, fmt.Errorf("%s: unknown key %s: %w", file, keys[0], ErrConfig)
	}
	if raw.Registries != nil {
		if len(raw.Registry) > 0 {
			return nil, fmt.Errorf("%s: both the v1 [registries.*] tables and v2 [[registry]]: %w", file, ErrConfig)
		}
		return v1Registries(file, raw.Registries.Insecure.Registries, raw.Registries.Block.Registries), nil
	}
	var regs []registry
	for i, rr := range raw.Registry {
		r := registry{prefix: rr.Prefix, location: rr.Location, insecure: rr.Insecure, blocked: rr.Blocked, file: file}
		if r.prefix == "" {
			r.prefix = r.location
		}
		if r.prefix == "" {
			return nil, fmt.Errorf("%s: registry %d: neither prefix nor location: %w", file, i+1, ErrConfig)
		}
		if strings.Contains(r.prefix, "://") || strings.Contains(r.location, "://") {
			return nil, fmt.Errorf("%s: registry %q: prefix and location name a registry, without a scheme: %w", file, r.prefix, ErrConfig)
		}
		if strings.HasPrefix(r.prefix, "*.") && r.location != "" {
			return nil, fmt.Errorf("%s: registry %q: a wildcard prefix takes no location: %w", file, r.prefix, ErrConfig)
		}
		for _, rm := range rr.Mirror {
			m := mirror{location: rm.Location, insecure: rm.Insecure, pull: true, resolve: true}
			switch rm.PullFromMirror {
			case "", "all":
			case "tag-only":
				m.tagOnly = true
			case "digest-only":
				m.resolve = false
			default:
				return nil, fmt.Errorf("%s: registry %q: pull-from-mirror %q (all, digest-only, tag-only): %w", file, r.prefix, rm.PullFromMirror, ErrConfig)
			}
			if rr.MirrorByDigestOnly {
				m.resolve = false
			}
			if strings.Contains(m.location, "://") {
				return nil, fmt.Errorf("%s: registry %q: mirror location %q: no scheme (insecure = true allows plain HTTP): %w", file, r.prefix, m.location, ErrConfig)
			}
			if m.location == "" {
				return nil, fmt.Errorf("%s: registry %q: a mirror without location: %w", file, r.prefix, ErrConfig)
			}
			r.mirrors = append(r.mirrors, m)
		}
		regs = append(regs, r)
	}
	return regs, nil
}

// v1Registries turns v1's insecure and block lists into entries.
func v1Registries(file string, insecure, block []string) []registry {
	var regs []registry
	add := func(prefix string, set func(*registry)) {
		i := indexPrefix(regs, prefix)
		if i < 0 {
			regs = append(regs, registry{prefix: prefix, file: file})
			i = len(regs) - 1
		}
		set(&regs[i])
	}
	for _, p := range insecure {
		add(p, func(r *registry) { r.insecure = true })
	}
	for _, p := range block {
		add(p, func(r *registry) { r.blocked = true })
	}
	return regs
}

// match returns the registry whose prefix matches name ("domain/path")
// best: the longest plain prefix that ends at a path boundary, else the
// longest wildcard that matches the domain.
func match(regs []registry, name string) (registry, bool) {
	domain, _, _ := strings.Cut(name, "/")
	best, bestLen, wild := registry{}, -1, false
	for _, r := range regs {
		if suffix, ok := strings.CutPrefix(r.prefix, "*"); ok {
			if !strings.HasSuffix(domain, suffix) {
				continue
			}
			if bestLen < 0 || (wild && len(r.prefix) > bestLen) {
				best, bestLen, wild = r, len(r.prefix), true
			}
			continue
		}
		if name != r.prefix && !strings.HasPrefix(name, r.prefix+"/") {
			continue
		}
		if wild || len(r.prefix) > bestLen {
			best, bestLen, wild = r, len(r.prefix), false
		}
	}
	return best, bestLen >= 0
}

// rewrite replaces r's prefix in name with location: the name of the
// repository on that host, split into host and repository path.
func (r registry) rewrite(name, location string) (hostport, repo string) {
	var rest string
	if strings.HasPrefix(r.prefix, "*") {
		_, rest, _ = strings.Cut(name, "/")
		rest = "/" + rest
	} else {
		rest = strings.TrimPrefix(name, r.prefix)
	}
	full := strings.TrimSuffix(location, "/") + rest
	hostport, repo, _ = strings.Cut(full, "/")
	return hostport, repo
}
