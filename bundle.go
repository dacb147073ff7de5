package roots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/internal/disk"
	"github.com/rootsdev/roots/internal/mountinfo"
)

// An OCI runtime bundle is a directory that runc (and any OCI runtime) runs as it is:
// DIR/rootfs, the image pulled in any mode, and DIR/config.json, a runtime-spec config. The
// config is what runc 1.1's `runc spec` writes (bundlespec.go), with the process filled from
// the image config: args, env, cwd, and the user resolved in the rootfs's own /etc/passwd and
// /etc/group (bundleuser.go); the image's labels and stop signal become annotations.
//
// The config is made from the complete new rootfs before it takes DIR/rootfs's place, and
// written beside config.json, so that a bundle that fails (an unknown user, no command, a pull
// that fails) leaves DIR as it was; a DIR it created is removed again.

// BundleOptions say how Bundle works.
type BundleOptions struct {
	// Pull says how DIR/rootfs is pulled (any Mode). With Pull.Force an existing DIR is made a
	// bundle again: its rootfs and config.json are replaced, whatever else DIR holds stays.
	Pull PullOptions
	// Args, if not empty, replace the image's Cmd (after its Entrypoint), as docker run's do.
	Args []string
	// Rootless writes the config `runc spec --rootless` would: a user namespace mapping the
	// caller's uid and gid to root (the process runs as root there, whatever the image's
	// User: runc 1.1 maps nothing else for an unprivileged caller; a Warning event says so),
	// no network namespace, no cgroup rules.
	Rootless bool
	// Terminal gives the process a terminal (process.terminal), as runc spec does by default.
	Terminal bool
}

// Bundled says what Bundle made.
type Bundled struct {
	Pulled             // DIR/rootfs (Dest)
	Dir    string      // absolute, with its parent's symlinks resolved
	Spec   *specs.Spec // as written to DIR/config.json
}

// Bundle pulls the image ref names into dir/rootfs and writes dir/config.json, making dir an
// OCI runtime bundle: `runc run -b DIR ID` runs what the image says. dir is created; one that
// exists is an error wrapping ErrExists unless opts.Pull.Force. An image that names no command
// (and no Args) is ErrNoCommand, a User that the image's /etc/passwd or /etc/group does not
// have is ErrUnknownUser; both are found before DIR changes.
func Bundle(ctx context.Context, ref, dir string, opts BundleOptions) (*Bundled, error) {
	r, err := fetch.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	dir, err = checkBundleDir(dir, opts.Pull.Cache)
	if err != nil {
		return nil, err
	}
	created := false
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", r, err)
		}
		created = true
	case err != nil:
		return nil, fmt.Errorf("bundle %s: %w", r, err)
	case !fi.IsDir():
		return nil, kindErrorf(ErrInvalidDest, "bundle %s: %s is not a directory", r, assemble.Quote(dir))
	case !opts.Pull.Force:
		return nil, fmt.Errorf("bundle %s: %s %w", r, assemble.Quote(dir), ErrExists)
	}
	b := &bundler{ref: r, dir: dir, opts: opts}
	pulled, err := pullWith(ctx, r, filepath.Join(dir, "rootfs"), opts.Pull, b)
	if err == nil {
		err = b.commit()
	}
	if err != nil {
		b.abort()
		if created {
			os.Remove(dir) // empty again: a failed pull leaves nothing
		}
		return nil, err
	}
	return &Bundled{Pulled: *pulled, Dir: dir, Spec: b.spec}, nil
}

// checkBundleDir refuses a DIR that CheckDest refuses as a destination, but for what a bundle
// may have mounted: DIR itself (a bundle never replaces DIR) and a roots overlay at DIR/rootfs
// (a forced bundle replaces it). It returns DIR made canonical.
func checkBundleDir(dir, cache string) (string, error) {
	canon, err := CheckDest(dir, cache)
	if err == nil || errors.Is(err, ErrInvalidDest) {
		return canon, err
	}
	abs, aerr := assemble.Canonical(dir)
	if aerr != nil {
		return "", err
	}
	mounts, merr := mountinfo.Below(abs)
	if merr != nil || len(mounts) == 0 {
		return "", err
	}
	rootfs := filepath.Join(abs, "rootfs")
	for _, m := range mounts {
		if m == abs {
			continue
		}
		if ours, oerr := disk.OverlayMounted(m); m != rootfs || oerr != nil || !ours {
			return "", err
		}
	}
	return abs, nil
}

// bundler makes the config of a bundle as its pull goes (a stager).
type bundler struct {
	ref   fetch.Reference
	dir   string
	opts  BundleOptions
	image *imageSpec
	spec  *specs.Spec
	tmp   string // the config written beside config.json, until commit
}

// resolved reads the image config, before anything is fetched: an image with no command fails
// here.
func (b *bundler) resolved(img *fetch.Image) error {
	is, err := newImageSpec(b.ref, img.Config, b.opts.Args)
	if err != nil {
		return fmt.Errorf("bundle %w", err)
	}
	b.image = is
	return nil
}

// staged resolves the user in the new rootfs and writes the config beside config.json.
func (b *bundler) staged(ctx context.Context, img *fetch.Image, rootfs string) error {
	passwd, group, err := readUserDB(rootfs)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", b.ref, err)
	}
	u, err := resolveUser(b.image.config.User, passwd, group)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", b.ref, err)
	}
	b.spec = b.image.spec(b.ref, u, b.opts)
	if b.opts.Rootless && (u.UID != 0 || u.GID != 0) && b.opts.Pull.Progress != nil {
		b.opts.Pull.Progress(Event{Kind: Warning, Message: fmt.Sprintf(
			"a rootless bundle runs as root in its user namespace (you, outside): the image's user %q (%d:%d) cannot be mapped",
			b.image.config.User, u.UID, u.GID)})
	}
	data, err := json.MarshalIndent(b.spec, "", "\t")
	if err != nil {
		return fmt.Errorf("bundle %s: config.json: %w", b.ref, err)
	}
	if err := b.writeTemp(append(data, '\n')); err != nil {
		return fmt.Errorf("bundle %s: write config.json: %w", b.ref, err)
	}
	return nil
}

// writeTemp writes data, synced, to a new hidden file in DIR.
func (b *bundler) writeTemp(data []byte) error {
	f, err := os.CreateTemp(b.dir, ".config.json.roots-*")
	if err != nil {
		return err
	}
	b.tmp = f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// commit puts the config in place, once the rootfs is.
func (b *bundler) commit() error {
	if err := os.Rename(b.tmp, filepath.Join(b.dir, "config.json")); err != nil {
		return fmt.Errorf("bundle %s: the rootfs is in place, but not its config.json: %w", b.ref, err)
	}
	b.tmp = ""
	return disk.SyncDir(b.dir)
}

// abort removes the config not put in place.
func (b *bundler) abort() {
	if b.tmp != "" {
		os.Remove(b.tmp)
		b.tmp = ""
	}
}
