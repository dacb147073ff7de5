package roots

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// PushOptions say how Push works.
type PushOptions struct {
	// Cache is the cache directory that holds the image (required).
	Cache string
	// Platform, if set, pushes only that platform's manifest, as pulled. nil pushes what the
	// reference resolved to when it was pulled: for a multi-platform image, the index and
	// every manifest it lists (those not pulled, and their blobs, come from the image's
	// source), so that the target's digest is the one roots ls shows.
	Platform *fetch.Platform
	// Format rewrites the manifests' media types into OCI or Docker schema2 ("": as they
	// are, byte for byte). Blobs keep their digests; a layer the format has no media type for
	// (zstd in Docker) is an error wrapping ErrFormat before anything is sent.
	Format Format
	// ChunkSize, if positive, uploads blobs in PATCH chunks of this many bytes.
	ChunkSize int64
	// Jobs is how many blobs of a manifest are settled at once; 0 is 4.
	Jobs int
	// Registry says how to reach and log in to registries. Push sets Local to the cache.
	Registry fetch.Options
	// Progress, if set, is told each blob's action once it is settled. It is called from
	// several goroutines at once and must not block.
	Progress func(BlobResult)
}

// Push writes the image the cache holds under image (a reference that was pulled) to dest,
// by default image's own registry and repository ("" dest). For each blob, a HEAD says
// whether dest has it; else a repository of dest's registry known to hold it (the image's
// source, or one the cache remembers) mounts it; else it is uploaded from the cache (a blob
// the cache lacks streams from the image's source, verified). The manifest is written last,
// byte for byte unless Format converts it, so that dest's digest is the cached image's.
func Push(ctx context.Context, image, dest string, opts PushOptions) (*Pushed, error) {
	src, err := fetch.ParseReference(image)
	if err != nil {
		return nil, err
	}
	dst := src
	if dest != "" {
		if dst, err = fetch.ParseReference(dest); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*Pushed, error) {
		return nil, fmt.Errorf("push %s to %s: %w", src, dst, err)
	}
	switch {
	case opts.Cache == "":
		return fail(fmt.Errorf("%w: no cache given", ErrNotInCache))
	case opts.Format != "" && opts.Format != FormatOCI && opts.Format != FormatDocker:
		return fail(fmt.Errorf("unknown format %q: want oci or docker", opts.Format))
	case opts.ChunkSize < 0 || opts.Jobs < 0:
		return fail(fmt.Errorf("chunk size %d, %d jobs: neither may be negative", opts.ChunkSize, opts.Jobs))
	}
	c, err := cas.Open(ctx, opts.Cache)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	rec, err := findImage(c, src, opts.Platform)
	if err != nil {
		return fail(err)
	}
	top, topType := rec.Digest, rec.MediaType
	switch {
	case src.Digest != "": // the record's manifest or its index, as findImage matched
		top = src.Digest
		if top == rec.Index {
			topType = rec.IndexType
		}
	case rec.Index != "" && opts.Platform == nil:
		top, topType = rec.Index, rec.IndexType
	}
	if r, err := fetch.ParseReference(rec.Reference); err == nil {
		src = r // where its blobs came from
	}
	opts.Registry.Local = cas.BlobDir(opts.Cache)
	t := newTransfer(fetch.New(opts.Registry), c, src, dst, opts.Format, opts.ChunkSize, opts.Jobs, opts.Progress)
	t.local = rec.Local
	pushed, err := t.run(ctx, top, topType)
	if err != nil {
		return fail(err)
	}
	if rec.Local {
		if err := c.MarkPushed(rec.Digest); err != nil {
			return fail(err)
		}
	}
	return pushed, nil
}

// PushFrom pushes the image that the destination from (a directory pulled with the cache)
// holds: what it was last committed as (roots commit), or else what was pulled into it. target
// "" is the tag it was committed with (commit --tag), or else the reference it was pulled as.
// A directory the cache has no record of is an error wrapping ErrNotPulled.
func PushFrom(ctx context.Context, from, target string, opts PushOptions) (*Pushed, error) {
	abs, err := filepath.Abs(from)
	if err != nil {
		return nil, err
	}
	if from, err = assemble.Canonical(abs); err != nil {
		return nil, err
	}
	fail := func(err error) (*Pushed, error) { return nil, fmt.Errorf("push --from %s: %w", from, err) }
	if opts.Cache == "" {
		return fail(kindErrorf(ErrNotPulled, "no cache given: a destination pulled with --cache=no has no record"))
	}
	c, err := cas.Open(ctx, opts.Cache)
	if err != nil {
		return fail(err)
	}
	rec, err := leaseToPush(ctx, c, from)
	c.Close()
	if err != nil {
		return fail(err)
	}
	image, err := fetch.ParseReference(rec.Image)
	if err != nil {
		return fail(fmt.Errorf("the record's image %q: %w", rec.Image, err))
	}
	if target == "" {
		target = rec.Image
		if image.Tag == "" && rec.Pulled != "" {
			pulled, err := fetch.ParseReference(rec.Pulled)
			if err != nil {
				return fail(fmt.Errorf("the record's pulled image %q: %w", rec.Pulled, err))
			}
			pulled.Digest = ""
			target = pulled.String()
		}
	}
	image.Digest, image.Tag = rec.Digest, "" // what from holds, though the tag may have moved since
	opts.Platform = nil
	return Push(ctx, image.String(), target, opts)
}

// leaseToPush reads the record of the destination from, after ending a commit of it that was
// killed half-way (destLease).
func leaseToPush(ctx context.Context, c *cas.Cache, from string) (cas.Lease, error) {
	rec, held, err := destLease(ctx, c, from, "pull it with roots pull first")
	held.Release()
	return rec, err
}

// run plans and sends the manifest or index d of the source (of mediaType, if known) into the
// target's reference.
func (t *transfer) run(ctx context.Context, d digest.Digest, mediaType string) (*Pushed, error) {
	body, mt, err := t.manifest(ctx, d, mediaType)
	if err != nil {
		return nil, err
	}
	root, err := t.plan(ctx, t.dst, body, mt)
	if err != nil {
		return nil, err
	}
	if t.dst.Digest != "" && t.dst.Digest != root.desc.Digest {
		return nil, fmt.Errorf("%w: the image is %s, the target names %s", fetch.ErrDigestMismatch, root.desc.Digest, t.dst.Digest)
	}
	if err := t.send(ctx, root, true); err != nil {
		return nil, err
	}
	return t.result(root), nil
}

// findImage returns the most recently used record of the cache for ref (by its tag, or by a
// digest that is the record's manifest or index) and, if want is set, that platform.
func findImage(c *cas.Cache, ref fetch.Reference, want *fetch.Platform) (*cas.ImageRecord, error) {
	images, err := c.Images()
	if err != nil {
		return nil, err
	}
	for _, o := range images {
		r := o.Image
		if r == nil {
			continue
		}
		name := r.Reference
		if name == "" {
			name = referenceOf(o.Name)
		}
		got, err := fetch.ParseReference(name)
		if err != nil || got.Name() != ref.Name() {
			continue
		}
		if ref.Digest != "" && ref.Digest != r.Digest && ref.Digest != r.Index || ref.Digest == "" && got.Tag != ref.Tag {
			continue
		}
		if want != nil {
			if p, err := fetch.ParsePlatform(r.Platform); err != nil || !want.Match(p) {
				continue
			}
		}
		return r, nil
	}
	what := "the image"
	if want != nil {
		what = "its " + want.String() + " image"
	}
	return nil, fmt.Errorf("%s: %w (pull %s first)", what, ErrNotInCache, what)
}
