package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/fetch/auth"
)

// Options configure a Client. The zero value pulls and pushes anonymously
// over HTTPS (plain HTTP for loopback registries) with five attempts per
// request.
type Options struct {
	Insecure  bool              // allow plain HTTP to non-loopback hosts (never unverified TLS)
	Keychain  auth.Keychain     // nil = anonymous
	Transport http.RoundTripper // base transport; nil = a clone of http.DefaultTransport
	Retries   int               // attempts per request, per blob stream without progress and per blob upload (sessions) (default 5)
	Backoff   time.Duration     // first backoff (default 200ms), doubled each time, with jitter
	UserAgent string            // default "roots"
	// IdleTimeout ends a response (header or body) that sends nothing for this long (default
	// 30s; negative: never). MinSpeed and SpeedTime end a body that sends fewer than MinSpeed
	// bytes a second over SpeedTime (defaults 1024 and 30s; MinSpeed negative: no floor), as
	// curl's --speed-limit and --speed-time. A blob stream retries either with Range, as a cut
	// connection; the error wraps ErrStalled. An upload whose body the connection takes
	// nothing of, or that gets no answer, for IdleTimeout ends its session with ErrStalled.
	IdleTimeout time.Duration
	MinSpeed    int64
	SpeedTime   time.Duration
	// Local, if set, is read before the registry for content that a digest
	// names: an image's config and, for an index, the platform's manifest.
	// What it returns is checked (size and digest) like a download, and
	// fetched from the registry if it fails. A tag's manifest is always
	// fetched: it is what says whether the tag moved.
	Local LocalSource
	// Offline refuses every request before it is sent: nothing is dialled, no name is looked
	// up, and the error wraps ErrOffline. Transport is ignored. What works offline is read
	// from Local (LocalImage, LocalResolve), not through the Client.
	Offline bool
	// Endpoints, if set, lists the hosts that may serve a repository's pulls, in the
	// order they are tried (mirrors, then the registry: see Endpoint). Pushes and tag
	// lists always go to the registry itself. nil or an empty list: the registry only.
	Endpoints func(domain, path string) ([]Endpoint, error)
	// Trust, if set, gives each host's TLS settings and connect timeout (used when
	// Transport is nil or an *http.Transport).
	Trust func(host string) (HostTrust, error)
	// Served, if set, is told which host served each manifest and blob.
	Served func(Served)
}

// LocalSource is content-addressed storage, such as roots' cache.
type LocalSource interface {
	// Blob returns the content stored under d, if there is any.
	Blob(d digest.Digest) ([]byte, bool)
}

// Client pulls from and pushes to registries. It is safe for concurrent use,
// and keeps one authenticated HTTP client per repository and scope set (so
// tokens are reused) and the working scheme per host.
type Client struct {
	opts      Options
	transport http.RoundTripper // retry over scheme over base: what auth wraps
	hosts     *hostTransport    // the base: one http.Transport per host (nil: a Transport of the caller's that is no *http.Transport)
	scheme    *schemeTransport  // which hosts speak plain HTTP
	keychain  auth.Keychain

	mu    sync.Mutex
	repos map[string]*http.Client // "host/path\nscopes" → client with auth for that repository and scopes
	down  map[string]bool         // hosts that could not be connected to: skipped for the rest of the run
}

// New returns a Client with the given options.
func New(o Options) *Client {
	if o.Retries <= 0 {
		o.Retries = defaultRetries
	}
	if o.Backoff <= 0 {
		o.Backoff = defaultBackoff
	}
	if o.UserAgent == "" {
		o.UserAgent = "roots"
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	if o.MinSpeed == 0 {
		o.MinSpeed = defaultMinSpeed
	}
	if o.SpeedTime <= 0 {
		o.SpeedTime = defaultSpeedTime
	}
	base := o.Transport
	if o.Offline {
		base = offlineTransport{}
	} else if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if o.IdleTimeout > 0 {
			t.ResponseHeaderTimeout = o.IdleTimeout
		}
		base = t
	}
	var hosts *hostTransport
	if t, ok := base.(*http.Transport); ok {
		hosts = newHostTransport(t, o.Trust)
		base = hosts
	}
	base = &watchdog{next: base, idle: max(o.IdleTimeout, 0), floor: max(o.MinSpeed, 0), span: o.SpeedTime}
	scheme := newSchemeTransport(base, o.Insecure)
	if hosts != nil && o.Trust != nil {
		scheme.allowHTTP = hosts.insecure
	}
	return &Client{
		opts:      o,
		hosts:     hosts,
		scheme:    scheme,
		transport: newRetryTransport(scheme, o.Retries, o.Backoff),
		keychain:  o.Keychain,
		repos:     map[string]*http.Client{},
		down:      map[string]bool{},
	}
}

// CloseIdleConnections closes the idle connections of every transport the Client made (one per
// host): call it when done with a Client in a process that goes on (a daemon). The Client stays
// usable.
func (c *Client) CloseIdleConnections() {
	if c.hosts != nil {
		c.hosts.CloseIdleConnections()
	}
}

// ServerOnly returns a Client on the same transports that talks to each
// registry itself, never to Options.Endpoints' mirrors: for what a write
// checks on its target (does the destination have this manifest?).
func (c *Client) ServerOnly() *Client {
	o := c.opts
	o.Endpoints = nil
	return &Client{opts: o, hosts: c.hosts, scheme: c.scheme, transport: c.transport, keychain: c.keychain, repos: map[string]*http.Client{}, down: map[string]bool{}}
}

// httpClient returns the client for pulling from ref's repository, creating
// it on first use.
func (c *Client) httpClient(ref Reference) *http.Client {
	return c.scopedClient(ref, "repository:"+ref.Path+":pull")
}

// scopedClient returns the client for ref's repository whose tokens carry
// scopes (one "repository:NAME:ACTIONS" each, sent as one scope= parameter
// each), creating it on first use. Pulls, pushes and mounts from another
// repository each have their own, so a pull never asks for push rights.
func (c *Client) scopedClient(ref Reference, scopes ...string) *http.Client {
	return c.hostClient(ref.APIHost(), ref.Path, scopes...)
}

// pullClient returns the client for pulling from e: its credentials are
// e.Host's, never another host's.
func (c *Client) pullClient(e Endpoint) *http.Client {
	return c.hostClient(e.Host, e.Repo, "repository:"+e.Repo+":pull")
}

// hostClient returns the client for repository path on host whose tokens
// carry scopes, creating it on first use.
func (c *Client) hostClient(host, path string, scopes ...string) *http.Client {
	key := host + "/" + path + "\n" + strings.Join(scopes, " ")
	c.mu.Lock()
	defer c.mu.Unlock()
	if hc, ok := c.repos[key]; ok {
		return hc
	}
	opts := []auth.Option{auth.Repository(path)}
	if c.opts.Insecure {
		opts = append(opts, auth.PlainHTTPRealms())
	}
	hc := &http.Client{Transport: auth.NewTransport(c.transport, host, scopes, c.keychain, opts...)}
	c.repos[key] = hc
	return hc
}

// endpoint is the URL of /v2/<path>/<kind>/<name> (kind "manifests" or
// "blobs"). The scheme is always https here; the scheme transport moves
// loopback and insecure hosts to http when they need it.
func endpoint(ref Reference, kind, name string) string {
	return "https://" + ref.APIHost() + "/v2/" + ref.Path + "/" + kind + "/" + name
}

// do sends one request for ref's repository.
func (c *Client) do(ctx context.Context, ref Reference, method, target string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return c.send(c.httpClient(ref), req)
}

// doAt sends one pull request to endpoint e.
func (c *Client) doAt(ctx context.Context, e Endpoint, method, target string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range e.Header {
		req.Header[k] = v
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return c.send(c.pullClient(e), req)
}

// send sends req with hc, with roots' User-Agent.
func (c *Client) send(hc *http.Client, req *http.Request) (*http.Response, error) {
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := hc.Do(req)
	if err != nil {
		// The url.Error's "Get https://...": names a URL whose scheme may
		// not be the one used; callers name the manifest or blob instead.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	return resp, nil
}
