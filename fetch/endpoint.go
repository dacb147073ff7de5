package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Endpoint is one host that may serve a repository's content when pulling:
// a mirror, or the registry itself (Server). Options.Endpoints lists them in
// the order they are tried.
type Endpoint struct {
	Root    string      // API root URL: "https://mirror:5000/v2", or a path that replaces /v2 ("https://harbor/v2/proxy")
	Host    string      // host[:port] of Root: credentials and TLS are this host's
	Repo    string      // the repository's name on this host
	Pull    bool        // may serve content by digest (manifests, blobs)
	Resolve bool        // may answer a tag
	Server  bool        // the registry itself (or what the configuration names in its place)
	TagOnly bool        // only for images pulled by tag, not by digest (registries.conf pull-from-mirror = "tag-only")
	Header  http.Header // sent with each request (hosts.toml [host.header])
}

// HostTrust is how to reach one host over TLS: Options.Trust's answer.
type HostTrust struct {
	TLS         *tls.Config   // nil: the system's roots
	Insecure    bool          // plain HTTP is allowed to this host as to a loopback one
	DialTimeout time.Duration // 0: the default (5s)
	Places      []string      // where a CA for this host is looked for, for an x509 error
}

// Served says which host served one manifest or blob (Options.Served).
type Served struct {
	Kind string // "manifest" or "blob"
	Name string // the reference or the digest
	Host string // the Endpoint's Root
}

// defaultDialTimeout bounds connecting to a host, so that a dead mirror is
// passed quickly.
const defaultDialTimeout = 5 * time.Second

// capability is what a request needs of an Endpoint.
type capability int

const (
	canPull    capability = iota // content by digest
	canResolve                   // a tag
)

func (e Endpoint) can(c capability) bool {
	if c == canResolve {
		return e.Resolve
	}
	return e.Pull
}

// url is the URL of <root>/<repo>/<kind>/<name>.
func (e Endpoint) url(kind, name string) string {
	return strings.TrimSuffix(e.Root, "/") + "/" + e.Repo + "/" + kind + "/" + name
}

// server is the registry itself, the only endpoint without Options.Endpoints.
func server(ref Reference) Endpoint {
	return Endpoint{Root: "https://" + ref.APIHost() + "/v2", Host: ref.APIHost(), Repo: ref.Path, Pull: true, Resolve: true, Server: true}
}

// endpoints lists the hosts to try for ref's repository, in order.
func (c *Client) endpoints(ref Reference) ([]Endpoint, error) {
	if c.opts.Endpoints == nil {
		return []Endpoint{server(ref)}, nil
	}
	eps, err := c.opts.Endpoints(ref.Domain, ref.Path)
	if err != nil {
		return nil, err
	}
	if len(eps) == 0 {
		return []Endpoint{server(ref)}, nil
	}
	return eps, nil
}

// eachEndpoint calls try with each endpoint of ref's repository that has
// capability need, in order, until one succeeds. An endpoint that fails (a
// refused or timed-out connection, 5xx after the retries, 404, a refusal,
// content that does not check out) is skipped for this object; a mirror
// that could not be connected to is skipped for the rest of the run (the
// registry itself is always tried: it is the last resort). The error
// names every host tried; it unwraps to the last one's error. With one
// endpoint, its error is returned as it is.
func (c *Client) eachEndpoint(ctx context.Context, ref Reference, need capability, what string, try func(context.Context, Endpoint) error) error {
	eps, err := c.endpoints(ref)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var candidates []Endpoint
	for _, e := range eps {
		if e.can(need) && !(e.TagOnly && ref.Tag == "") {
			candidates = append(candidates, e)
		}
	}
	var tried []hostFailure
	for i, e := range candidates {
		if !e.Server && c.isDown(e.Host) {
			tried = append(tried, hostFailure{e.Root, errHostDown})
			continue
		}
		tctx := ctx
		if i < len(candidates)-1 {
			tctx = withFallback(ctx) // a connect that fails or times out is not retried: the next host is
		}
		err := try(tctx, e)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if !e.Server && unreachable(err) {
			c.markDown(e.Host)
		}
		tried = append(tried, hostFailure{e.Root, err})
	}
	switch len(tried) {
	case 0:
		return fmt.Errorf("%s: no configured host may serve it (capabilities)", what)
	case 1:
		if tried[0].err != errHostDown {
			return tried[0].err
		}
	}
	return &hostsError{what: what, tried: tried}
}

var errHostDown = errors.New("not tried: could not be connected to earlier")

type fallbackKey struct{}

// withFallback marks a request that another host can take over: the retry
// transport does not retry a connect that failed or timed out.
func withFallback(ctx context.Context) context.Context {
	return context.WithValue(ctx, fallbackKey{}, true)
}

func hasFallback(ctx context.Context) bool {
	v, _ := ctx.Value(fallbackKey{}).(bool)
	return v
}

// hostFailure is one endpoint's failure.
type hostFailure struct {
	root string
	err  error
}

// hostsError is the failure of every host tried for one object.
type hostsError struct {
	what  string
	tried []hostFailure
}

func (e *hostsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: tried %d hosts:", e.what, len(e.tried))
	for i, t := range e.tried {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s: %v", t.root, t.err)
	}
	return b.String()
}

// Unwrap is the last host's error: usually the registry's own answer.
func (e *hostsError) Unwrap() error { return e.tried[len(e.tried)-1].err }

// unreachable tells whether err means the host could not be connected to
// at all: refused, no route, unknown name, or a connect timeout.
func unreachable(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var dialErr *dialError
	return errors.As(err, &dialErr)
}

func (c *Client) isDown(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down[host]
}

func (c *Client) markDown(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[host] = true
}

// served reports through Options.Served which host served an object, with the scheme it
// was served with (a loopback or insecure host may have answered in plain HTTP).
func (c *Client) served(kind, name string, e Endpoint) {
	if c.opts.Served == nil {
		return
	}
	root := e.Root
	if u, err := url.Parse(root); err == nil && u.Scheme == "https" && c.scheme != nil && c.scheme.usesHTTP(u.Host) {
		u.Scheme = "http"
		root = u.String()
	}
	c.opts.Served(Served{Kind: kind, Name: name, Host: root})
}
