package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// countingTransport counts the requests that go out over HTTPS and HTTP.
type countingTransport struct {
	next        http.RoundTripper
	https, http atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "https" {
		c.https.Add(1)
	} else {
		c.http.Add(1)
	}
	return c.next.RoundTrip(req)
}

func TestPlainHTTPLoopbackIsProbedOnce(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "x", "latest", hostImage(registrytest.OCI))
	count := &countingTransport{next: r.Transport}
	c := New(Options{Transport: count})
	ref := mustRef(t, r.Host+"/x")
	if err := pullAll(t, c, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Digest(t.Context(), ref, nil); err != nil {
		t.Fatal(err)
	}
	if n := count.https.Load(); n != 1 {
		t.Errorf("%d HTTPS attempts, want 1 (then HTTP remembered)", n)
	}
	if n := count.http.Load(); n < 4 {
		t.Errorf("%d HTTP requests, want the whole pull", n)
	}
}

func TestTLSRegistry(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{TLS: true})
	r.Push(t, "x", "latest", hostImage(registrytest.Docker))
	ref := mustRef(t, r.Host+"/x")

	count := &countingTransport{next: r.Transport}
	if err := pullAll(t, New(Options{Transport: count}), ref); err != nil {
		t.Fatal(err)
	}
	if n := count.http.Load(); n != 0 {
		t.Errorf("%d plain HTTP requests to a TLS registry", n)
	}

	// A certificate the client does not trust is an error, even on
	// loopback: never a reason to fall back to plain HTTP.
	count = &countingTransport{next: http.DefaultTransport.(*http.Transport).Clone()}
	_, err := New(Options{Transport: count}).Resolve(t.Context(), ref, nil)
	var certErr *tls.CertificateVerificationError
	if !errors.As(err, &certErr) {
		t.Fatalf("got %v, want a certificate verification error", err)
	}
	if n := count.http.Load(); n != 0 {
		t.Errorf("fell back to plain HTTP after a certificate error")
	}
}

// namedHost reaches the loopback registry under a name that is not
// loopback, as a remote registry would be.
func namedHost(t *testing.T, r *registrytest.Registry) (host string, transport http.RoundTripper) {
	t.Helper()
	_, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		t.Fatal(err)
	}
	base := r.Transport.(*http.Transport).Clone()
	dial := base.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dial(ctx, network, strings.Replace(addr, "registry.test", "127.0.0.1", 1))
	}
	return "registry.test:" + port, base
}

func TestPlainHTTPOnlyWhenInsecure(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "x", "latest", hostImage(registrytest.OCI))
	host, base := namedHost(t, r)
	ref := mustRef(t, host+"/x")
	if ref.Loopback() {
		t.Fatalf("%s counts as loopback", host)
	}

	count := &countingTransport{next: base}
	_, err := New(Options{Transport: count}).Resolve(t.Context(), ref, nil)
	if err == nil || !strings.Contains(err.Error(), "HTTP response to HTTPS client") && !strings.Contains(err.Error(), "tls") {
		t.Fatalf("got %v, want a TLS error", err)
	}
	if n := count.http.Load(); n != 0 {
		t.Errorf("%d plain HTTP requests to a remote registry without Insecure", n)
	}

	if err := pullAll(t, New(Options{Transport: base, Insecure: true}), ref); err != nil {
		t.Errorf("with Insecure: %v", err)
	}
}
