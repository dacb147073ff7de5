package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
)

// CommitCmd writes what changed in a destination as a new layer and image in the cache.
type CommitCmd struct {
	Dest        string `arg:"" help:"A directory pulled with roots pull (any --mode, with the cache)."`
	Message     string `short:"m" required:"" help:"What the change is: the new layer's history comment."`
	Tag         string `short:"t" help:"Name the new image IMAGE in the cache (roots push and roots pull use it). Default: named by its digest in the repository DEST was pulled from." placeholder:"IMAGE"`
	Compression string `default:"gzip" enum:"gzip,zstd,none" help:"Compress the layer with gzip, zstd or none (a Docker schema2 image takes gzip only)."`
	Checksum    bool   `short:"c" help:"Compare the contents of files whose size, mtime, mode, owner and xattrs are unchanged (rsync --checksum; files a hardlink DEST still shares with the cache are its image's by construction); slower."`
	JSON        bool   `name:"json" help:"Print one JSON object: the layer, its diff id, size, the manifest and config digests."`
	cacheFlags
}

// Help shows examples under `roots commit --help`.
func (CommitCmd) Help() string {
	return `Writes what changed in DEST since its pull (or its last commit) as one new
layer on top of its image, and a new image in the cache: the layer blob and its
unpacked tree, a config with the new diff id and a history entry, a manifest in
the image's format. roots push --from DEST then sends only the new layer and the
config. Files a hardlink DEST still shares with the cache are unchanged without
being read; an overlay DEST's upper directory is the change set. Deleted paths
become whiteouts. A DEST pulled with -g also gets a git branch for the layer.

Examples:
  roots pull debian:12 ./rootfs
  chroot ./rootfs apt-get install -y curl
  roots commit ./rootfs -m "curl" --tag registry.example.com/team/debian-curl:12
  roots push --from ./rootfs`
}

// Run commits.
func (c *CommitCmd) Run(ctx context.Context, e *env) error {
	if c.Tag != "" {
		r, err := fetch.ParseReference(c.Tag)
		if err != nil {
			return usageError{fmt.Errorf("--tag: %w", err)}
		}
		if r.Digest != "" {
			return usagef("--tag %s: name a tag; the digest is the commit's", c.Tag)
		}
	}
	cacheDir, err := c.cacheDir(e)
	if err != nil {
		return err
	}
	if cacheDir == "" {
		return usagef("--cache=no: a commit writes into the cache DEST was pulled with; name it with --cache DIR")
	}
	done, err := roots.Commit(ctx, c.Dest, roots.CommitOptions{
		Cache: cacheDir, Message: c.Message, Tag: c.Tag, Compression: roots.Compression(c.Compression), Checksum: c.Checksum,
	})
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(done)
	}
	if e.terminal {
		fmt.Fprintf(e.stderr, "committed %s: layer %s (%s, %d entries), diff id %s, in %.1fs\n",
			done.Image, done.Layer.Digest, humanBytes(done.Layer.Size), done.Entries, done.DiffID, done.Took.Seconds())
	}
	fmt.Fprintln(e.stdout, done.Manifest)
	return nil
}
