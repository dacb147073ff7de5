package registrytest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Request is one request a front (the registry's address, a fault proxy or
// the token issuer) received, in the order the answers completed.
type Request struct {
	Method string
	Path   string
	Query  string // raw query, without '?'
	Status int    // status sent to the client (200 if a handler wrote without a header, 0 if nothing was sent)
	Header http.Header
}

// Front is a loopback HTTP(S) endpoint of the harness that records what it
// receives: the fault proxies, and the registry's own address.
type Front struct {
	Host string // "127.0.0.1:PORT"
	URL  string // "http(s)://127.0.0.1:PORT"
	f    *front
}

// Requests returns a copy of the log of requests this front received.
func (f *Front) Requests() []Request { return f.f.log.list() }

// ResetRequests empties the request log and forgets MaxInFlight.
func (f *Front) ResetRequests() {
	f.f.log.reset()
	f.f.maxInFlight.Store(0)
}

// MaxInFlight is the most requests this front was answering at once since it started or
// since ResetRequests.
func (f *Front) MaxInFlight() int { return int(f.f.maxInFlight.Load()) }

// requestLog records requests when their handlers return. A client can read
// its answer before that, so list waits (briefly) for requests in flight.
type requestLog struct {
	mu      sync.Mutex
	reqs    []Request
	pending int // requests begun and not yet added
}

// settleTimeout bounds how long list waits for requests in flight (a slow
// fault may keep one open for long).
const settleTimeout = 2 * time.Second

func (l *requestLog) begin() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending++
}

func (l *requestLog) add(r Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending--
	l.reqs = append(l.reqs, r)
}

func (l *requestLog) list() []Request {
	l.settle()
	defer l.mu.Unlock()
	out := make([]Request, len(l.reqs))
	for i, r := range l.reqs {
		r.Header = r.Header.Clone()
		out[i] = r
	}
	return out
}

// reset forgets the requests so far, the ones in flight too: a request whose
// answer the client has read is never logged after a reset.
func (l *requestLog) reset() {
	l.settle()
	defer l.mu.Unlock()
	l.reqs = nil
}

// settle waits (briefly) until no request is in flight and returns with l.mu held.
func (l *requestLog) settle() {
	for deadline := time.Now().Add(settleTimeout); ; time.Sleep(5 * time.Millisecond) {
		l.mu.Lock()
		if l.pending == 0 || time.Now().After(deadline) {
			return
		}
		l.mu.Unlock()
	}
}

// front is an in-process server on 127.0.0.1 that logs each request and
// hands it to next. It speaks HTTP/1.1 only, so a cut body is a closed
// connection, as a client would see it from a real server.
type front struct {
	host, url string
	next      http.Handler
	log       requestLog
	srv       *http.Server
	stop      func() // closes the listener and every connection, and waits for Serve to return

	inFlight, maxInFlight atomic.Int64
}

// startFront listens on a free loopback port (TLS when cert is non-nil) and
// serves next until the test ends.
func startFront(t testing.TB, cert *tls.Certificate, next http.Handler, errLog *log.Logger) *front {
	t.Helper()
	return startFrontMutual(t, cert, nil, next, errLog)
}

// startFrontMutual is startFront whose TLS also demands a client certificate that clientCAs
// (when not nil) vouch for.
func startFrontMutual(t testing.TB, cert *tls.Certificate, clientCAs *x509.CertPool, next http.Handler, errLog *log.Logger) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("registrytest: listen: %v", err)
	}
	scheme := "http"
	if cert != nil {
		scheme = "https"
		cfg := &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
		if clientCAs != nil {
			cfg.ClientCAs, cfg.ClientAuth = clientCAs, tls.RequireAndVerifyClientCert
		}
		ln = tls.NewListener(ln, cfg)
	}
	f := &front{host: ln.Addr().String(), next: next}
	f.url = scheme + "://" + f.host
	f.srv = &http.Server{
		Handler:           f,
		ErrorLog:          errLog,
		ReadHeaderTimeout: 30 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errLog.Printf("front %s: %v", f.host, err)
		}
	}()
	f.stop = func() {
		f.srv.Close()
		<-done
	}
	t.Cleanup(f.stop)
	return f
}

func (f *front) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	entry := Request{
		Method: req.Method,
		Path:   req.URL.Path,
		Query:  req.URL.RawQuery,
		Header: req.Header.Clone(),
	}
	sw := &statusWriter{ResponseWriter: w}
	f.log.begin()
	for n := f.inFlight.Add(1); ; {
		m := f.maxInFlight.Load()
		if n <= m || f.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	defer f.inFlight.Add(-1)
	// Recorded even when the handler aborts the connection (a panic with
	// http.ErrAbortHandler), which this defer lets through.
	defer func() {
		entry.Status = sw.status
		f.log.add(entry)
	}()
	f.next.ServeHTTP(sw, req)
}

// statusWriter remembers the status a handler sent.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if fl, ok := w.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// newProxy forwards to the plain-HTTP registry at backend. X-Forwarded-Host
// and -Proto tell the registry the address the client used, so the Location
// headers it builds (upload URLs) point back at the front that forwarded.
func newProxy(backend *url.URL, transport http.RoundTripper, errLog *log.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backend)
			pr.SetXForwarded()
		},
		Transport:     transport,
		FlushInterval: -1,
		ErrorLog:      errLog,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del(idHeader)
			return nil
		},
	}
}
