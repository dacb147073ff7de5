package registrytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// FaultKind is what a Fault does to a matching request.
type FaultKind int

const (
	// CutAfter forwards, sends Bytes bytes of the body, then closes the
	// connection (the client sees a short body).
	CutAfter FaultKind = iota + 1
	// Status answers Code (default 503) instead of forwarding, with Body and
	// Header if set, and Retry-After: Delay (in seconds) if Delay > 0.
	Status
	// WrongBytes forwards and flips the body byte at offset Bytes.
	WrongBytes
	// IgnoreRange strips the Range header, so the registry answers 200
	// with the whole body.
	IgnoreRange
	// Slow forwards and sleeps Delay before each 32 KiB of the body.
	Slow
	// StallAfter forwards, sends Bytes bytes of the body, then sends nothing more and keeps the
	// connection open until the client gives up (a registry that hangs mid-body).
	StallAfter
	// Trickle forwards the body one byte per Delay.
	Trickle
	// CutRequest reads at most Bytes bytes of the request's body, then closes the connection
	// without an answer (a registry or proxy that drops an upload half way). Its default Match
	// is IsUpload; the registry never sees the request.
	CutRequest
)

func (k FaultKind) String() string {
	switch k {
	case CutAfter:
		return "CutAfter"
	case Status:
		return "Status"
	case WrongBytes:
		return "WrongBytes"
	case IgnoreRange:
		return "IgnoreRange"
	case Slow:
		return "Slow"
	case StallAfter:
		return "StallAfter"
	case Trickle:
		return "Trickle"
	case CutRequest:
		return "CutRequest"
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// slowChunk is how much body Slow lets through per Delay.
const slowChunk = 32 << 10

// Fault is one misbehaviour of a fault proxy. Several faults may apply to
// one request: a Status answers it; otherwise IgnoreRange changes the
// request and the others stack on the body.
type Fault struct {
	// Match selects the requests the fault applies to; nil means every blob
	// GET (path containing /blobs/sha256:), or for CutRequest every upload
	// request (IsUpload).
	Match func(*http.Request) bool
	Kind  FaultKind
	Bytes int64         // CutAfter: body bytes sent; WrongBytes: offset of the flipped byte; CutRequest: request body bytes read
	Code  int           // Status: status to answer (default 503)
	Delay time.Duration // Slow: pause per 32 KiB; Status: Retry-After when > 0
	// Times is how many matching requests the fault applies to (0 = all).
	Times  int
	Body   []byte      // Status: body to answer (default a registry-style JSON error)
	Header http.Header // Status: headers to answer (e.g. Content-Type for a served manifest)
}

// IsBlobGet is the default Match: a GET of a blob.
func IsBlobGet(req *http.Request) bool {
	return req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:")
}

// IsUpload is CutRequest's default Match: a request of a blob upload session (POST, PATCH or
// PUT under /blobs/uploads/).
func IsUpload(req *http.Request) bool {
	switch req.Method {
	case http.MethodPost, http.MethodPatch, http.MethodPut:
		return strings.Contains(req.URL.Path, "/blobs/uploads/")
	}
	return false
}

// FaultProxy starts a new loopback front (same scheme and CA as r) that
// forwards to r's registry with the faults, and returns its host:port.
func (r *Registry) FaultProxy(t testing.TB, faults ...Fault) (host string) {
	t.Helper()
	return r.FaultFront(t, faults...).Host
}

// FaultFront is FaultProxy returning the front, for its URL and request
// log. Its requests are not in r.Requests().
func (r *Registry) FaultFront(t testing.TB, faults ...Fault) *Front {
	t.Helper()
	for i, f := range faults {
		if f.Kind < CutAfter || f.Kind > CutRequest {
			t.Fatalf("registrytest: fault %d has no valid Kind (%v)", i, f.Kind)
		}
	}
	h := &faultHandler{faults: faults, used: make([]atomic.Int64, len(faults))}
	proxy := newProxy(r.backend, r.toBackend, r.errLog)
	modify := proxy.ModifyResponse
	proxy.ModifyResponse = func(resp *http.Response) error {
		if active, ok := resp.Request.Context().Value(faultsKey{}).([]*Fault); ok {
			resp.Body = newFaultyBody(resp.Request.Context(), resp.Body, active)
		}
		return modify(resp)
	}
	h.proxy = proxy
	fnt := startFront(t, r.serverCert, h, r.errLog)
	return &Front{Host: fnt.host, URL: fnt.url, f: fnt}
}

type faultsKey struct{}

type faultHandler struct {
	faults []Fault
	used   []atomic.Int64
	proxy  http.Handler
}

func (h *faultHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body []*Fault
	for i := range h.faults {
		f := &h.faults[i]
		if !h.take(i, req) {
			continue
		}
		switch f.Kind {
		case Status:
			writeFault(w, f)
			return
		case CutRequest:
			io.Copy(io.Discard, io.LimitReader(req.Body, max(f.Bytes, 0)))
			panic(http.ErrAbortHandler) // closes the connection; the front still logs the request
		case IgnoreRange:
			req.Header.Del("Range")
			req.Header.Del("If-Range")
		default:
			body = append(body, f)
		}
	}
	if len(body) > 0 {
		req = req.WithContext(context.WithValue(req.Context(), faultsKey{}, body))
		w = headerFlusher{w}
	}
	h.proxy.ServeHTTP(w, req)
}

// take reports whether fault i applies to req, and counts it.
func (h *faultHandler) take(i int, req *http.Request) bool {
	f := &h.faults[i]
	match := f.Match
	if match == nil {
		match = IsBlobGet
		if f.Kind == CutRequest {
			match = IsUpload
		}
	}
	if !match(req) {
		return false
	}
	return f.Times <= 0 || h.used[i].Add(1) <= int64(f.Times)
}

func writeFault(w http.ResponseWriter, f *Fault) {
	code := f.Code
	if code == 0 {
		code = http.StatusServiceUnavailable
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if f.Delay > 0 && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.Delay.Seconds()))))
	}
	body := f.Body
	if body == nil {
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		body = fmt.Appendf(nil, `{"errors":[{"code":"UNAVAILABLE","message":"registrytest fault: status %d","detail":null}]}`, code)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}

// headerFlusher sends the header at once, so that a body cut after 0
// bytes still reaches the client as a status and a short body.
type headerFlusher struct{ http.ResponseWriter }

func (w headerFlusher) WriteHeader(code int) {
	w.ResponseWriter.WriteHeader(code)
	if code >= 200 {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

func (w headerFlusher) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w headerFlusher) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var errCut = errors.New("registrytest: connection cut by fault")

// faultyBody applies body faults to a response as it is copied to the client.
type faultyBody struct {
	ctx     context.Context
	rc      io.ReadCloser
	off     int64
	cut     int64 // -1 = none
	flips   []int64
	delay   time.Duration
	pauseAt int64         // Slow: offset of the next pause
	stall   int64         // StallAfter: offset where the body stops (-1: none)
	trickle time.Duration // Trickle: pause before each byte
}

func newFaultyBody(ctx context.Context, rc io.ReadCloser, faults []*Fault) *faultyBody {
	b := &faultyBody{ctx: ctx, rc: rc, cut: -1, stall: -1}
	for _, f := range faults {
		switch f.Kind {
		case StallAfter:
			if b.stall < 0 || f.Bytes < b.stall {
				b.stall = max(f.Bytes, 0)
			}
		case Trickle:
			b.trickle += f.Delay
		case CutAfter:
			if b.cut < 0 || f.Bytes < b.cut {
				b.cut = max(f.Bytes, 0)
			}
		case WrongBytes:
			b.flips = append(b.flips, f.Bytes)
		case Slow:
			b.delay += f.Delay
		}
	}
	return b
}

func (b *faultyBody) Read(p []byte) (int, error) {
	if b.stall >= 0 {
		if b.off >= b.stall {
			<-b.ctx.Done() // the client went away
			return 0, b.ctx.Err()
		}
		if left := b.stall - b.off; int64(len(p)) > left {
			p = p[:left]
		}
	}
	if b.trickle > 0 && len(p) > 0 {
		timer := time.NewTimer(b.trickle)
		select {
		case <-timer.C:
		case <-b.ctx.Done():
			timer.Stop()
			return 0, b.ctx.Err()
		}
		p = p[:1]
	}
	if b.cut >= 0 {
		left := b.cut - b.off
		if left <= 0 {
			// A body that ends exactly here was sent whole: no cut.
			var probe [1]byte
			if n, err := io.ReadFull(b.rc, probe[:]); n == 0 && errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			return 0, errCut
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
	}
	if b.delay > 0 {
		if b.off >= b.pauseAt {
			timer := time.NewTimer(b.delay)
			select {
			case <-timer.C:
			case <-b.ctx.Done():
				timer.Stop()
				return 0, b.ctx.Err()
			}
			b.pauseAt = b.off + slowChunk
		}
		if left := b.pauseAt - b.off; int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := b.rc.Read(p)
	for _, at := range b.flips {
		if at >= b.off && at < b.off+int64(n) {
			p[at-b.off] ^= 0xff
		}
	}
	b.off += int64(n)
	return n, err
}

func (b *faultyBody) Close() error { return b.rc.Close() }
