package main

import (
	"context"
	"fmt"

	"github.com/rootsdev/roots/cas"
)

// PurgeCmd empties the cache.
type PurgeCmd struct {
	cacheFlags
}

// Help shows examples under `roots purge --help`.
func (PurgeCmd) Help() string {
	return `Waits until no other roots command uses the cache, then removes every blob,
tree and image record from it. Destinations already pulled are not affected.

Examples:
  roots purge
  roots purge --cache /tmp/cache`
}

// Run purges.
func (p *PurgeCmd) Run(ctx context.Context, e *env) error {
	dir, err := p.cacheDir(e)
	if err != nil {
		return err
	}
	if dir == "" {
		return usagef("--cache=no: there is no cache to purge")
	}
	freed, err := cas.Purge(ctx, dir)
	if err != nil {
		return fmt.Errorf("purge %s: %w", dir, err)
	}
	if e.terminal {
		fmt.Fprintf(e.stderr, "purged %s: %s freed\n", dir, humanBytes(freed))
	}
	return nil
}
