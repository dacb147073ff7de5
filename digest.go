package roots

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// DigestOptions say where Digest asks.
type DigestOptions struct {
	// Cache is read for configs a digest by platform needs, and is all Offline reads.
	Cache string
	// Platform, if set, asks for that platform's manifest's digest rather than what the
	// reference names (an index, for a multi-platform image).
	Platform *fetch.Platform
	// Registry says how to reach and log in to the registry.
	Registry fetch.Options
	// Offline answers from the cache alone, as PullOptions.Offline pulls: a tag from the
	// cache's record of it, a digest from the cached manifest (which is read and checked);
	// what the cache lacks or holds corrupt is an error wrapping ErrOffline.
	Offline bool
}

// Digested is what Digest found.
type Digested struct {
	Digest digest.Digest
	// Recorded: offline, when the cache's record of the tag was made (zero for a digest).
	Recorded time.Time
}

// Digest is the digest ref resolves to: the registry's answer now (a HEAD where it can), or
// offline the cache's record of it. Without a platform it is what ref names, an index's digest
// for a multi-platform image; with one, that platform's manifest's.
func Digest(ctx context.Context, ref string, opts DigestOptions) (*Digested, error) {
	r, err := fetch.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	opts.Registry.Offline = opts.Offline || opts.Registry.Offline
	if opts.Registry.Offline {
		if opts.Cache == "" {
			return nil, fmt.Errorf("digest %s: %w with no cache: there is nothing to answer from", r, ErrOffline)
		}
		d, at, err := offlineDigest(opts.Cache, r, opts.Platform)
		if err != nil {
			return nil, fmt.Errorf("digest %s: %w", r, err)
		}
		return &Digested{Digest: d, Recorded: at}, nil
	}
	if opts.Cache != "" {
		if _, err := os.Stat(opts.Cache); err == nil {
			opts.Registry.Local = cas.BlobDir(opts.Cache) // a config by digest needs no round trip
		}
	}
	d, err := fetch.New(opts.Registry).Digest(ctx, r, opts.Platform)
	if err != nil {
		return nil, fmt.Errorf("digest %s: %w", r, err)
	}
	return &Digested{Digest: d}, nil
}
