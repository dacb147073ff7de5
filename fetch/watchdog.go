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
// floor speed over a whole window. Blob streams retry it with Range, as a cut connection.
var ErrStalled = errors.New("registry connection stalled")

// watchdog ends every response body that stalls: no byte for idle, or fewer than floor bytes a
// second over a window of span (as curl's --speed-limit/--speed-time). The request's context is
// cancelled with the reason, which unblocks a Read waiting on the network; the Read returns an
// error wrapping ErrStalled that names the host. Waiting for the response header is bounded by
// the transport's ResponseHeaderTimeout.
type watchdog struct {
	next  http.RoundTripper
	idle  time.Duration
	floor int64
	span  time.Duration
}

func (w *watchdog) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	resp, err := w.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
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
