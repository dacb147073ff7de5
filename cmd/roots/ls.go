package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/rootsdev/roots"
)

// LsCmd lists the cache's images and live destinations.
type LsCmd struct {
	JSON bool `name:"json" help:"Print JSON for scripts."`
	cacheFlags
}

// Help shows examples under `roots ls --help`.
func (LsCmd) Help() string {
	return `Lists the images in the cache, one row per platform pulled (reference, the
digest the reference resolved to, as roots digest prints it: the index's for a
multi-platform image; platform, compressed size, the disk its blobs and unpacked
layers hold, how many of its layers are unpacked, last use), the disk the whole
cache holds (each file once: images that share layers share that disk), and the destinations pulled with it (the image each holds:
the last one committed, or the one pulled; overlay destinations use the cache's
layers while mounted). --json also gives each platform's manifest digest ("manifest").

Examples:
  roots ls
  roots ls --json | jq -r '.images[].reference'`
}

// Run lists.
func (l *LsCmd) Run(ctx context.Context, e *env) error {
	dir, err := l.cacheDir(e)
	if err != nil {
		return err
	}
	if dir == "" {
		return usagef("--cache=no: there is no cache to list")
	}
	out, err := roots.List(ctx, dir)
	if err != nil {
		return err
	}
	if l.JSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tPLATFORM\tSIZE\tDISK\tLAYERS\tLAST USE")
	for _, i := range out.Images {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", i.Reference, short(i.Digest), i.Platform, humanBytes(i.Size), humanBytes(i.Disk), i.CachedLayers, i.Layers, ago(now, i.LastUse))
	}
	fmt.Fprintf(tw, "\ntotal on disk: %s (blobs, unpacked layers, fix-ups and records; each file once)\n", humanBytes(out.Disk))
	if len(out.Destinations) > 0 {
		fmt.Fprintln(tw, "\nDESTINATION\tMODE\tIMAGE\tSINCE\tSTATE\t")
		for _, d := range out.Destinations {
			state := "live"
			switch {
			case d.Mode == roots.Overlay && d.Live:
				state = "mounted"
			case d.Mode == roots.Overlay:
				state = "stale (mount gone)"
			case !d.Live:
				state = "stale (gone or replaced)"
			}
			mode := string(d.Mode)
			if d.Git {
				mode += "+git"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", d.Dest, mode, d.Image, ago(now, d.Since), state)
		}
	}
	return tw.Flush()
}

// short abbreviates a digest for a table.
func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
