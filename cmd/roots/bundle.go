package main

import (
	"context"

	"github.com/rootsdev/roots"
)

// bundleFlags shape a bundle's config.json.
type bundleFlags struct {
	Rootless bool `help:"Write the config runc spec --rootless writes: a user namespace that maps your uid and gid to root (the process runs as root there, you outside, whatever the image's User), no network namespace, no cgroup rules; run it with runc as you."`
	Tty      bool `short:"t" help:"Give the process a terminal (process.terminal), for an interactive shell."`
}

// BundleCmd makes an OCI runtime bundle.
type BundleCmd struct {
	Image string   `arg:"" help:"Image reference: debian, debian:12, ghcr.io/o/r:tag, host:5000/repo@sha256:..."`
	Dir   string   `arg:"" help:"Directory to create: the bundle, DIR/rootfs and DIR/config.json."`
	Args  []string `arg:"" optional:"" help:"After --: the command to run instead of the image's Cmd (after its Entrypoint), as with docker run."`
	Force bool     `short:"f" help:"Make DIR a bundle again if it exists: its rootfs and config.json are replaced (the rootfs atomically, as pull --force); nothing else in DIR is touched."`
	Jobs  int      `short:"j" default:"4" help:"Layers to download and unpack at once."`
	Quiet bool     `short:"q" help:"Print nothing but errors, even on a terminal."`
	Mode  string   `enum:"hardlink,copy,overlay" default:"hardlink" help:"How DIR/rootfs is made, as roots pull --mode: hardlink, copy, or overlay (root: an overlayfs mount; end it with roots umount DIR/rootfs)."`
	bundleFlags
	offlineFlags
	cacheFlags
	registryFlags
	platformFlags
}

// Help shows examples under `roots bundle --help`.
func (BundleCmd) Help() string {
	return `DIR/config.json is what runc spec writes (--rootless: runc spec --rootless), with the
process the image config says: Entrypoint + Cmd, Env, WorkingDir, and User resolved in the
image's own /etc/passwd and /etc/group; its labels and StopSignal become annotations.

Examples:
  roots bundle alpine ./b && runc run -b ./b ctr   # runs what the image says, then: runc delete ctr
  roots bundle --tty alpine ./b -- /bin/sh          # an interactive shell instead of the image's Cmd
  roots bundle --force alpine:3.20 ./b              # make ./b again from another image
  sudo roots bundle --mode overlay debian ./b       # DIR/rootfs is an overlayfs mount
  roots bundle --rootless alpine ./b && runc --root $XDG_RUNTIME_DIR/runc run -b ./b ctr
  roots pull --bundle alpine ./b                    # the same, from roots pull
  roots bundle --offline debian:12 ./b              # from the cache alone: no network connection`
}

// Run makes the bundle.
func (b *BundleCmd) Run(ctx context.Context, e *env) error {
	p := PullCmd{
		Image: b.Image, Dest: b.Dir, Force: b.Force, Jobs: b.Jobs, Quiet: b.Quiet, Mode: b.Mode,
		bundleFlags: b.bundleFlags, offlineFlags: b.offlineFlags, cacheFlags: b.cacheFlags, registryFlags: b.registryFlags,
		platformFlags: b.platformFlags,
	}
	return p.bundle(ctx, e, b.Args)
}

// bundle pulls p.Image into the bundle p.Dest, the process running args (if any) instead of
// the image's Cmd.
func (p *PullCmd) bundle(ctx context.Context, e *env, args []string) error {
	where := "in " + quote(p.Dest) + " (run it: runc run -b " + quote(p.Dest) + " ID)"
	return p.pulling(ctx, e, "bundled", where, func(opts roots.PullOptions) (*roots.Pulled, error) {
		b, err := roots.Bundle(ctx, p.Image, p.Dest, roots.BundleOptions{
			Pull: opts, Args: args, Rootless: p.Rootless, Terminal: p.Tty,
		})
		if err != nil {
			return nil, err
		}
		return &b.Pulled, nil
	})
}
