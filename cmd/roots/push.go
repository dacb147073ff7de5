package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
)

// PushCmd pushes a cached image to a registry.
type PushCmd struct {
	Image     string `arg:"" optional:"" help:"Image reference as pulled: debian:12, host:5000/repo:tag, host:5000/repo@sha256:... (with --from: where to push)."`
	Dest      string `arg:"" optional:"" help:"Where to push it (default: IMAGE's own registry, repository and tag)."`
	From      string `help:"Push what the directory DIR (pulled with roots pull) holds: its last commit, or what was pulled. Default target: the commit's --tag, else the reference pulled." placeholder:"DIR"`
	Format    string `help:"Write OCI or Docker schema2 manifests (default: as they are, byte for byte). Only media types change; a zstd layer cannot become Docker." placeholder:"oci|docker"`
	ChunkSize string `name:"chunk-size" help:"Upload blobs in PATCH chunks of this size (e.g. 16MiB; default: one PUT per blob, or the registry's OCI-Chunk-Min-Length)." placeholder:"SIZE"`
	Jobs      int    `short:"j" default:"4" help:"Blobs to push at once."`
	JSON      bool   `name:"json" help:"Print one JSON object: the digest and what was done for each blob."`
	Quiet     bool   `short:"q" help:"Print no progress line, even on a terminal (the digest still goes to stdout)."`
	cacheFlags
	registryFlags
	platformFlags
}

// Help shows examples under `roots push --help`.
func (PushCmd) Help() string {
	return `Pushes an image the cache holds (pulled) to a registry. For each blob a HEAD
tells whether DEST has it ("exists"); else a repository of DEST's registry known
to hold it mounts it ("mounted from REPO"); else it is uploaded from the cache
("pushed N bytes"); the manifest goes last, byte for byte, so DEST's digest is
the one roots ls shows. Without --platform a multi-platform image is pushed
whole (the index and every platform; what was not pulled comes from its source).

Examples:
  roots push registry.example.com/team/app:1.2                    # back where it came from
  roots push debian:12 127.0.0.1:5000/mirror/debian:12
  roots push --platform linux/amd64 --format docker debian:12 host:5000/debian:12
  roots push --chunk-size 16MiB --json app:1 host:5000/app:1
  roots push --from ./rootfs                                      # what roots commit made of it
  roots push --from ./rootfs host:5000/team/app:2`
}

// Run pushes.
func (p *PushCmd) Run(ctx context.Context, e *env) error {
	switch {
	case p.From != "" && p.Dest != "":
		return usagef("--from %s takes one image, where to push: got %s and %s", p.From, p.Image, p.Dest)
	case p.From == "" && p.Image == "":
		return usagef("name the image to push (or --from DIR)")
	}
	if p.Image != "" {
		if _, err := fetch.ParseReference(p.Image); err != nil {
			return usageError{err}
		}
	}
	if p.Dest != "" {
		if _, err := fetch.ParseReference(p.Dest); err != nil {
			return usageError{err}
		}
	}
	if p.Format != "" && p.Format != "oci" && p.Format != "docker" {
		return usagef("--format %q: want oci or docker", p.Format)
	}
	chunk, err := chunkSize(p.ChunkSize)
	if err != nil {
		return err
	}
	if p.Jobs < 1 {
		return usagef("--jobs %d: need at least 1", p.Jobs)
	}
	want, err := p.platform()
	if err != nil {
		return err
	}
	cacheDir, err := p.cacheDir(e)
	if err != nil {
		return err
	}
	if cacheDir == "" {
		return usagef("--cache=no: push sends what the cache holds; use roots copy SRC DST to copy between registries")
	}
	reg, err := p.options(e)
	if err != nil {
		return err
	}
	out := newTransferOutput(e, p.JSON, p.Quiet)
	opts := roots.PushOptions{
		Cache: cacheDir, Platform: want, Format: roots.Format(p.Format), ChunkSize: chunk, Jobs: p.Jobs,
		Registry: reg, Progress: out.blob,
	}
	var pushed *roots.Pushed
	if p.From != "" {
		if want != nil {
			return usagef("--from pushes the platform DIR holds: leave out --platform")
		}
		pushed, err = roots.PushFrom(ctx, p.From, p.Image, opts)
	} else {
		pushed, err = roots.Push(ctx, p.Image, p.Dest, opts)
	}
	if err != nil {
		return p.credentialHint(e, err)
	}
	return out.done(pushed)
}

// chunkSize parses --chunk-size ("" is none).
func chunkSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := parseSize(s)
	if err != nil || n <= 0 {
		return 0, usagef("--chunk-size %q: want a positive size such as 16MiB", s)
	}
	return n, nil
}

// transferOutput prints what a push or copy does: on a terminal a line per blob and the
// digest at the end; with --json one object at the end; nothing when quiet.
type transferOutput struct {
	e     *env
	json  bool
	lines bool
	mu    sync.Mutex
}

func newTransferOutput(e *env, asJSON, quiet bool) *transferOutput {
	return &transferOutput{e: e, json: asJSON, lines: !asJSON && !quiet && e.terminal}
}

// blob prints one blob's action (roots.PushOptions.Progress).
func (o *transferOutput) blob(b roots.BlobResult) {
	if !o.lines {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.e.stderr, "%s: %s\n", short(b.Digest.String()), blobAction(b))
}

// blobAction is how a blob's action reads on a terminal.
func blobAction(b roots.BlobResult) string {
	switch b.Action {
	case roots.BlobUploaded:
		return fmt.Sprintf("pushed %d bytes", b.Size)
	case roots.BlobMounted:
		return "mounted from " + b.From
	}
	return string(b.Action)
}

// done prints the result.
func (o *transferOutput) done(p *roots.Pushed) error {
	if o.json {
		enc := json.NewEncoder(o.e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	if o.lines {
		what := "pushed"
		if p.Unchanged {
			what = "unchanged"
		}
		fmt.Fprintf(o.e.stderr, "%s %s@%s\n", what, p.Reference, p.Digest)
	}
	fmt.Fprintln(o.e.stdout, p.Digest)
	return nil
}
