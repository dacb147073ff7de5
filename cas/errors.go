package cas

import "github.com/rootsdev/roots/internal/verify"

var (
	// ErrDigestMismatch means bytes did not hash to the digest they were fetched by. It is
	// fetch.ErrDigestMismatch.
	ErrDigestMismatch = verify.ErrDigestMismatch
	// ErrSizeMismatch means a blob's length differs from its descriptor's size.
	ErrSizeMismatch = verify.ErrSizeMismatch
)
