package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
)

// PullCmd pulls an image into a directory.
type PullCmd struct {
	Image string `arg:"" help:"Image reference: debian, debian:12, ghcr.io/o/r:tag, host:5000/repo@sha256:..."`
	Dest  string `arg:"" help:"Directory to create with the image's root filesystem."`
	Force bool   `short:"f" help:"Replace DEST if it exists (atomically)."`
	Jobs  int    `short:"j" default:"4" help:"Layers to download and unpack at once."`
	Quiet bool   `short:"q" help:"Print nothing but errors, even on a terminal."`
	Mode  string `enum:"hardlink,copy,overlay" default:"hardlink" help:"How DEST is made from the cached layers: hardlink (fast, shares inodes with the cache), copy (shares nothing; reflinks where the filesystem can), overlay (root: an overlayfs mount, instant; end it with roots umount)."`
	Git   bool   `short:"g" help:"Also make DEST a git repository with a branch per layer (layer_<n>_<blob hex>, the top one checked out), as krgo -g did: git diff shows what a layer changed. Needs git and the cache; not with --mode overlay."`
	JSON  bool   `name:"json" help:"Print one JSON object when done: what was pulled, from where, how (see README)."`

	DigestFile string `name:"digest-file" placeholder:"FILE" help:"Write the digest of the manifest pulled into FILE (for a multi-platform image, the platform's: IMAGE@DIGEST pulls exactly it again)."`
	// Bundle makes DEST an OCI runtime bundle (DEST/rootfs and DEST/config.json), as roots bundle does.
	Bundle bool `help:"Make DEST an OCI runtime bundle, as roots bundle does: the image in DEST/rootfs and a runc config in DEST/config.json."`
	bundleFlags
	offlineFlags
	cacheFlags
	registryFlags
	platformFlags
}

// Help shows examples under `roots pull --help`.
func (PullCmd) Help() string {
	return `Examples:
  roots pull debian ./debian                      # docker.io/library/debian:latest
  sudo systemd-nspawn -D ./debian /bin/bash
  roots pull --force alpine:3.20 ./alpine         # replace ./alpine atomically
  roots pull --platform linux/arm64 debian ./deb  # another platform of a multi-platform image
  roots pull --cache=no 127.0.0.1:5000/app ./app  # no cache: layers stream into DEST (CI)
  roots pull --mode copy debian ./deb             # DEST shares no inode with the cache
  sudo roots pull --mode overlay debian /srv/c1   # an overlayfs mount, in milliseconds when cached
  sudo roots umount /srv/c1                       # ... unmounted, its changes discarded
  roots pull -g debian ./deb                      # ./deb is also a git repository, a branch per layer
  roots pull --bundle alpine ./b                  # ./b/rootfs and a runc config.json (see roots bundle --help)
  roots pull --user bob:secret registry.example.com/team/app:1.2 ./app
  roots pull --json debian ./deb | jq -r .digest  # what was pulled, for scripts
  roots pull --offline debian:12 ./deb            # from the cache alone: no network connection`
}

// Run pulls.
func (p *PullCmd) Run(ctx context.Context, e *env) error {
	if p.Bundle {
		return p.bundle(ctx, e, nil)
	}
	if p.Rootless || p.Tty {
		return usagef("--rootless and --tty shape a bundle's config.json: add --bundle, or use roots bundle")
	}
	return p.pulling(ctx, e, "pulled", "into "+quote(p.Dest), func(opts roots.PullOptions) (*roots.Pulled, error) {
		return roots.Pull(ctx, p.Image, p.Dest, opts)
	})
}

// pulling runs do, a pull, with the options of the flags and progress on a terminal, and
// reports what it pulled (see report).
func (p *PullCmd) pulling(ctx context.Context, e *env, done, where string, do func(roots.PullOptions) (*roots.Pulled, error)) error {
	opts, err := p.pullOptions(e)
	if err != nil {
		return err
	}
	prog := newProgress(e, !p.Quiet && e.terminal)
	prog.image = p.Image
	defer prog.stop()
	opts.Progress = prog.event
	pulled, err := do(opts)
	if errors.Is(err, roots.ErrInvalidDest) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	prog.stop()
	return p.report(e, pulled, opts.Cache, prog, done, where)
}

// pullOptions checks the flags and turns them into the options of a pull.
func (p *PullCmd) pullOptions(e *env) (roots.PullOptions, error) {
	var none roots.PullOptions
	if _, err := fetch.ParseReference(p.Image); err != nil {
		return none, usageError{err}
	}
	want, err := p.platform()
	if err != nil {
		return none, err
	}
	if p.Jobs < 1 {
		return none, usagef("--jobs %d: need at least 1", p.Jobs)
	}
	if p.Git && p.Mode == string(roots.Overlay) {
		return none, usagef("--git with --mode overlay: an overlay DEST is a mount that git cannot track; use --mode hardlink or --mode copy")
	}
	cacheDir, err := p.cacheDir(e)
	if err != nil {
		return none, err
	}
	if p.Git && cacheDir == "" {
		return none, usagef("--git needs the cache (the layer branches are made from the cached layer blobs): drop --cache=no")
	}
	offline, err := p.offline(e)
	if err != nil {
		return none, err
	}
	if offline {
		if err := p.offlineCache(cacheDir); err != nil {
			return none, err
		}
	}
	if p.Mode == string(roots.Overlay) && cacheDir == "" {
		return none, usagef("--mode overlay needs the cache (its layers are the overlay's): drop --cache=no")
	}
	if p.Mode == string(roots.Overlay) && os.Geteuid() != 0 {
		return none, fmt.Errorf("--mode overlay: %w (it mounts overlayfs)", roots.ErrOverlayNeedsRoot)
	}
	if p.DigestFile != "" {
		if err := writableDir(filepath.Dir(p.DigestFile)); err != nil {
			return none, usagef("--digest-file %s: %v", p.DigestFile, err)
		}
	}
	reg, err := p.options(e)
	if err != nil {
		return none, err
	}
	return roots.PullOptions{
		Cache: cacheDir, Mode: roots.Mode(p.Mode), Jobs: p.Jobs, Platform: want, Force: p.Force,
		Registry: reg, Git: p.Git, Offline: offline,
	}, nil
}

// report warns of what the pull could not apply, writes --digest-file, and prints --json or,
// on a terminal, what was done (the mode used, or "no cache").
func (p *PullCmd) report(e *env, pulled *roots.Pulled, cache string, prog *progress, done, where string) error {
	if u := pulled.Unapplied; len(u) > 0 {
		why := "the filesystem refused them"
		if os.Geteuid() != 0 {
			why = "run as root to apply them"
		}
		fmt.Fprintf(e.stderr, "roots: warning: %d owners, devices or attributes of the image were not applied (%s; first: %s: %s)\n",
			len(u), why, u[0].Path, u[0].What)
	}
	if p.DigestFile != "" {
		if err := writeFileAtomic(p.DigestFile, []byte(pulled.Digest.String()+"\n")); err != nil {
			return fmt.Errorf("%s %s %s, but --digest-file: %w", done, pulled.Reference, where, err)
		}
	}
	if p.JSON {
		return printJSON(e, pullResult(pulled, cache, prog))
	}
	how := string(pulled.Mode)
	if cache == "" {
		how = "no cache"
	}
	if !p.Quiet && e.terminal {
		fmt.Fprintf(e.stderr, "%s %s@%s %s (%s): %d layers, %s, %.1fs\n", done, pulled.Reference, pulled.Digest,
			where, how, len(pulled.Layers), roots.HumanBytes(pulled.Size), pulled.Took.Seconds())
	}
	return nil
}

// pulledJSON is what pull --json prints.
type pulledJSON struct {
	Reference    string            `json:"reference"`
	Digest       string            `json:"digest"`                // the platform's manifest
	IndexDigest  string            `json:"indexDigest,omitempty"` // the index it was chosen from (what roots digest prints)
	Platform     string            `json:"platform"`
	Dest         string            `json:"dest"`
	Mode         string            `json:"mode"`            // hardlink, copy or overlay, as made
	Cache        string            `json:"cache,omitempty"` // absent: pulled with --cache=no
	Layers       []pulledLayerJSON `json:"layers"`
	Size         int64             `json:"size"`         // compressed layers, bytes
	FetchedBytes int64             `json:"fetchedBytes"` // read from the registry
	CachedLayers int               `json:"cachedLayers"` // found in the cache, not fetched
	Seconds      float64           `json:"seconds"`
}

type pulledLayerJSON struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diffId"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	Cached    bool   `json:"cached"`
}

// pullResult is the JSON of a pull, with what the progress saw of each layer.
func pullResult(pulled *roots.Pulled, cache string, prog *progress) pulledJSON {
	out := pulledJSON{
		Reference: pulled.Reference.String(), Digest: pulled.Digest.String(), IndexDigest: pulled.Index.String(),
		Platform: pulled.Platform.String(), Dest: pulled.Dest, Mode: string(pulled.Mode), Cache: cache,
		Layers: []pulledLayerJSON{}, Size: pulled.Size, Seconds: pulled.Took.Seconds(),
	}
	for i, l := range pulled.Layers {
		pl := pulledLayerJSON{Digest: l.Digest.String(), MediaType: l.MediaType, Size: l.Size}
		if i < len(pulled.DiffIDs) {
			pl.DiffID = pulled.DiffIDs[i].String()
		}
		if i < len(prog.layers) {
			pl.Cached = prog.layers[i].state.Load() == "cached"
			out.FetchedBytes += prog.layers[i].n.Load()
		}
		if pl.Cached {
			out.CachedLayers++
		}
		out.Layers = append(out.Layers, pl)
	}
	return out
}

// printJSON writes v as indented JSON on stdout.
func printJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writableDir reports why dir cannot take a new file, if it cannot.
func writableDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("%s is not writable: %w", dir, err)
	}
	return nil
}

// writeFileAtomic writes b into path by a rename: a reader never sees half of it.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
