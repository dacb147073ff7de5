package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

const (
	defaultRetries = 5
	defaultBackoff = 200 * time.Millisecond
	maxBackoff     = 10 * time.Second
	maxRetryAfter  = 30 * time.Second
)

// retryTransport retries idempotent requests (GET, HEAD) that failed in a
// way that may pass: 408, 429 and 5xx gateway answers, dropped or reset
// connections and timeouts. It waits with exponential backoff and jitter,
// or as long as Retry-After says (capped), and stops when the request's
// context ends. Other answers, 4xx included, pass through untouched.
type retryTransport struct {
	next     http.RoundTripper
	attempts int
	backoff  time.Duration
}

func newRetryTransport(next http.RoundTripper, attempts int, backoff time.Duration) *retryTransport {
	if attempts <= 0 {
		attempts = defaultRetries
	}
	if backoff <= 0 {
		backoff = defaultBackoff
	}
	return &retryTransport{next: next, attempts: attempts, backoff: backoff}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return t.next.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 1; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		if attempt >= t.attempts || ctx.Err() != nil || !retryable(resp, err) {
			return resp, err
		}
		var dialErr *dialError
		if hasFallback(ctx) && errors.As(err, &dialErr) {
			return resp, err // another host takes over
		}
		wait := backoffDelay(t.backoff, attempt)
		if resp != nil {
			if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
				wait = d
			}
			drain(resp.Body)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// backoffDelay is the wait before attempt+1: backoff·2^(attempt-1), capped,
// times a jitter in [0.5, 1.5).
func backoffDelay(backoff time.Duration, attempt int) time.Duration {
	d := backoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// retryable tells whether a round trip's outcome is worth another try.
func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return transientError(err)
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// transientError is a dropped connection or a timeout; TLS and certificate
// failures, refused connections and unknown hosts are not.
func transientError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuthority) ||
		errors.As(err, &hostnameErr) || errors.As(err, &recordErr) {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// retryAfter parses a Retry-After header: seconds or an HTTP date, capped.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(min(max(secs, 0), 3600)) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = time.Until(at)
	} else {
		return 0, false
	}
	return max(0, min(d, maxRetryAfter)), true
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drain reads a little of a body so the connection can be reused, and closes it.
func drain(body io.ReadCloser) {
	if body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}
