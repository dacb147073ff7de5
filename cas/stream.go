package cas

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"syscall"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/cas/layer"
)

// Layer names one layer of an image: its blob and the digest of its tar.
type Layer struct {
	Digest    digest.Digest // of the compressed blob
	Size      int64         // of the compressed blob
	MediaType string
	DiffID    digest.Digest // of the uncompressed tar, from the image config
}

func (l Layer) check() error {
	if err := checkDigest(l.Digest); err != nil {
		return err
	}
	if err := checkDigest(l.DiffID); err != nil {
		return fmt.Errorf("diff id: %w", err)
	}
	if l.Size < 0 {
		return fmt.Errorf("layer %s: negative size %d", l.Digest, l.Size)
	}
	return nil
}

// Stream reads a layer's blob from r in one pass: every byte goes through the
// blob's hasher and into keep (when not nil), and through the decompressor and
// the diff id hasher into use, which gets the uncompressed tar. When use returns,
// the rest of r is read, and the blob's size and both digests are checked. An
// error wraps ErrDigestMismatch or ErrSizeMismatch with the layer, expected and
// actual values.
func Stream(ctx context.Context, l Layer, r io.Reader, keep io.Writer, use func(tar io.Reader) error) error {
	if err := l.check(); err != nil {
		return err
	}
	blob := &counter{h: sha256.New(), limit: l.Size}
	net := &sticky{r: r}
	var src io.Reader = io.TeeReader(net, blob)
	kept := &stickyWriter{w: keep}
	if keep != nil {
		src = io.TeeReader(src, kept)
	}
	diff := &counter{h: sha256.New(), limit: -1}
	useErr := func() error {
		tar, err := layer.Decompress(l.MediaType, src)
		if err != nil {
			return err
		}
		err = use(io.TeeReader(tar, diff))
		if err == nil {
			// Whatever use left unread still counts: tar padding, trailing data.
			_, err = io.Copy(diff, tar)
		}
		if cerr := tar.Close(); err == nil {
			err = cerr
		}
		return err
	}()
	// Read the rest of the blob (bounded by its size) even after a failure, so
	// that a corrupt blob is reported as such rather than as the tar or gzip
	// error it caused.
	if _, err := io.Copy(io.Discard, src); useErr == nil && err != nil {
		useErr = err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	// A full or read-only disk is the machine's trouble, not the registry's: say so before the
	// size and digest checks, which a blob cut short by a failed write would fail too.
	for _, err := range []error{kept.err, useErr} {
		if IsDiskFull(err) {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
	}
	if net.err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, net.err)
	}
	if blob.n != l.Size {
		return fmt.Errorf("layer %s: %w: expected %d bytes, got %d", l.Digest, ErrSizeMismatch, l.Size, blob.n)
	}
	if got := digest.NewDigest(digest.SHA256, blob.h); got != l.Digest {
		return fmt.Errorf("layer %s: %w: expected %s, got %s", l.Digest, ErrDigestMismatch, l.Digest, got)
	}
	if useErr != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, useErr)
	}
	if got := digest.NewDigest(digest.SHA256, diff.h); got != l.DiffID {
		return fmt.Errorf("layer %s: uncompressed content: %w: expected diff id %s, got %s", l.Digest, ErrDigestMismatch, l.DiffID, got)
	}
	return nil
}

// counter hashes and counts what is written to it, and fails past limit
// (limit < 0: none) so a registry cannot send more than it announced.
type counter struct {
	h     hash.Hash
	n     int64
	limit int64
}

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.limit >= 0 && c.n > c.limit {
		return 0, fmt.Errorf("%w: more than the %d bytes announced", ErrSizeMismatch, c.limit)
	}
	return c.h.Write(p)
}

// sticky remembers the first error, other than EOF, of the reader it wraps, so
// a broken download is reported as what it is.
type sticky struct {
	r   io.Reader
	err error
}

func (s *sticky) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// stickyWriter remembers the first error of the writer it wraps (nil: a writer of nothing).
type stickyWriter struct {
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

// IsDiskFull reports whether err is a filesystem refusing a write for want of room or of
// permission to write at all: ENOSPC, EDQUOT or EROFS.
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}
