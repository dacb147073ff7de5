// Package verify is the home of the errors that say content is not what its descriptor says,
// which fetch (from the registry) and cas (from the cache) both report: fetch.ErrDigestMismatch
// and cas.ErrDigestMismatch are the same error.
package verify

import "errors"

var (
	// ErrDigestMismatch: content does not hash to the digest it was asked by.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: content's length differs from its descriptor's size.
	ErrSizeMismatch = errors.New("size mismatch")
)
