package main

import (
	"context"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
)

// CopyCmd copies an image between registries.
type CopyCmd struct {
	Src          string `arg:"" help:"Image to copy: host/repo:tag or host/repo@sha256:..."`
	Dst          string `arg:"" help:"Where to copy it: host/repo:tag."`
	AllPlatforms bool   `name:"all-platforms" help:"Copy the index and every platform (the default; as skopeo copy --all)."`
	ChunkSize    string `name:"chunk-size" help:"Upload blobs in PATCH chunks of this size." placeholder:"SIZE"`
	Jobs         int    `short:"j" default:"4" help:"Blobs to copy at once."`
	JSON         bool   `name:"json" help:"Print one JSON object: the digest and what was done for each blob."`
	Quiet        bool   `short:"q" help:"Print no progress line, even on a terminal (the digest still goes to stdout)."`
	cacheFlags
	registryFlags
	platformFlags
}

// Help shows examples under `roots copy --help`.
func (CopyCmd) Help() string {
	return `Copies SRC to DST as it is: a multi-platform image's index and every manifest
it lists, byte for byte, so DST's digest is SRC's (--platform copies one
platform's manifest). Blobs DST has are not sent, blobs of SRC's repository on
the same registry are mounted, the others stream from the cache when it holds
them, else from SRC, verified. A DST that already has SRC's digest costs one
HEAD on each side.

Examples:
  roots copy docker.io/library/debian:12 127.0.0.1:5000/mirror/debian:12
  roots copy --platform linux/arm64 ghcr.io/o/app:1 registry.example.com/app:1-arm64
  roots copy --json host:5000/app:1 host:5000/app:stable`
}

// Run copies.
func (c *CopyCmd) Run(ctx context.Context, e *env) error {
	for _, r := range []string{c.Src, c.Dst} {
		if _, err := fetch.ParseReference(r); err != nil {
			return usageError{err}
		}
	}
	want, err := c.platform()
	if err != nil {
		return err
	}
	if want != nil && c.AllPlatforms {
		return usagef("--all-platforms and --platform: give one or the other")
	}
	chunk, err := chunkSize(c.ChunkSize)
	if err != nil {
		return err
	}
	if c.Jobs < 1 {
		return usagef("--jobs %d: need at least 1", c.Jobs)
	}
	cacheDir, err := c.cacheDir(e)
	if err != nil {
		return err
	}
	reg, err := c.options(e)
	if err != nil {
		return err
	}
	out := newTransferOutput(e, c.JSON, c.Quiet)
	copied, err := roots.CopyImage(ctx, c.Src, c.Dst, roots.CopyOptions{
		Cache: cacheDir, Platform: want, ChunkSize: chunk, Jobs: c.Jobs, Registry: reg, Progress: out.blob,
	})
	if err != nil {
		return c.credentialHint(e, err)
	}
	return out.done(copied)
}
