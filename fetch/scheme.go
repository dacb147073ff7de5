package fetch

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// schemeTransport lets a registry on this machine (or any registry when the
// user said --insecure) speak plain HTTP, the way Docker does: a request
// goes out over HTTPS first, and if the server answers the TLS handshake with
// plain HTTP the request is sent again over HTTP. The working scheme is
// remembered per host, so the probe happens once. Certificate errors never
// cause a fallback: a TLS server with a bad certificate is an error.
type schemeTransport struct {
	next      http.RoundTripper
	insecure  bool
	allowHTTP func(host string) bool // hosts the configuration allows plain HTTP to (nil: none)

	mu        sync.Mutex
	plainHTTP map[string]bool // host:port → speaks plain HTTP
}

func newSchemeTransport(next http.RoundTripper, insecure bool) *schemeTransport {
	return &schemeTransport{next: next, insecure: insecure, plainHTTP: map[string]bool{}}
}

func (t *schemeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return t.next.RoundTrip(req)
	}
	if !t.mayUseHTTP(req.URL.Host) {
		resp, err := t.next.RoundTrip(req)
		if err != nil && speaksPlainHTTP(err) {
			err = fmt.Errorf("%w (%s: %w)", err, req.URL.Host, ErrPlainHTTP)
		}
		return resp, err
	}
	if t.usesHTTP(req.URL.Host) {
		return t.next.RoundTrip(withScheme(req, "http"))
	}
	resp, err := t.next.RoundTrip(req)
	if err == nil || !speaksPlainHTTP(err) || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		return resp, err
	}
	t.mu.Lock()
	t.plainHTTP[req.URL.Host] = true
	t.mu.Unlock()
	plain := withScheme(req, "http")
	if req.GetBody != nil {
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, err
		}
		plain.Body = body
	}
	return t.next.RoundTrip(plain)
}

// mayUseHTTP: plain HTTP is only for loopback hosts, for any host with
// Insecure, and for hosts whose configuration says insecure.
func (t *schemeTransport) mayUseHTTP(host string) bool {
	return t.insecure || loopbackHost(host) || (t.allowHTTP != nil && t.allowHTTP(host))
}

func (t *schemeTransport) usesHTTP(host string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.plainHTTP[host]
}

// withScheme copies req with another URL scheme.
func withScheme(req *http.Request, scheme string) *http.Request {
	r := req.Clone(req.Context())
	r.URL.Scheme = scheme
	return r
}

// speaksPlainHTTP tells whether a TLS handshake failed because the server
// answered in plain HTTP ("server gave HTTP response to HTTPS client").
func speaksPlainHTTP(err error) bool {
	var recordErr tls.RecordHeaderError
	if errors.As(err, &recordErr) {
		return true
	}
	return errors.Is(err, http.ErrSchemeMismatch) ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}
