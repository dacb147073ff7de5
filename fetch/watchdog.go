package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Defaults for Options.IdleTimeout, MinSpeed and SpeedTime.
const (
	defaultIdleTimeout = 30 * time.Second
	defaultMinSpeed    = 1024 // bytes per second
	defaultSpeedTime   = 30 * time.Second
)

// ErrStalled reports a response body that sent nothing for the idle timeout, or less than the
// floor speed over a whole window, or an upload that made no progress for the idle timeout.
// Blob streams retry it with Range, as a cut connection; uploads with a new session.
var ErrStalled = errors.New("registry connection stalled")

// watchdog ends every response body that stalls: no byte for idle, or fewer than floor bytes a
// second over a window of span (as curl's --speed-limit/--speed-time). The request's context is
// cancelled with the reason, which unblocks a Read waiting on the network; the Read returns an
// error wrapping ErrStalled that names the host. Waiting for the response header is bounded by
// the transport's ResponseHeaderTimeout.
//
// A request body (an upload) is watched too: from the start of the round trip until the
// response header arrives, the transport must take a byte of the body at least every idle, and
// after the last byte the registry must answer within idle. A source that stops sending and a
// registry that stops reading (the socket fills, so the transport stops taking bytes) both end
// the request with an error wrapping ErrStalled; the caller closes the body it gave, which
// unblocks a source that is still waiting.
type watchdog struct {
	next  http.RoundTripper
	idle  time.Duration
	floor int64
	span  time.Duration
}

func (w *watchdog) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	out := req.WithContext(ctx)
	var up *watchedUpload
	if w.idle > 0 && req.Body != nil && req.Body != http.NoBody {
		up = watchUpload(req.Body, w.idle, req.URL.Host, cancel)
		out.Body = up
	}
	resp, err := w.next.RoundTrip(out)
	if up != nil {
		up.stop()
	}
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
			err = cause
		}
		cancel(nil)
		return nil, err
	}
	b := &watchedBody{rc: resp.Body, cancel: cancel, host: req.URL.Host, floor: w.floor, span: w.span, idle: w.idle}
	b.start = time.Now()
	if w.idle > 0 {
		b.timer = time.AfterFunc(w.idle, func() {
			b.stall(fmt.Errorf("%w: no data from %s for %v", ErrStalled, b.host, w.idle))
		})
	}
	resp.Body = b
	return resp, nil
}

// watchedBody is a response body under a watchdog.
type watchedBody struct {
	rc     io.ReadCloser
	cancel context.CancelCauseFunc
	host   string
	idle   time.Duration
	floor  int64
	span   time.Duration
	timer  *time.Timer

	start time.Time // of the current speed window
	got   int64     // bytes in the current speed window

	mu      sync.Mutex
	stalled error
}

// stall ends the body for good with err.
func (b *watchedBody) stall(err error) {
	b.mu.Lock()
	if b.stalled == nil {
		b.stalled = err
	}
	b.mu.Unlock()
	b.cancel(err)
}

func (b *watchedBody) reason() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stalled
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if err := b.reason(); err != nil {
		return 0, err
	}
	n, err := b.rc.Read(p)
	if why := b.reason(); why != nil && err != nil && err != io.EOF {
		return n, why // the network read ended because the watchdog cancelled it
	}
	if n > 0 && b.timer != nil {
		b.timer.Reset(b.idle)
	}
	if b.floor > 0 && b.span > 0 {
		b.got += int64(n)
		if now := time.Now(); now.Sub(b.start) >= b.span {
			secs := now.Sub(b.start).Seconds()
			if float64(b.got) < float64(b.floor)*secs && err == nil {
				b.stall(fmt.Errorf("%w: %s sent %d bytes in %.0fs, less than %d bytes a second", ErrStalled, b.host, b.got, secs, b.floor))
				return n, b.reason()
			}
			b.start, b.got = now, 0
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// watchedUpload is a request body under a watchdog: each byte the transport
// takes pushes the deadline back by idle.
type watchedUpload struct {
	rc      io.ReadCloser
	idle    time.Duration
	timer   *time.Timer
	mu      sync.Mutex
	stopped bool // the transport may read on after the answer: no new deadline then
}

func watchUpload(rc io.ReadCloser, idle time.Duration, host string, cancel context.CancelCauseFunc) *watchedUpload {
	u := &watchedUpload{rc: rc, idle: idle}
	u.timer = time.AfterFunc(idle, func() {
		cancel(fmt.Errorf("%w: upload to %s made no progress for %v", ErrStalled, host, idle))
		// The transport waits for its body Read to return before it does: a
		// source blocked in Read is woken by closing it.
		u.rc.Close()
	})
	return u
}

func (u *watchedUpload) Read(p []byte) (int, error) {
	n, err := u.rc.Read(p)
	if n > 0 {
		u.mu.Lock()
		if !u.stopped {
			u.timer.Reset(u.idle)
		}
		u.mu.Unlock()
	}
	return n, err
}

func (u *watchedUpload) Close() error { return u.rc.Close() }

// stop ends the watch once the response header is there (or the request failed).
func (u *watchedUpload) stop() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stopped = true
	u.timer.Stop()
}
