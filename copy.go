package roots

import (
	"context"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// CopyOptions say how CopyImage works.
type CopyOptions struct {
	// Cache, if set, is a cache whose blobs and manifests are read instead of the source's
	// (and which remembers the target as a source of its blobs). CopyImage adds nothing else to
	// it, and creates none: a Cache that does not exist is not used.
	Cache string
	// Platform, if set, copies only that platform's manifest of a multi-platform image. nil
	// copies the reference as it is: an index and every manifest it lists.
	Platform *fetch.Platform
	// ChunkSize, if positive, uploads blobs in PATCH chunks of this many bytes.
	ChunkSize int64
	// Jobs is how many blobs of a manifest are settled at once; 0 is 4.
	Jobs int
	// Registry says how to reach and log in to both registries.
	Registry fetch.Options
	// Progress is as PushOptions.Progress.
	Progress func(BlobResult)
	// Holders, if set, remembers the repositories that copies wrote blobs into, for later
	// copies to mount from (one Holders for the copies of a sync).
	Holders *Holders
}

// CopyImage copies the image src names to dst, registry to registry, byte for byte: dst's digest is
// src's. Every blob travels at most once, and only when dst lacks it and cannot mount it from
// src's repository (same registry) or one the cache remembers: it is then streamed from the
// cache, or from src through a reader that verifies it. When dst already names src's digest,
// CopyImage costs one manifest HEAD on each side (with a Platform, a GET of src's index instead
// of its HEAD) and reports Unchanged.
func CopyImage(ctx context.Context, src, dst string, opts CopyOptions) (*Pushed, error) {
	from, err := fetch.ParseReference(src)
	if err != nil {
		return nil, err
	}
	to, err := fetch.ParseReference(dst)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Pushed, error) {
		return nil, fmt.Errorf("copy %s to %s: %w", from, to, err)
	}
	if opts.ChunkSize < 0 || opts.Jobs < 0 {
		return fail(fmt.Errorf("chunk size %d, %d jobs: neither may be negative", opts.ChunkSize, opts.Jobs))
	}
	var c *cas.Cache
	if _, err := os.Stat(opts.Cache); opts.Cache != "" && err == nil { // a copy makes no cache
		if c, err = cas.Open(ctx, opts.Cache); err != nil {
			return fail(err)
		}
		defer c.Close()
		opts.Registry.Local = cas.BlobDir(opts.Cache)
	}
	client := fetch.New(opts.Registry)
	var want digest.Digest
	if opts.Platform == nil {
		want, err = client.Digest(ctx, from, nil) // a HEAD
	} else {
		want, err = client.Digest(ctx, from, opts.Platform)
	}
	if err != nil {
		return fail(err)
	}
	if have, err := client.ServerOnly().Digest(ctx, to, nil); err == nil && have == want {
		return &Pushed{Reference: to.String(), Digest: want, Manifests: []ManifestResult{}, Blobs: []BlobResult{}, Unchanged: true}, nil
	}
	t := newTransfer(client, c, from, to, "", opts.ChunkSize, opts.Jobs, opts.Progress)
	t.known = opts.Holders
	pushed, err := t.run(ctx, want, "")
	if err != nil {
		return fail(err)
	}
	return pushed, nil
}
