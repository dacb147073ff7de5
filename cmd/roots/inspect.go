package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
)

// InspectCmd describes an image, as skopeo inspect does.
type InspectCmd struct {
	Image  string `arg:"" help:"Image reference."`
	Config bool   `help:"Print the image's config blob, byte for byte."`
	Raw    bool   `help:"Print the manifest the reference names, byte for byte: the index of a multi-platform image (skopeo inspect --raw)."`
	JSON   bool   `name:"json" help:"Print JSON for scripts."`
	offlineFlags
	cacheFlags
	registryFlags
	platformFlags
}

// Help shows examples under `roots inspect --help`.
func (InspectCmd) Help() string {
	return `Shows what an image is: the digest its reference resolves to (an index's for a
multi-platform image, as roots digest prints), the platform's manifest, created,
labels, entrypoint, cmd, env, user, working directory and layers with their sizes.
From the cache when it has the image (no request: SOURCE says cache), else from
the registry.

Examples:
  roots inspect debian:12
  roots inspect --json --platform linux/arm64 debian:12 | jq .layers
  roots inspect --config debian:12 | jq .config.Env
  roots inspect --raw debian:12
  roots inspect --offline debian:12     # the cache alone: no network connection`
}

// Run inspects.
func (c *InspectCmd) Run(ctx context.Context, e *env) error {
	if _, err := fetch.ParseReference(c.Image); err != nil {
		return usageError{err}
	}
	if c.Config && c.Raw {
		return usagef("--config and --raw: choose one")
	}
	want, err := c.platform()
	if err != nil {
		return err
	}
	offline, err := c.offline(e)
	if err != nil {
		return err
	}
	cache, err := c.cacheDir(e)
	if err != nil {
		return err
	}
	if offline {
		if err := c.offlineCache(cache); err != nil {
			return err
		}
	}
	reg, err := c.options(e)
	if err != nil {
		return err
	}
	img, err := roots.Inspect(ctx, c.Image, roots.InspectOptions{Cache: cache, Platform: want, Registry: reg, Offline: offline})
	if err != nil {
		return err
	}
	if !img.Recorded.IsZero() && e.terminal {
		fmt.Fprintln(e.stderr, recordNote(c.Image, img.Recorded))
	}
	switch {
	case c.Config:
		_, err = e.stdout.Write(img.RawConfig)
		return err
	case c.Raw && img.RawIndex != nil:
		_, err = e.stdout.Write(img.RawIndex)
		return err
	case c.Raw:
		_, err = e.stdout.Write(img.RawManifest)
		return err
	case c.JSON:
		return printJSON(e, img)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, orDash(v)) }
	row("REFERENCE", img.Reference)
	row("DIGEST", img.Digest.String())
	if img.Manifest != img.Digest {
		row("MANIFEST", img.Manifest.String())
	}
	row("MEDIA TYPE", img.MediaType)
	row("PLATFORM", img.Platform)
	if img.Created != nil {
		row("CREATED", img.Created.UTC().Format(time.RFC3339))
	} else {
		row("CREATED", "")
	}
	row("ENTRYPOINT", shellWords(img.Entrypoint))
	row("CMD", shellWords(img.Cmd))
	row("USER", img.User)
	row("WORKDIR", img.WorkingDir)
	for i, v := range orNone(img.Env) {
		row(first(i, "ENV"), v)
	}
	for i, k := range orNone(sortedKeys(img.Labels)) {
		if k != "" {
			k += "=" + img.Labels[k]
		}
		row(first(i, "LABELS"), k)
	}
	if len(img.ExposedPorts) > 0 {
		row("PORTS", strings.Join(img.ExposedPorts, " "))
	}
	if img.StopSignal != "" {
		row("STOP SIGNAL", img.StopSignal)
	}
	row("LAYERS", fmt.Sprintf("%d, %s", len(img.Layers), humanBytes(img.Size)))
	for _, l := range img.Layers {
		row("", fmt.Sprintf("%s  %s  %s", l.Digest, humanBytes(l.Size), l.MediaType))
	}
	row("SOURCE", img.Source)
	return tw.Flush()
}

// shellWords shows a command as a shell would take it back: words with spaces or quotes quoted.
func shellWords(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}();&|<>#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// orNone is s, or one empty string when it is empty (a row that says "-").
func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{""}
	}
	return s
}

// first is label for the first of several rows, "" for the others.
func first(i int, label string) string {
	if i == 0 {
		return label
	}
	return ""
}

// sortedKeys is m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
