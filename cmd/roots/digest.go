package main

import (
	"context"
	"fmt"

	"github.com/rootsdev/roots/fetch"
)

// DigestCmd prints a manifest digest.
type DigestCmd struct {
	Image string `arg:"" help:"Image reference."`
	registryFlags
	platformFlags
}

// Help shows examples under `roots digest --help`.
func (DigestCmd) Help() string {
	return `Prints the digest of the image's manifest (of its index for a multi-platform image),
or with --platform the digest of that platform's manifest. Compare it with an
earlier run to tell whether the image changed.

Examples:
  roots digest debian:12
  roots digest --platform linux/arm64 debian:12`
}

// Run prints the digest.
func (d *DigestCmd) Run(ctx context.Context, e *env) error {
	ref, err := fetch.ParseReference(d.Image)
	if err != nil {
		return usageError{err}
	}
	want, err := d.platform()
	if err != nil {
		return err
	}
	opts, err := d.options(e)
	if err != nil {
		return err
	}
	dg, err := fetch.New(opts).Digest(ctx, ref, want)
	if err != nil {
		return fmt.Errorf("digest %s: %w", ref, err)
	}
	fmt.Fprintln(e.stdout, dg)
	return nil
}
