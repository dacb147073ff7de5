package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
)

// DigestCmd prints a manifest digest.
type DigestCmd struct {
	Image string `arg:"" help:"Image reference."`
	offlineFlags
	cacheFlags
	registryFlags
	platformFlags
}

// Help shows examples under `roots digest --help`.
func (DigestCmd) Help() string {
	return `Prints the digest of the image's manifest (of its index for a multi-platform image),
or with --platform the digest of that platform's manifest. Compare it with an
earlier run to tell whether the image changed. With --offline, what the tag
named when it was last pulled into the cache.

Examples:
  roots digest debian:12
  roots digest --platform linux/arm64 debian:12
  roots digest --offline debian:12`
}

// Run prints the digest.
func (d *DigestCmd) Run(ctx context.Context, e *env) error {
	if _, err := fetch.ParseReference(d.Image); err != nil {
		return usageError{err}
	}
	want, err := d.platform()
	if err != nil {
		return err
	}
	offline, err := d.offline(e)
	if err != nil {
		return err
	}
	cache, err := d.cacheDir(e)
	var usage usageError
	if err != nil && (offline || errors.As(err, &usage)) {
		return err
	} else if err != nil {
		cache = "" // online, the cache only spares a config's download: no home, no cache
	}
	if offline {
		if err := d.offlineCache(cache); err != nil {
			return err
		}
	}
	opts, err := d.options(e)
	if err != nil {
		return err
	}
	dg, err := roots.Digest(ctx, d.Image, roots.DigestOptions{Cache: cache, Platform: want, Registry: opts, Offline: offline})
	if err != nil {
		return err
	}
	if !dg.Recorded.IsZero() && e.terminal {
		fmt.Fprintln(e.stderr, recordNote(d.Image, dg.Recorded))
	}
	fmt.Fprintln(e.stdout, dg.Digest)
	return nil
}
