package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rootsdev/roots/cas"
)

// LsCmd lists the cache's images and live destinations.
type LsCmd struct {
	JSON bool `name:"json" help:"Print JSON for scripts."`
	cacheFlags
}

// Help shows examples under `roots ls --help`.
func (LsCmd) Help() string {
	return `Lists the images in the cache (reference, manifest digest, platform,
compressed size, how many of its layers are unpacked, last use) and the live
overlay destinations that use the cache's layers.

Examples:
  roots ls
  roots ls --json | jq -r '.images[].reference'`
}

// lsImage is one image in roots ls.
type lsImage struct {
	Reference    string    `json:"reference"`
	Digest       string    `json:"digest"`
	Platform     string    `json:"platform,omitempty"`
	Size         int64     `json:"size"`
	Layers       int       `json:"layers"`
	CachedLayers int       `json:"cachedLayers"`
	LastUse      time.Time `json:"lastUse"`
}

// lsDest is one destination in roots ls.
type lsDest struct {
	Dest   string    `json:"dest"`
	Mode   string    `json:"mode"`
	Image  string    `json:"image"`
	Digest string    `json:"digest"`
	Upper  string    `json:"upper"`
	Since  time.Time `json:"since"`
	Live   bool      `json:"live"`
}

// lsOutput is roots ls --json.
type lsOutput struct {
	Images       []lsImage `json:"images"`
	Destinations []lsDest  `json:"destinations"`
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
	c, err := cas.Open(ctx, dir) // alone in the cache, it releases stale leases
	if err != nil {
		return fmt.Errorf("ls %s: %w", dir, err)
	}
	defer c.Close()
	out := lsOutput{Images: []lsImage{}, Destinations: []lsDest{}}
	images, err := c.Images()
	if err != nil {
		return fmt.Errorf("ls %s: %w", dir, err)
	}
	for _, o := range images {
		img := lsImage{Reference: referenceOf(o.Name), LastUse: o.LastUse.UTC()}
		if r := o.Image; r != nil {
			if r.Reference != "" {
				img.Reference = r.Reference
			}
			img.Digest, img.Platform, img.Size, img.Layers = r.Digest.String(), r.Platform, r.Size, len(r.Layers)
			for _, d := range r.Layers {
				if c.HasTree(d) {
					img.CachedLayers++
				}
			}
		}
		out.Images = append(out.Images, img)
	}
	leases, err := c.Leases()
	if err != nil {
		return fmt.Errorf("ls %s: %w", dir, err)
	}
	for _, ls := range leases {
		live, err := ls.Live()
		if err != nil {
			return err
		}
		out.Destinations = append(out.Destinations, lsDest{
			Dest: ls.Dest, Mode: modeOverlay, Image: ls.Image, Digest: ls.Digest.String(),
			Upper: filepath.Join(ls.State, "upper"), Since: ls.Created.UTC(), Live: live,
		})
	}
	if l.JSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tPLATFORM\tSIZE\tLAYERS\tLAST USE")
	for _, i := range out.Images {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\n", i.Reference, short(i.Digest), i.Platform, humanBytes(i.Size), i.CachedLayers, i.Layers, ago(now, i.LastUse))
	}
	if len(out.Destinations) > 0 {
		fmt.Fprintln(tw, "\nDESTINATION\tMODE\tIMAGE\tSINCE\tSTATE\t")
		for _, d := range out.Destinations {
			state := "mounted"
			if !d.Live {
				state = "stale (mount gone)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", d.Dest, d.Mode, d.Image, ago(now, d.Since), state)
		}
	}
	return tw.Flush()
}

// referenceOf turns an image record's name (registry/repository/tag, or
// registry/repository/sha256-HEX) back into a reference.
func referenceOf(name string) string {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return name
	}
	repo, tag := name[:i], name[i+1:]
	if d, ok := strings.CutPrefix(tag, "sha256-"); ok {
		return repo + "@sha256:" + d
	}
	return repo + ":" + tag
}

// short abbreviates a digest for a table.
func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
