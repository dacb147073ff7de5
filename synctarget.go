package roots

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/rootsdev/roots/fetch"
)

// ErrInvalidSyncTarget: the target registry or the push prefix of a sync cannot make a
// repository name.
var ErrInvalidSyncTarget = errors.New("invalid sync target")

// SyncTarget is the repository (no tag) that Sync copies repo's tags into: to/<prefix><path>,
// with lstags' push prefix rules. prefix "" is the source host without its port, dots as
// slashes ("docker.io/library/debian" → "docker/io/library/debian", "127.0.0.1:5000/x" →
// "127/0/0/1/x"); "/" keeps the path as it is; any other prefix ("/mirror/x", "/mirror/x/",
// "mirror/x") goes before the path as "mirror/x/". to is a registry host ("registry.example.com",
// "127.0.0.1:5000"), not a repository. Errors wrap ErrInvalidSyncTarget.
func SyncTarget(to, prefix string, repo fetch.Reference) (fetch.Reference, error) {
	fail := func(format string, args ...any) (fetch.Reference, error) {
		return fetch.Reference{}, fmt.Errorf("%w: %s", ErrInvalidSyncTarget, fmt.Sprintf(format, args...))
	}
	if err := checkRegistryHost(to); err != nil {
		return fail("%v", err)
	}
	var path string
	switch prefix {
	case "":
		path = hostPrefix(repo.Domain) + repo.Path
	case "/":
		path = repo.Path
	default:
		path = strings.Trim(prefix, "/") + "/" + repo.Path
	}
	target, err := fetch.ParseReference(to + "/" + path)
	if err != nil || target.Domain != to || target.Path != path {
		return fail("%s/%s (push prefix %q) is not a repository name: a prefix is lowercase letters, digits, -_. and /", to, path, prefix)
	}
	target.Tag = ""
	return target, nil
}

// checkRegistryHost refuses what is not a registry host (with an optional port).
func checkRegistryHost(to string) error {
	switch {
	case to == "":
		return errors.New("no target registry: name one, such as registry.example.com or 127.0.0.1:5000")
	case strings.Contains(to, "://"):
		return fmt.Errorf("target registry %q: name the host without a scheme", to)
	case strings.Contains(to, "/"):
		return fmt.Errorf("target registry %q: name the host alone; a path goes in the push prefix", to)
	}
	r, err := fetch.ParseReference(to + "/x")
	if err != nil || r.Domain != to {
		return fmt.Errorf("target registry %q is not a registry host: write HOST.DOMAIN, HOST:PORT or localhost", to)
	}
	return nil
}

// hostPrefix is lstags' default prefix: the host without its port, its dots (and an IPv6
// address's colons) as slashes, and a trailing slash.
func hostPrefix(domain string) string {
	host := domain
	if h, _, err := net.SplitHostPort(domain); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	var parts []string
	for _, p := range strings.FieldsFunc(host, func(r rune) bool { return r == '.' || r == ':' }) {
		parts = append(parts, strings.ToLower(p))
	}
	return strings.Join(parts, "/") + "/"
}
