//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/rootsdev/roots/cas"

	"golang.org/x/sys/unix"
)

// limitRows are what this machine allows on the same bytes: each stage of a
// pull done alone by the fastest tool at hand.
func (b *bench) limitRows(img *image) []*scenario {
	dir := filepath.Join(b.work, "run", img.name)
	var urls, blobs []string
	for _, l := range img.layers {
		urls = append(urls, b.reg.blobURL(img.repo, l.digest))
		blobs = append(blobs, l.gz)
	}
	jobs := runtime.NumCPU()
	each := func(argv ...string) [][]string {
		var cmds [][]string
		for _, p := range blobs {
			cmds = append(cmds, append(append([]string{}, argv...), p))
		}
		return cmds
	}
	decompress := func(key, label string, run func(ctx context.Context, m *meter) error) *scenario {
		return &scenario{key: key, label: label, group: groupLimit, ref: "roots-cold", run: run}
	}
	rows := []*scenario{{
		key: "fetch", label: "fetch every blob → /dev/null", group: groupLimit, ref: "roots-cold",
		note: "fetch: Go net/http, layers in parallel (as many at once as CPUs), from the same registry.",
		run: func(ctx context.Context, m *meter) error {
			return m.run(ctx, append([]string{b.self, "-helper", "fetch"}, urls...)...)
		},
	},
		decompress("gunzip-gzip", "decompress: gzip -d", func(ctx context.Context, m *meter) error {
			return m.parallel(ctx, jobs, each("gzip", "-dc"))
		}),
		decompress("gunzip-pigz", "decompress: pigz -d", func(ctx context.Context, m *meter) error {
			return m.parallel(ctx, jobs, each("pigz", "-dc"))
		}),
		decompress("gunzip-go", "decompress: Go compress/gzip", func(ctx context.Context, m *meter) error {
			return m.run(ctx, append([]string{b.self, "-helper", "gunzip-go"}, blobs...)...)
		}),
		decompress("gunzip-klauspost", "decompress: klauspost/compress gzip", func(ctx context.Context, m *meter) error {
			return m.run(ctx, append([]string{b.self, "-helper", "gunzip-klauspost"}, blobs...)...)
		}),
		decompress("gunzip-pgzip", "decompress: pgzip", func(ctx context.Context, m *meter) error {
			return m.run(ctx, append([]string{b.self, "-helper", "gunzip-pgzip"}, blobs...)...)
		}),
	}
	rows[1].note = fmt.Sprintf("decompress: every blob to /dev/null, blobs in parallel (%d at once, all cores); the fastest is the limit.", jobs)
	if b.tools.missing["pigz"] != "" {
		rows[2].skip = "pigz: " + b.tools.missing["pigz"]
	}

	extract := filepath.Join(dir, "tar-x")
	rows = append(rows, &scenario{
		key: "tar-x", label: "tar -x of the uncompressed layers", group: groupLimit, ref: "roots-cold",
		note: "tar -x: GNU tar, the layers' uncompressed tars one after the other into one directory.",
		prepare: func(ctx context.Context) error {
			if err := b.fresh(extract); err != nil {
				return err
			}
			return os.Mkdir(extract, 0o755)
		},
		run: func(ctx context.Context, m *meter) error {
			for _, l := range img.layers {
				if err := m.run(ctx, "tar", "-x", "-f", l.tar, "-C", extract); err != nil {
					return err
				}
			}
			return nil
		},
		check:    func(ctx context.Context) error { return checkTree(extract, img) },
		teardown: func() { b.fresh(extract) },
	})

	// Not a single limit: the two stages a pull cannot skip, together, by
	// the fastest C tools, with nothing verified, cached or linked. What it
	// takes bounds what the cold target (1.3× the slowest single limit)
	// can ask of a machine with this many cores. The second row adds what a
	// cache that survives a crash must add: the extracted tree synced.
	rows = append(rows, b.pigzTar(img, dir, false), b.pigzTar(img, dir, true))

	tree := filepath.Join(dir, "tree")
	linked := filepath.Join(dir, "cp-al")
	rows = append(rows, &scenario{
		key: "cp-al", label: "cp -al of the extracted tree", group: groupLimit, ref: "roots-warm-hardlink",
		setup: func(ctx context.Context) error { return untarLayers(ctx, b, img, tree, false) },
		prepare: func(ctx context.Context) error {
			return b.fresh(linked)
		},
		run: func(ctx context.Context, m *meter) error {
			return m.run(ctx, "cp", "-al", tree, linked)
		},
		check:    func(ctx context.Context) error { return checkTree(linked, img) },
		teardown: func() { b.fresh(linked); b.fresh(tree) },
	})
	return append(append(rows, b.overlayLimit(img)), b.startRows(img)...)
}

// startRows show where the 50 ms of the warm overlay target go on this machine: the least a
// warm overlay pull does (bench/cmd/warmfloor, a Go program of its own) on the cache that
// roots-warm-overlay uses, the same program exiting at once (what starting a Go binary of its
// size costs after a cache drop), and roots' own start with its CLI's parse.
func (b *bench) startRows(img *image) []*scenario {
	dir := filepath.Join(b.work, "run", img.name)
	cache := filepath.Join(dir, "cache-warm-overlay")
	dest := filepath.Join(dir, "dest-floor")
	state := filepath.Join(dir, "floor-state") // its lease, upper and work
	host, _, _ := strings.Cut(img.ref, "/")
	manifest := (&url.URL{Scheme: "http", Host: host, Path: "/v2/" + img.repo + "/manifests/" + img.tag}).String()
	record := cas.ImageName(host, img.repo, img.tag, "")
	reset := func() error {
		if isMountPoint(dest) {
			if err := unix.Unmount(dest, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("umount %s: %w", dest, err)
			}
		}
		if err := b.fresh(dest); err != nil {
			return err
		}
		return b.fresh(state)
	}
	floor := &scenario{
		key: "floor-overlay", label: "warmfloor: the least a warm overlay pull does", group: groupLimit, ref: "roots-warm-overlay",
		note:    "warmfloor: bench/cmd/warmfloor (Go, built as roots is) on roots-warm-overlay's cache: GET the manifest, read the image record, stat the trees, write and fsync a lease, mount the overlay; nothing verified, no configuration read.",
		setup:   func(ctx context.Context) error { return b.warmCache(ctx, img, cache, "overlay") },
		prepare: func(ctx context.Context) error { return reset() },
		run: func(ctx context.Context, m *meter) error {
			return m.run(ctx, b.tools.floor, manifest, cache, record, dest, state)
		},
		check:    func(ctx context.Context) error { return checkTree(dest, img) },
		teardown: func() { reset() },
	}
	start := &scenario{
		key: "floor-start", label: "warmfloor -exit: a Go program of its size starts", group: groupLimit, ref: "roots-warm-overlay",
		run: func(ctx context.Context, m *meter) error { return m.run(ctx, b.tools.floor, "-exit") },
	}
	if b.tools.floor == "" {
		floor.skip, start.skip = b.tools.missing["warmfloor"], b.tools.missing["warmfloor"]
	}
	if !b.tools.modes["overlay"] {
		floor.skip = "roots pull --mode overlay not built yet: no cache to mount"
	}
	// roots pull with no arguments starts, builds the pull command's parser (as a pull does),
	// parses, and exits 2 with a usage error: roots' start and its CLI, before any work.
	usage := &scenario{
		key: "roots-start", label: "roots pull with no arguments: roots starts, parses, exits 2", group: groupRoots, ref: "roots-warm-overlay",
		run: func(ctx context.Context, m *meter) error {
			err := m.run(ctx, b.tools.roots, "pull")
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == 2 {
				return nil
			}
			if err == nil {
				return errors.New("roots pull with no arguments exited 0, want a usage error (2)")
			}
			return err
		},
	}
	return []*scenario{floor, start, usage}
}

// overlayLimit mounts overlayfs over the image's layers, each extracted
// into a directory of its own, with an empty upper and work dir.
func (b *bench) overlayLimit(img *image) *scenario {
	dir := filepath.Join(b.work, "run", img.name, "overlay")
	lowers := filepath.Join(dir, "lower")
	mnt := filepath.Join(dir, "mnt")
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	var lowerdir []string
	for i := len(img.layers) - 1; i >= 0; i-- { // top first
		lowerdir = append(lowerdir, fmt.Sprintf("%d", i))
	}
	ref := "roots-warm-overlay"
	if !b.tools.modes["overlay"] {
		ref = ""
	}
	return &scenario{
		key: "overlay-mount", label: "overlay mount of the layer trees", group: groupLimit, ref: ref,
		note:  "overlay mount: mount(8) -t overlay with the layers extracted one per lowerdir (short relative names, run from the lowers' directory).",
		setup: func(ctx context.Context) error { return untarLayers(ctx, b, img, lowers, true) },
		prepare: func(ctx context.Context) error {
			unmountUnder(mnt)
			for _, d := range []string{upper, work, mnt} {
				if err := b.fresh(d); err != nil {
					return err
				}
				if err := os.Mkdir(d, 0o755); err != nil {
					return err
				}
			}
			return nil
		},
		run: func(ctx context.Context, m *meter) error {
			opts := "lowerdir=" + strings.Join(lowerdir, ":") + ",upperdir=" + upper + ",workdir=" + work
			return m.runIn(ctx, lowers, "mount", "-t", "overlay", "overlay", "-o", opts, mnt)
		},
		check: func(ctx context.Context) error { return checkTree(mnt, img) },
		teardown: func() {
			unix.Unmount(mnt, unix.MNT_DETACH)
			b.fresh(dir)
		},
	}
}

// untarLayers extracts the image's layers with tar -x: into dir itself
// one over the other, or each into dir/<index> when apart.
func untarLayers(ctx context.Context, b *bench, img *image, dir string, apart bool) error {
	if err := b.fresh(dir); err != nil {
		return err
	}
	m := b.meter()
	for i, l := range img.layers {
		d := dir
		if apart {
			d = filepath.Join(dir, fmt.Sprint(i))
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := m.run(ctx, "tar", "-x", "-f", l.tar, "-C", d); err != nil {
			return err
		}
	}
	return nil
}

// pigzTar is the pigz -dc | tar -x floor: every layer at once, each into a
// directory of its own; with sync, followed by sync -f on the result (what a
// cache that survives a crash pays on top, as roots syncs a tree it publishes).
func (b *bench) pigzTar(img *image, dir string, sync bool) *scenario {
	key, label := "pigz-tar", "pigz -dc | tar -x, every layer at once"
	note := "pigz -dc | tar -x: each layer's blob decompressed and extracted into a directory of its own, all layers at once: decompression and extraction together, nothing verified."
	if sync {
		key, label = "pigz-tar-sync", "pigz -dc | tar -x, every layer at once, then sync -f"
		note = "pigz -dc | tar -x, then sync -f: the row above with the extracted trees written to disk before it ends, as roots syncs every tree it publishes to its cache (durability, issue 14 point 4)."
	}
	both := filepath.Join(dir, key)
	var pipes [][]string
	var layerDirs []string
	for i, l := range img.layers {
		d := filepath.Join(both, fmt.Sprint(i))
		layerDirs = append(layerDirs, d)
		pipes = append(pipes, []string{"sh", "-c", `pigz -dc "$1" | tar -x -C "$2"`, "sh", l.gz, d})
	}
	floor := &scenario{
		key: key, label: label, group: groupLimit, ref: "roots-cold", note: note,
		prepare: func(ctx context.Context) error {
			if err := b.fresh(both); err != nil {
				return err
			}
			for _, d := range layerDirs {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			return nil
		},
		run: func(ctx context.Context, m *meter) error {
			if err := m.parallel(ctx, len(pipes), pipes); err != nil || !sync {
				return err
			}
			return m.run(ctx, "sync", "-f", both)
		},
		check: func(ctx context.Context) error {
			n := 0
			err := filepath.WalkDir(both, func(_ string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					n++
				}
				return err
			})
			if err == nil && n < img.files {
				err = fmt.Errorf("%s has %d files, the image has %d", both, n, img.files)
			}
			return err
		},
		teardown: func() { b.fresh(both) },
	}
	if b.tools.missing["pigz"] != "" {
		floor.skip = "pigz: " + b.tools.missing["pigz"]
	}
	return floor
}
