package cas

import (
	"errors"

	"github.com/rootsdev/roots/internal/verify"
)

var (
	// ErrDigestMismatch means bytes did not hash to the digest they were fetched by. It is
	// fetch.ErrDigestMismatch.
	ErrDigestMismatch = verify.ErrDigestMismatch
	// ErrSizeMismatch means a blob's length differs from its descriptor's size.
	ErrSizeMismatch = verify.ErrSizeMismatch
	// ErrUnwritable means the cache directory (or its layout) cannot be made: no permission, a
	// read-only filesystem, a missing parent.
	ErrUnwritable = errors.New("cache cannot be made")
)

// unwritable is err, which also matches ErrUnwritable (its message is err's alone).
type unwritable struct{ error }

func (u unwritable) Unwrap() error        { return u.error }
func (u unwritable) Is(target error) bool { return target == ErrUnwritable }
