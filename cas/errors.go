package cas

import "errors"

var (
	// ErrDigestMismatch means bytes did not hash to the digest they were fetched by.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch means a blob's length differs from its descriptor's size.
	ErrSizeMismatch = errors.New("size mismatch")
)
