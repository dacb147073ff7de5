package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/cas"
)

// PurgeCmd removes from the cache what no lease or running command uses.
type PurgeCmd struct {
	OlderThan string `help:"Remove only what was not used for this long: 90m, 12h, 7d, 2w." placeholder:"DURATION"`
	MaxSize   string `help:"Evict least recently used layers and blobs until the cache holds at most SIZE: 500M, 10G." placeholder:"SIZE"`
	DryRun    bool   `short:"n" help:"Print what would be removed and the bytes it holds; remove nothing."`
	cacheFlags
}

// Help shows examples under `roots purge --help`.
func (PurgeCmd) Help() string {
	return `Waits until no other roots command uses the cache, then removes blobs, trees
and image records from it: all of them, or with --older-than and --max-size
those not used recently (both may be given: first by age, then by size).
Layers that a live overlay destination (roots pull --mode overlay) uses stay;
so do the blobs of the image each destination still on disk holds (what roots
commit and push --from read), and every image made by roots commit that was not
pushed since. Destinations already pulled are not affected.

Examples:
  roots purge
  roots purge --older-than 30d
  roots purge --max-size 20G --dry-run
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
	pol := cas.Policy{MaxSize: 0, DryRun: p.DryRun}
	if p.OlderThan != "" || p.MaxSize != "" {
		pol.MaxSize = cas.NoLimit
	}
	if p.OlderThan != "" {
		if pol.OlderThan, err = parseAge(p.OlderThan); err != nil {
			return usagef("--older-than %q: %v", p.OlderThan, err)
		}
	}
	if p.MaxSize != "" {
		if pol.MaxSize, err = parseSize(p.MaxSize); err != nil {
			return usagef("--max-size %q: %v", p.MaxSize, err)
		}
	}
	rep, err := roots.Purge(ctx, dir, pol)
	if err != nil {
		return err
	}
	if p.DryRun {
		now := time.Now()
		for _, o := range rep.Removed {
			fmt.Fprintf(e.stdout, "would remove %-5s %s  %s, last used %s\n", o.Kind, o.Name, humanBytes(o.Size), ago(now, o.LastUse))
		}
		fmt.Fprintf(e.stdout, "would free %s (%d bytes) in %d objects; %s would stay\n", humanBytes(rep.Freed), rep.Freed, len(rep.Removed), humanBytes(rep.Left))
		return nil
	}
	if e.terminal {
		fmt.Fprintf(e.stderr, "purged %s: %s freed in %d objects, %s left\n", dir, humanBytes(rep.Freed), len(rep.Removed), humanBytes(rep.Left))
	}
	return nil
}
