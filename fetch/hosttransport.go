package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// hostTransport is the base of the stack: one http.Transport per host, each
// with that host's TLS settings (Options.Trust: certs.d CAs, client
// certificates, skip_verify) and a connect timeout, so that trust given to
// one host is never given to another. A certificate error names the host
// and where a CA for it is looked for.
type hostTransport struct {
	base  *http.Transport
	trust func(host string) (HostTrust, error)

	mu    sync.Mutex
	hosts map[string]hostEntry
}

type hostEntry struct {
	rt       http.RoundTripper
	places   []string
	insecure bool
	err      error
}

func newHostTransport(base *http.Transport, trust func(string) (HostTrust, error)) *hostTransport {
	return &hostTransport{base: base, trust: trust, hosts: map[string]hostEntry{}}
}

func (t *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := t.host(req.URL.Host)
	if h.err != nil {
		return nil, h.err
	}
	resp, err := h.rt.RoundTrip(req)
	switch {
	case err == nil:
	case certificateError(err):
		err = trustError(req.URL.Host, h.places, err)
	case strings.Contains(err.Error(), "tls: certificate required"):
		err = clientCertError(req.URL.Host, h.places, err)
	}
	return resp, err
}

// host returns the transport for host, making it on first use.
func (t *hostTransport) host(host string) hostEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.hosts[host]; ok {
		return h
	}
	var tr HostTrust
	var err error
	if t.trust != nil {
		tr, err = t.trust(host)
	}
	h := hostEntry{places: tr.Places, insecure: tr.Insecure, err: err}
	if err == nil {
		rt := t.base.Clone()
		if tr.TLS != nil {
			rt.TLSClientConfig = tr.TLS
		}
		timeout := tr.DialTimeout
		if timeout <= 0 {
			timeout = defaultDialTimeout
		}
		rt.DialContext = dialer(t.base.DialContext, timeout)
		h.rt = rt
	}
	t.hosts[host] = h
	return h
}

// CloseIdleConnections closes the idle connections of every host's transport (and of the
// base they were made from): what a long-running caller (a sync daemon's pass) does when it
// is done with a Client.
func (t *hostTransport) CloseIdleConnections() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, h := range t.hosts {
		if c, ok := h.rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
	t.base.CloseIdleConnections()
}

// insecure tells whether plain HTTP is allowed to host by its trust.
func (t *hostTransport) insecure(host string) bool {
	return t.host(host).insecure
}

// dialer connects with dial (nil: a net.Dialer) within timeout; its errors
// are dialErrors, which say the host could not be reached at all.
func dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		conn, err := dial(dctx, network, addr)
		if err != nil {
			return nil, &dialError{addr: addr, err: err}
		}
		return conn, nil
	}
}

// dialError is a failure to connect.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// certificateError tells whether err is a failed certificate check.
func certificateError(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	return errors.As(err, &certErr) || errors.As(err, &unknownAuthority) || errors.As(err, &hostnameErr)
}

// clientCertError says that host demands a client certificate, and where one is looked for.
func clientCertError(host string, places []string, err error) error {
	if len(places) == 0 {
		return fmt.Errorf("%s demands a client certificate: %w (give one as client in its hosts.toml, or *.cert and *.key in a certs.d/%s directory)", host, err, host)
	}
	where := make([]string, len(places))
	for i, p := range places {
		where[i] = strings.TrimSuffix(p, "*.crt") + "*.cert, *.key"
	}
	return fmt.Errorf("%s demands a client certificate: %w (a pair for %s is looked for in %s)", host, err, host, strings.Join(where, "; "))
}

// trustError names the host and the places a CA for it is looked for.
func trustError(host string, places []string, err error) error {
	if len(places) == 0 {
		return fmt.Errorf("%s: %w (the system's CAs were used; SSL_CERT_FILE adds one)", host, err)
	}
	return fmt.Errorf("%s: %w (a CA for %s is looked for in %s, and the system's)", host, err, host, strings.Join(places, ", "))
}
