//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// peerRows are the tools users would pick instead of roots.
func (b *bench) peerRows(img *image) []*scenario {
	dir := filepath.Join(b.work, "run", img.name)
	return []*scenario{
		b.skopeoUmoci(img, dir),
		b.craneExport(img, dir),
		b.podman(img, dir, false),
		b.podman(img, dir, true),
		b.skopeoInspect(img),
	}
}

func (b *bench) missing(sc *scenario, commands ...string) *scenario {
	for _, c := range commands {
		if why, ok := b.tools.missing[c]; ok {
			sc.skip = c + ": " + why
		}
	}
	return sc
}

func (b *bench) skopeoUmoci(img *image, dir string) *scenario {
	layout := filepath.Join(dir, "oci")
	bundle := filepath.Join(dir, "bundle")
	sc := &scenario{
		key: "skopeo-umoci", label: "skopeo copy + umoci unpack", group: groupPeer, ref: "roots-cold",
		runs: b.opts.slowRuns,
		prepare: func(ctx context.Context) error {
			if err := b.fresh(layout); err != nil {
				return err
			}
			return b.fresh(bundle)
		},
		run: func(ctx context.Context, m *meter) error {
			err := m.run(ctx, b.tools.path["skopeo"], "--policy", b.policy, "copy", "-q", "--src-tls-verify=false",
				"docker://"+img.ref, "oci:"+layout+":bench")
			if err != nil {
				return err
			}
			return m.run(ctx, b.tools.path["umoci"], "unpack", "--image", layout+":bench", bundle)
		},
		check:    func(ctx context.Context) error { return checkTree(filepath.Join(bundle, "rootfs"), img) },
		teardown: func() { b.fresh(layout); b.fresh(bundle) },
	}
	return b.missing(sc, "skopeo", "umoci")
}

func (b *bench) craneExport(img *image, dir string) *scenario {
	dest := filepath.Join(dir, "crane")
	sc := &scenario{
		key: "crane", label: "crane export | tar -x", group: groupPeer, ref: "roots-cold",
		prepare: func(ctx context.Context) error {
			if err := b.fresh(dest); err != nil {
				return err
			}
			return os.Mkdir(dest, 0o755)
		},
		run: func(ctx context.Context, m *meter) error {
			return m.pipe(ctx, []string{b.tools.crane, "export", "--insecure", img.ref, "-"}, []string{"tar", "-x", "-f", "-", "-C", dest})
		},
		check:    func(ctx context.Context) error { return checkTree(dest, img) },
		teardown: func() { b.fresh(dest) },
	}
	return b.missing(sc, "crane")
}

// podman pulls into a store of its own under dir and mounts the image
// (`podman image mount`: the rootfs podman would give a container). Warm
// pulls into a store that has the image already.
func (b *bench) podman(img *image, dir string, warm bool) *scenario {
	name := "podman-cold"
	if warm {
		name = "podman-warm"
	}
	store := filepath.Join(dir, name)
	// podman refuses a runroot longer than 50 characters.
	runroot := filepath.Join(b.short, img.name+"-"+name)
	global := []string{b.tools.path["podman"],
		"--root", filepath.Join(store, "root"), "--runroot", runroot, "--tmpdir", filepath.Join(store, "tmp"),
		"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "none"}
	podman := func(args ...string) []string { return append(append([]string{}, global...), args...) }
	reset := func() error {
		if exists(store) {
			ctx, cancel := context.WithTimeout(context.Background(), b.opts.timeout)
			b.meter().run(ctx, podman("image", "unmount", "--all")...)
			cancel()
		}
		unmountUnder(runroot)
		os.RemoveAll(runroot)
		return b.fresh(store)
	}
	var mounted string
	sc := &scenario{
		key: "podman-cold", label: "podman pull + image mount, cold", group: groupPeer, ref: "roots-cold",
		runs: b.opts.slowRuns,
		run: func(ctx context.Context, m *meter) error {
			if err := m.run(ctx, podman("pull", "-q", img.ref)...); err != nil {
				return err
			}
			out, err := m.output(ctx, podman("image", "mount", img.ref)...)
			mounted = strings.TrimSpace(out)
			return err
		},
		check: func(ctx context.Context) error {
			if mounted == "" {
				return fmt.Errorf("podman image mount printed no path")
			}
			return checkTree(mounted, img)
		},
		teardown: func() { reset() },
	}
	if warm {
		sc.key, sc.label, sc.ref, sc.runs = "podman-warm", "podman pull + image mount, warm", "roots-warm-hardlink", 0
		sc.setup = func(ctx context.Context) error {
			if err := reset(); err != nil {
				return err
			}
			m := b.meter()
			return m.run(ctx, podman("pull", "-q", img.ref)...)
		}
		sc.prepare = func(ctx context.Context) error {
			return b.meter().run(ctx, podman("image", "unmount", "--all")...)
		}
	} else {
		sc.prepare = func(ctx context.Context) error { return reset() }
	}
	return b.missing(sc, "podman")
}

func (b *bench) skopeoInspect(img *image) *scenario {
	sc := &scenario{
		key: "skopeo-inspect", label: "skopeo inspect --format {{.Digest}}", group: groupPeer, ref: "roots-digest",
		run: func(ctx context.Context, m *meter) error {
			out, err := m.output(ctx, b.tools.path["skopeo"], "--policy", b.policy, "inspect", "--tls-verify=false",
				"--format", "{{.Digest}}", "docker://"+img.ref)
			if err != nil {
				return err
			}
			return sameDigest(out, img)
		},
	}
	return b.missing(sc, "skopeo")
}
