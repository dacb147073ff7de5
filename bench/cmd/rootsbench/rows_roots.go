//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// rootsRows are roots itself: cold, warm in every assembly mode it has,
// without a cache, and `roots digest`.
func (b *bench) rootsRows(img *image) []*scenario {
	dir := filepath.Join(b.work, "run", img.name)
	roots := b.tools.roots
	cold := filepath.Join(dir, "cache-cold")
	dest := filepath.Join(dir, "dest")
	rows := []*scenario{{
		key: "roots-cold", label: "roots pull, cold (empty cache)", group: groupRoots, ref: "roots-cold",
		prepare: func(ctx context.Context) error {
			if err := b.fresh(cold); err != nil {
				return err
			}
			return b.fresh(dest)
		},
		run: func(ctx context.Context, m *meter) error {
			return m.run(ctx, roots, "pull", "-q", "--cache", cold, img.ref, dest)
		},
		check:    func(ctx context.Context) error { return checkTree(dest, img) },
		teardown: func() { b.fresh(cold); b.fresh(dest) },
	}}
	for _, mode := range []string{"hardlink", "copy", "overlay"} {
		rows = append(rows, b.rootsWarm(img, mode))
	}
	rows = append(rows, b.rootsWarmShared(img))
	rows = append(rows, &scenario{
		key: "roots-nocache", label: "roots pull --cache=no", group: groupRoots, ref: "roots-cold",
		prepare: func(ctx context.Context) error { return b.fresh(dest) },
		run: func(ctx context.Context, m *meter) error {
			return m.run(ctx, roots, "pull", "-q", "--cache=no", img.ref, dest)
		},
		check:    func(ctx context.Context) error { return checkTree(dest, img) },
		teardown: func() { b.fresh(dest) },
	}, &scenario{
		// The cold pull syncs the trees it adds to the cache (issue 14 point 4); --cache=no
		// leaves its writeback to after it exits. This row pays it inside the timing, as the
		// pigz-tar-sync limit does, so that the cache's own cost can be told from durability's.
		key: "roots-nocache-sync", label: "roots pull --cache=no, then sync -f", group: groupRoots, ref: "roots-cold",
		prepare: func(ctx context.Context) error { return b.fresh(dest) },
		run: func(ctx context.Context, m *meter) error {
			if err := m.run(ctx, roots, "pull", "-q", "--cache=no", img.ref, dest); err != nil {
				return err
			}
			return m.run(ctx, "sync", "-f", dest)
		},
		check:    func(ctx context.Context) error { return checkTree(dest, img) },
		teardown: func() { b.fresh(dest) },
	}, &scenario{
		key: "roots-digest", label: "roots digest", group: groupRoots, ref: "roots-digest",
		run: func(ctx context.Context, m *meter) error {
			out, err := m.output(ctx, roots, "digest", img.ref)
			if err != nil {
				return err
			}
			return sameDigest(out, img)
		},
	})
	return rows
}

// rootsWarm pulls into a new DEST from a cache that already has every
// layer, assembling with mode.
func (b *bench) rootsWarm(img *image, mode string) *scenario {
	key := "roots-warm-" + mode
	label := "roots pull, warm " + mode
	sc := &scenario{key: key, label: label, group: groupRoots, ref: "roots-cold"}
	if mode != "hardlink" && !b.tools.modes[mode] {
		sc.skip = "not built yet (no --mode " + mode + " in `roots pull --help`)"
		return sc
	}
	dir := filepath.Join(b.work, "run", img.name)
	// Hardlink and copy share a cache. Overlay has its own, filled by an
	// overlay pull: the trees of a cache that live hardlinked destinations
	// share are stat-walked on every reuse (see cas/exposure.go), which is
	// the hardlink user's cost, not the overlay user's.
	cache := filepath.Join(dir, "cache-warm")
	fill := "hardlink"
	if mode == "overlay" {
		cache, fill = filepath.Join(dir, "cache-warm-overlay"), "overlay"
	}
	dest := filepath.Join(dir, "dest-"+mode)
	args := []string{b.tools.roots, "pull", "-q", "--cache", cache}
	if b.tools.modes[mode] {
		args = append(args, "--mode", mode)
	}
	args = append(args, img.ref, dest)
	sc.setup = func(ctx context.Context) error { return b.warmCache(ctx, img, cache, fill) }
	sc.prepare = func(ctx context.Context) error { return b.removeRootsDest(ctx, dest) }
	sc.run = func(ctx context.Context, m *meter) error { return m.run(ctx, args...) }
	sc.check = func(ctx context.Context) error { return checkTree(dest, img) }
	sc.teardown = func() { b.removeRootsDest(context.Background(), dest) }
	return sc
}

// rootsWarmShared is a warm overlay pull from a cache whose trees a live hardlinked
// destination shares: each tree is stat-walked against its fingerprint before it is
// mounted (see cas/exposure.go), which the overlay-only cache of roots-warm-overlay skips.
func (b *bench) rootsWarmShared(img *image) *scenario {
	sc := &scenario{key: "roots-warm-overlay-shared", label: "roots pull, warm overlay, cache shared with a live hardlink DEST", group: groupRoots, ref: "roots-cold"}
	if !b.tools.modes["overlay"] {
		sc.skip = "not built yet (no --mode overlay in `roots pull --help`)"
		return sc
	}
	dir := filepath.Join(b.work, "run", img.name)
	cache := filepath.Join(dir, "cache-shared")
	live := filepath.Join(dir, "dest-live")
	dest := filepath.Join(dir, "dest-overlay-shared")
	sc.setup = func(ctx context.Context) error {
		if err := b.fresh(cache); err != nil {
			return err
		}
		if err := b.fresh(live); err != nil {
			return err
		}
		out, err := exec.CommandContext(ctx, b.tools.roots, "pull", "-q", "--cache", cache, img.ref, live).CombinedOutput()
		if err != nil {
			return fmt.Errorf("the live hardlink DEST: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	sc.prepare = func(ctx context.Context) error { return b.removeRootsDest(ctx, dest) }
	sc.run = func(ctx context.Context, m *meter) error {
		return m.run(ctx, b.tools.roots, "pull", "-q", "--cache", cache, "--mode", "overlay", img.ref, dest)
	}
	sc.check = func(ctx context.Context) error { return checkTree(dest, img) }
	sc.teardown = func() {
		b.removeRootsDest(context.Background(), dest)
		b.fresh(live)
		b.fresh(cache)
	}
	return sc
}

// warmCache fills cache with the image's layers by pulling it once with mode
// (the first warm row of an image pays for it; the others reuse it).
func (b *bench) warmCache(ctx context.Context, img *image, cache, mode string) error {
	if b.warmed[cache] {
		return nil
	}
	if err := b.fresh(cache); err != nil {
		return err
	}
	tmp := cache + ".dest"
	b.fresh(tmp)
	args := []string{"pull", "-q", "--cache", cache, img.ref, tmp}
	if mode != "hardlink" {
		args = append(args, "--mode", mode)
	}
	out, err := exec.CommandContext(ctx, b.tools.roots, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fill the cache: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := b.removeRootsDest(ctx, tmp); err != nil {
		return err
	}
	b.warmed[cache] = true
	return nil
}

// removeRootsDest ends an overlay DEST the way a user would (roots umount
// when roots has it) and removes what is left.
func (b *bench) removeRootsDest(ctx context.Context, dest string) error {
	if isMountPoint(dest) {
		if b.tools.umount {
			exec.CommandContext(ctx, b.tools.roots, "umount", dest).Run()
		}
		if isMountPoint(dest) {
			if err := unix.Unmount(dest, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("umount %s: %w", dest, err)
			}
		}
	}
	return b.fresh(dest)
}

// sameDigest checks what a digest command printed.
func sameDigest(out string, img *image) error {
	if got := strings.TrimSpace(out); got != img.digest.String() {
		return fmt.Errorf("printed %q, want %s", got, img.digest)
	}
	return nil
}

// flatRows are the overlay flatness check: roots warm overlay and a bare
// overlay mount of the same trees, on a 1-layer and a 100-layer image.
func (b *bench) flatRows(img *image) []*scenario {
	sc := b.rootsWarm(img, "overlay")
	sc.ref = ""
	shared := b.rootsWarmShared(img)
	shared.ref = sc.key
	lim := b.overlayLimit(img)
	lim.ref = sc.key
	return []*scenario{sc, shared, lim}
}

// sizeRows are the roots rows whose peak RSS must not grow with the
// image: measured again on an image twice the size of large.
func (b *bench) sizeRows(img *image) []*scenario {
	var rows []*scenario
	for _, sc := range b.rootsRows(img) {
		switch sc.key {
		case "roots-cold", "roots-warm-hardlink", "roots-nocache":
			rows = append(rows, sc)
		}
	}
	return rows
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
