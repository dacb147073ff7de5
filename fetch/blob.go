package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var errClosed = errors.New("read after close")

// OpenBlob streams the blob d from ref's repository, following redirects.
// When the stream breaks (a reset connection, an early end), the reader asks
// again with "Range: bytes=N-" for what it has not delivered yet and goes on
// as if nothing happened; a registry that ignores Range has the first N
// bytes skipped. It gives up after Options.Retries attempts in a row that
// bring no new bytes. It does not verify the digest (the caller hashes what
// it writes) but stops with ErrTooLarge as soon as more than d.Size bytes
// arrive. Reads end when ctx ends.
func (c *Client) OpenBlob(ctx context.Context, ref Reference, d ocispec.Descriptor) (io.ReadCloser, error) {
	if err := checkDescriptor(d); err != nil {
		return nil, fmt.Errorf("fetch blob %s: %w", d.Digest, errorf(ErrInvalidManifest, "invalid descriptor: %w", err))
	}
	if err := ref.check(); err != nil {
		return nil, fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	b := &blobReader{c: c, ctx: ctx, ref: ref, desc: d}
	err := c.eachEndpoint(ctx, ref, canPull, "blob "+d.Digest.String(), func(ctx context.Context, e Endpoint) error {
		b.at = e
		first := b.ctx
		b.ctx = ctx // the first request only: resumes keep OpenBlob's context
		defer func() { b.ctx = first }()
		return b.open()
	})
	if err != nil {
		return nil, fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	c.served("blob", d.Digest.String(), b.at)
	return b, nil
}

// blobReader is one blob stream that resumes itself.
type blobReader struct {
	c    *Client
	ctx  context.Context
	ref  Reference
	desc ocispec.Descriptor
	at   Endpoint // the host that serves the stream; a resumed stream stays with it

	body     io.ReadCloser // nil between a break and the next request
	n        int64         // bytes delivered to the caller
	failures int           // breaks in a row without new bytes
	stalls   int           // stalled connections (ErrStalled), progress or not: a trickle progresses
	err      error         // sticky: once set, every Read returns it
}

// open requests the blob from offset b.n.
func (b *blobReader) open() error {
	header := http.Header{}
	if b.n > 0 {
		header.Set("Range", "bytes="+strconv.FormatInt(b.n, 10)+"-")
	}
	resp, err := b.c.doAt(b.ctx, b.at, http.MethodGet, b.at.url("blobs", b.desc.Digest.String()), header)
	if err != nil {
		return err
	}
	if err := b.accept(resp); err != nil {
		drain(resp.Body)
		return err
	}
	if resp.StatusCode == http.StatusOK && b.n > 0 {
		// The registry ignored Range: skip what was delivered already.
		if _, err := io.CopyN(io.Discard, resp.Body, b.n); err != nil {
			resp.Body.Close()
			return fmt.Errorf("skip %d bytes already read: %w", b.n, err)
		}
	}
	b.body = resp.Body
	return nil
}

// accept checks a blob response's status and its announced length and range.
func (b *blobReader) accept(resp *http.Response) error {
	size := b.desc.Size
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength > size {
			return errorf(ErrTooLarge, "registry announces %d bytes, descriptor says %d", resp.ContentLength, size)
		}
		return nil
	case http.StatusPartialContent:
		if b.n == 0 {
			return fmt.Errorf("registry answered %s to a request without Range", resp.Status)
		}
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return err
		}
		if start != b.n {
			return fmt.Errorf("asked for bytes from %d, registry sent Content-Range %q", b.n, resp.Header.Get("Content-Range"))
		}
		if total > size || resp.ContentLength > size-b.n {
			return errorf(ErrTooLarge, "registry announces more than the %d bytes the descriptor says", size)
		}
		return nil
	case http.StatusRequestedRangeNotSatisfiable:
		if b.n > 0 {
			return fmt.Errorf("blob ended after %d bytes, descriptor says %d", b.n, size)
		}
	}
	return responseError(resp, "blob "+b.ref.Name())
}

// parseContentRange reads "bytes START-END/TOTAL"; total is -1 for "*".
func parseContentRange(v string) (start, total int64, err error) {
	bad := fmt.Errorf("malformed Content-Range %q", v)
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, bad
	}
	span, totalStr, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, bad
	}
	startStr, _, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, bad
	}
	if start, err = strconv.ParseInt(startStr, 10, 64); err != nil || start < 0 {
		return 0, 0, bad
	}
	total = -1
	if totalStr != "*" {
		if total, err = strconv.ParseInt(totalStr, 10, 64); err != nil {
			return 0, 0, bad
		}
	}
	return start, total, nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if b.body == nil {
			if err := b.open(); err != nil {
				return 0, b.fail(err)
			}
		}
		// Read at most one byte past the end, enough to see an oversize blob.
		remaining := b.desc.Size - b.n
		if int64(len(p)) > remaining {
			p = p[:remaining+1]
		}
		n, err := b.body.Read(p)
		if int64(n) > remaining {
			b.n += remaining
			return int(remaining), b.fail(errorf(ErrTooLarge, "registry sent more than the %d bytes the descriptor says", b.desc.Size))
		}
		b.n += int64(n)
		if n > 0 {
			b.failures = 0
		}
		switch {
		case err == nil:
			return n, nil
		case err == io.EOF && b.n == b.desc.Size:
			return n, io.EOF
		}
		if err := b.broken(err); err != nil {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// broken handles a stream that ended early or failed: it closes it and,
// unless ctx has ended or too many attempts brought nothing, waits before
// the next request. A non-nil result is the error to return for good.
func (b *blobReader) broken(cause error) error {
	b.body.Close()
	b.body = nil
	if err := b.ctx.Err(); err != nil {
		return b.fail(err)
	}
	if cause == io.EOF {
		cause = io.ErrUnexpectedEOF
	}
	b.failures++
	if errors.Is(cause, ErrStalled) {
		b.stalls++
		if b.stalls >= b.c.opts.Retries {
			return b.fail(fmt.Errorf("stream stalled at byte %d of %d, %d times: %w", b.n, b.desc.Size, b.stalls, cause))
		}
	}
	if b.failures >= b.c.opts.Retries {
		return b.fail(fmt.Errorf("stream broke at byte %d of %d, %d times without progress: %w", b.n, b.desc.Size, b.failures, cause))
	}
	if err := sleep(b.ctx, backoffDelay(b.c.opts.Backoff, b.failures)); err != nil {
		return b.fail(err)
	}
	return nil
}

// fail makes err sticky, wrapped with the blob's digest.
func (b *blobReader) fail(err error) error {
	if b.body != nil {
		b.body.Close()
		b.body = nil
	}
	b.err = fmt.Errorf("fetch blob %s: %w", b.desc.Digest, err)
	return b.err
}

func (b *blobReader) Close() error {
	if b.body != nil {
		b.body.Close()
		b.body = nil
	}
	if b.err == nil {
		b.err = fmt.Errorf("fetch blob %s: %w", b.desc.Digest, errClosed)
	}
	return nil
}
