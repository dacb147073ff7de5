package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// UploadOptions tune PushBlob.
type UploadOptions struct {
	// ChunkSize, if positive, uploads in PATCH requests of this many bytes
	// (the last one shorter). A registry that announces OCI-Chunk-Min-Length
	// gets chunks of at least that size, with or without ChunkSize.
	ChunkSize int64
}

// errNoReplay is what an upload body's GetBody returns: an upload request is
// never resent with a body it cannot reproduce; the session starts over.
var errNoReplay = errors.New("upload request cannot be resent: the session starts over")

// PushBlob uploads the blob desc describes (digest and size) to target's
// repository (its tag and digest are ignored). open returns the blob's bytes
// from the start; they stream to the registry and are never held whole in
// memory.
//
// A session is one POST /v2/<name>/blobs/uploads/ and then either one
// PUT <Location>?digest=<d> with the whole body (monolithic), or, with a chunk
// size (UploadOptions.ChunkSize or the registry's OCI-Chunk-Min-Length, the
// larger), PATCH requests in order, each with an inclusive Content-Range and
// sent to the Location the previous answer gave, closed by a PUT
// <Location>?digest=<d> without a body. The registry must answer 201, with a
// Docker-Content-Digest of d if it sends one.
//
// Every request follows the Location of the answer before it, resolved
// against that request's URL; a Location on another host (an object store)
// gets no credential, as the auth transport sends none off the registry's
// host, and a plain HTTP one is refused unless plain HTTP is allowed there
// (loopback, Options.Insecure).
//
// A session that fails in a way that may pass (a cut or stalled connection, a
// 5xx, a 416 range error, a session the registry forgot, a token it refused
// half way) is abandoned and a new one starts, from a new POST and a new open:
// bytes already sent are never trusted to resume, and no request is replayed
// within a session. The abandoned session is left to the registry's purge. At most Options.Retries sessions are tried, with the
// pull's backoff between them. A stream that stalls (Options.IdleTimeout) ends
// its session; its ReadCloser is then closed while a Read may be blocked, as
// files and pipes allow.
//
// A stream that is longer or shorter than desc.Size fails with
// ErrSizeMismatch, and bytes that do not hash to desc.Digest with
// ErrDigestMismatch (the registry refuses them); neither is retried.
func (c *Client) PushBlob(ctx context.Context, target Reference, desc ocispec.Descriptor, open func(context.Context) (io.ReadCloser, error), opts UploadOptions) error {
	fail := func(err error) error {
		return fmt.Errorf("push blob %s to %s: %w", desc.Digest, target.Name(), err)
	}
	if err := checkRepoDigest(target, desc.Digest); err != nil {
		return fail(err)
	}
	if desc.Size < 0 {
		return fail(errorf(ErrInvalidManifest, "invalid descriptor: negative size %d", desc.Size))
	}
	u := &upload{c: c, hc: c.pushClient(target), repo: target, desc: desc, open: open, chunk: opts.ChunkSize}
	if err := c.retrying(ctx, func() error { return u.session(ctx) }); err != nil {
		return fail(err)
	}
	return nil
}

// upload is one blob's upload, across its sessions.
type upload struct {
	c     *Client
	hc    *http.Client
	repo  Reference
	desc  ocispec.Descriptor
	open  func(context.Context) (io.ReadCloser, error)
	chunk int64
}

// session runs one upload session from its POST to its closing PUT.
func (u *upload) session(ctx context.Context) error {
	resp, err := u.send(ctx, http.MethodPost, endpoint(u.repo, "blobs", "uploads/"), nil, nil)
	if err != nil {
		return err
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return pushStatusError(resp, u.repo)
	}
	loc, err := u.c.location(resp)
	if err != nil {
		return err
	}
	chunk := u.chunk
	if v, err := strconv.ParseInt(resp.Header.Get("OCI-Chunk-Min-Length"), 10, 64); err == nil && v > chunk {
		chunk = v
	}

	rc, err := u.open(ctx)
	if err != nil {
		return fmt.Errorf("open the blob: %w", err)
	}
	src := &uploadSource{rc: rc, size: u.desc.Size}
	defer src.Close()
	if chunk <= 0 && u.desc.Size > 0 {
		return u.finish(ctx, loc, src)
	}
	for off := int64(0); off < u.desc.Size; { // chunks; none for an empty blob
		n := min(chunk, u.desc.Size-off)
		if loc, err = u.patch(ctx, loc, src, off, n); err != nil {
			return err
		}
		off += n
	}
	if err := src.atEnd(); err != nil {
		return err
	}
	return u.finish(ctx, loc, nil)
}

// patch sends bytes off..off+n-1 of src to loc and returns where the next
// request of the session goes.
func (u *upload) patch(ctx context.Context, loc *url.URL, src *uploadSource, off, n int64) (*url.URL, error) {
	header := http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+n-1, 10)},
	}
	body := &chunkBody{src: src}
	body.left.Store(n)
	resp, err := u.send(ctx, http.MethodPatch, loc.String(), header, body)
	if err != nil {
		return nil, err
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent {
		return nil, pushStatusError(resp, u.repo)
	}
	if r := resp.Header.Get("Range"); r != "" {
		if end, ok := rangeEnd(r); ok && end != off+n-1 {
			return nil, &againError{err: fmt.Errorf("registry holds the upload up to byte %d, after sending up to byte %d", end, off+n-1)}
		}
	}
	return u.c.location(resp)
}

// finish closes the session with PUT loc?digest=d, carrying the whole blob
// when src is not nil (monolithic), else an empty body.
func (u *upload) finish(ctx context.Context, loc *url.URL, src *uploadSource) error {
	done := *loc
	if done.RawQuery != "" {
		done.RawQuery += "&"
	}
	done.RawQuery += "digest=" + url.QueryEscape(u.desc.Digest.String())
	header := http.Header{"Content-Type": {"application/octet-stream"}}
	var body io.ReadCloser = http.NoBody
	if src != nil {
		body = src
	}
	resp, err := u.send(ctx, http.MethodPut, done.String(), header, body)
	if err != nil {
		return err
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return pushStatusError(resp, u.repo)
	}
	return checkStoredDigest(resp, u.desc.Digest)
}

// send sends one request of a session. A body is sent with its exact length
// (the blob's size, or the chunk's) and is never replayed.
func (u *upload) send(ctx context.Context, method, target string, header http.Header, body io.ReadCloser) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	switch b := body.(type) {
	case nil:
	case *uploadSource:
		req.Body, req.ContentLength = b, b.size
	case *chunkBody:
		req.Body, req.ContentLength = b, b.left.Load()
	default:
		req.Body, req.ContentLength = body, 0
	}
	if req.ContentLength > 0 {
		req.GetBody = func() (io.ReadCloser, error) { return nil, errNoReplay }
	} else {
		req.Body = http.NoBody
	}
	resp, err := u.c.send(u.hc, req)
	if err != nil {
		return nil, u.sendError(method, err, body)
	}
	return resp, nil
}

// sendError sorts out why a request of a session failed. A stall is worth
// another session; a failure of the blob's own stream (a size mismatch, a
// source that broke) is returned as the stream gave it, without the network
// error the transport wrapped around it, and ends the push unless it is
// transient; a connection the registry dropped while the body was going out
// (reset, closed under the writer), or a request that had to be resent, is
// worth another session.
func (u *upload) sendError(method string, err error, body io.ReadCloser) error {
	if errors.Is(err, ErrStalled) {
		return &againError{err: err}
	}
	var src *uploadSource
	switch b := body.(type) {
	case *uploadSource:
		src = b
	case *chunkBody:
		src = b.src
	}
	if src != nil && src.err != nil {
		if transientError(src.err) {
			return &againError{err: src.err}
		}
		return src.err
	}
	err = fmt.Errorf("%s of the upload: %w", method, err)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, errNoReplay) {
		// errNoReplay: the registry wanted the request again (a token that
		// expired, a connection lost before the body went out), and a new
		// session will carry the new token.
		return &againError{err: err}
	}
	return againIfTransient(err)
}

// rangeEnd reads the end of an upload's Range header ("0-1023"; some
// registries write "bytes=0-1023").
func rangeEnd(v string) (int64, bool) {
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[i+1:], 10, 64)
	return n, err == nil
}

// uploadSource is the stream open returned, held to its size: one byte more,
// or an end before size, is ErrSizeMismatch, and a longer stream fails before
// its size-th byte is handed on. Close closes the stream once,
// and may be called while a Read is blocked.
type uploadSource struct {
	rc   io.ReadCloser
	size int64
	n    int64
	err  error
	once sync.Once
}

func (s *uploadSource) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if left := s.size - s.n + 1; int64(len(p)) > left {
		p = p[:left] // one byte past the end is enough to see a longer stream
	}
	n, err := s.rc.Read(p)
	s.n += int64(n)
	if s.n == s.size && err == nil {
		// Look one byte ahead before the last bytes go out, so that a
		// longer stream fails before the registry has a whole blob.
		var b [1]byte
		m, perr := io.ReadFull(s.rc, b[:])
		s.n += int64(m)
		err = perr
	}
	switch {
	case s.n > s.size:
		s.err = errorf(ErrSizeMismatch, "size mismatch: the blob's stream is longer than its %d bytes", s.size)
		return 0, s.err
	case err == io.EOF && s.n < s.size:
		s.err = errorf(ErrSizeMismatch, "size mismatch: the blob's stream ended after %d of its %d bytes", s.n, s.size)
		return n, s.err
	case err != nil && err != io.EOF:
		s.err = fmt.Errorf("read the blob: %w", err)
		return n, s.err
	}
	return n, err
}

// atEnd checks, after the last chunk, that the stream has no more bytes.
func (s *uploadSource) atEnd() error {
	var b [1]byte
	for {
		n, err := s.Read(b[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n > 0 { // not reached: Read fails past size
			return errorf(ErrSizeMismatch, "size mismatch: the blob's stream is longer than its %d bytes", s.size)
		}
	}
}

func (s *uploadSource) Close() error {
	var err error
	s.once.Do(func() { err = s.rc.Close() })
	return err
}

// chunkBody is one PATCH's share of the stream. The transport closes it when
// the request ends: a chunk sent whole leaves the stream open for the next
// one; a chunk abandoned half way (a failed or stalled request) closes the
// stream, whose session is over.
type chunkBody struct {
	src  *uploadSource
	left atomic.Int64
}

func (b *chunkBody) Read(p []byte) (int, error) {
	left := b.left.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := b.src.Read(p)
	b.left.Add(-int64(n))
	if err == io.EOF {
		err = nil // the stream's end before the chunk's is caught by uploadSource
	}
	return n, err
}

func (b *chunkBody) Close() error {
	if b.left.Load() > 0 {
		return b.src.Close()
	}
	return nil
}
