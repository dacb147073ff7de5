package roots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/internal/disk"
)

// An overlay destination DEST is an overlayfs mount whose lower layers are the
// image's trees in the cache (under its fix-up layer), and whose upper and work
// directories live beside it, in the hidden state directory ".DEST.roots-overlay"
// (on DEST's filesystem, so that what a container writes is counted where DEST
// is, not in the cache). The state directory also holds lease.json, which names
// the cache and the lease that keeps purge away from the trees, so that
// Unmount needs no cache.

// overlayInfo is a state directory's lease.json.
type overlayInfo struct {
	Cache string `json:"cache"`
	Lease string `json:"lease"`
	Image string `json:"image"`
}

// statePath is the state directory of the overlay destination dest.
func statePath(dest string) string { return assemble.StagePath(dest, "overlay") }

// overlay pulls the image and mounts it at the destination.
func (p *puller) overlay(ctx context.Context) (*fetch.Image, error) {
	dest, state := p.dest, statePath(p.dest)
	if err := checkOverlayDest(dest, state, p.opts.Force); err != nil {
		return nil, err
	}
	assemble.RemoveStale(dest)
	img, err := p.resolve(ctx)
	if err != nil {
		return nil, err
	}
	p.rep.send(Event{Kind: Resolved, Image: img, Recorded: p.recorded})

	c, err := cas.Open(ctx, p.opts.Cache)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// The trees' records are needed only to make the fix-up, which is
	// cached too: a warm pull reads none of them.
	trees, err := p.trees(ctx, c, cas.DirOnly, img, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", p.ref, diskFull(err, p.opts.Cache, dest, img))
	}
	lowers, err := overlayLowers(ctx, c, img.DiffIDs, trees)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", p.ref, err)
	}

	// Everything is ready: only now is an old DEST taken away.
	old, err := clearOverlayDest(context.WithoutCancel(ctx), c, dest, state, p.opts.Force) // past the point of no return
	if err != nil {
		return nil, err
	}
	lease := &cas.Lease{
		Dest: dest, Mode: string(Overlay), State: state, Image: p.ref.String(), Digest: img.Digest, Index: img.IndexDigest,
		Platform: img.Platform.String(), Trees: img.DiffIDs, Fixup: cas.FixupKey(img.DiffIDs),
	}
	if err := c.Lease(lease); err != nil {
		return nil, err
	}
	if err := mountOverlay(c, dest, state, lowers, lease, p.ref); err != nil {
		c.Release(lease.ID)
		if old != "" {
			os.Rename(old, dest) // put back what Force was to replace
		}
		return nil, fmt.Errorf("pull %s: %w", p.ref, err)
	}
	if old != "" {
		if err := disk.RemoveAll(old); err != nil {
			return nil, fmt.Errorf("remove the replaced %s: %w", dest, err)
		}
	}
	return img, nil
}

// overlayLowers returns the overlay layers of the image made of trees (bottom first; diffIDs
// names them): its fix-up
// (made if the cache has none), then the trees, top first.
func overlayLowers(ctx context.Context, c *cas.Cache, diffIDs []digest.Digest, trees []cas.Tree) ([]string, error) {
	fixup, err := c.Fixup(ctx, diffIDs, func(ctx context.Context, dir string) error {
		at := make([]assemble.Tree, len(trees))
		for i := range trees {
			if err := trees[i].LoadRecord(); err != nil {
				return err
			}
			at[i] = assemble.Tree{Dir: trees[i].Dir, Record: trees[i].Record}
		}
		return assemble.OverlayFixup(ctx, dir, at)
	})
	if err != nil {
		return nil, err
	}
	lowers := []string{fixup}
	for i := len(trees) - 1; i >= 0; i-- {
		lowers = append(lowers, trees[i].Dir)
	}
	return lowers, nil
}

// mountOverlay makes the state directory and mounts the overlay.
func mountOverlay(c *cas.Cache, dest, state string, lowers []string, lease *cas.Lease, ref fetch.Reference) error {
	if err := os.Mkdir(state, 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(overlayInfo{Cache: c.Root(), Lease: lease.ID, Image: ref.String()})
	err := os.WriteFile(filepath.Join(state, "lease.json"), b, 0o600)
	if err == nil {
		err = assemble.MountOverlay(dest, state, lowers)
	}
	if err != nil {
		disk.RemoveAll(state)
	}
	return err
}

// checkOverlayDest refuses an existing dest without force, before any work.
// The leftovers of an overlay pull that was killed before it mounted (an
// empty DEST, a state directory with an empty upper layer) are removed.
func checkOverlayDest(dest, state string, force bool) error {
	mounted, err := disk.OverlayMounted(dest)
	if err != nil {
		return err
	}
	if !mounted && emptyUpper(state) {
		if fi, err := os.Lstat(dest); err == nil && fi.IsDir() {
			unix.Rmdir(dest) // only if empty: the mount point that was never mounted on
		}
		if err := disk.RemoveAll(state); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(dest); err == nil && !force {
		return fmt.Errorf("%s %w", assemble.Quote(dest), ErrExists)
	}
	if _, err := os.Lstat(state); err == nil && !force {
		return kindErrorf(ErrStateExists, "%s holds the changes of an earlier overlay at %s", state, dest)
	}
	return nil
}

// emptyUpper reports whether state is an overlay state directory whose upper
// layer holds nothing (or was never made).
func emptyUpper(state string) bool {
	if _, err := os.Lstat(state); err != nil {
		return false
	}
	ents, err := os.ReadDir(filepath.Join(state, "upper"))
	return errors.Is(err, fs.ErrNotExist) || err == nil && len(ents) == 0
}

// clearOverlayDest makes room for the new mount at dest (force was checked):
// an overlay there is unmounted and its lease released, and anything else is
// moved aside, for the caller to remove once the new mount is in place.
func clearOverlayDest(ctx context.Context, c *cas.Cache, dest, state string, force bool) (aside string, err error) {
	mounted, err := disk.OverlayMounted(dest)
	if err != nil {
		return "", err
	}
	if err := endOverlay(ctx, c, dest, ""); err != nil {
		return "", err
	}
	if mounted {
		if err := os.Remove(dest); err != nil {
			return "", err
		}
	}
	if _, err := os.Lstat(dest); err == nil {
		if !force {
			return "", fmt.Errorf("%s %w", assemble.Quote(dest), ErrExists)
		}
		aside = assemble.StagePath(dest, fmt.Sprintf("old-%d", os.Getpid()))
		if err := os.Rename(dest, aside); err != nil {
			return "", err
		}
	}
	return aside, nil
}

// releaseRecorded releases the lease that state's lease.json names, in the
// cache it names (c when it is that cache).
func releaseRecorded(ctx context.Context, state string, c *cas.Cache) error {
	b, err := os.ReadFile(filepath.Join(state, "lease.json"))
	if err != nil {
		return nil // not ours, or already gone: nothing to release
	}
	var info overlayInfo
	if json.Unmarshal(b, &info) != nil || info.Lease == "" {
		return nil
	}
	if c != nil && c.Root() == info.Cache {
		return c.Release(info.Lease)
	}
	if _, err := os.Stat(info.Cache); err != nil {
		return nil // the cache is gone, and its leases with it
	}
	oc, err := cas.Open(ctx, info.Cache)
	if err != nil {
		return err
	}
	defer oc.Close()
	return oc.Release(info.Lease)
}

// replaceOverlay ends the overlay destination dest, if it is one, before
// another mode's pull replaces it: unmounted, lease released, state removed,
// the empty mount point left for the staging directory to take its place.
func replaceOverlay(ctx context.Context, dest string) error {
	mounted, err := disk.OverlayMounted(dest)
	if err != nil || !mounted {
		return err
	}
	return endOverlay(context.WithoutCancel(ctx), nil, dest, "") // past the point of no return
}

// Unmount ends the overlay destination dest that an Overlay pull mounted: it unmounts it,
// releases its lease on the cache (so that Purge may remove its layers again), and removes
// its state and the empty mount point. What was written into dest (the overlay's upper
// layer) is deleted, or with keep moved to dest+".upper", whose path Unmount returns.
func Unmount(ctx context.Context, dest string, keep bool) (kept string, err error) {
	dest, err = assemble.Canonical(dest)
	if err != nil {
		return "", err
	}
	state := statePath(dest)
	mounted, err := disk.OverlayMounted(dest)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(state); err != nil {
		if mounted {
			return "", fmt.Errorf("umount %s: an overlay that roots did not mount (no %s): use umount(8)", dest, state)
		}
		return "", fmt.Errorf("umount %s: not an overlay destination that roots mounted", dest)
	}
	if keep {
		kept = dest + ".upper"
		if _, err := os.Lstat(kept); err == nil {
			return "", fmt.Errorf("umount %s, keeping its changes: %s exists: move it away first", dest, kept)
		}
	}
	if err := endOverlay(ctx, nil, dest, kept); err != nil {
		return "", fmt.Errorf("umount %s: %w", dest, err)
	}
	// The mount point goes, if it is the empty directory roots made.
	if err := unix.Rmdir(dest); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.ENOTDIR) {
		return "", fmt.Errorf("umount %s: %w", dest, err)
	}
	return kept, nil
}

// endOverlay unmounts the overlay destination dest if it is mounted, releases
// its lease (through c when that is its cache) and removes its state
// directory, after moving the upper layer to keep if keep is not "". It leaves
// the mount point.
func endOverlay(ctx context.Context, c *cas.Cache, dest, keep string) error {
	state := statePath(dest)
	mounted, err := disk.OverlayMounted(dest)
	if err != nil {
		return err
	}
	if mounted {
		if err := assemble.UnmountOverlay(dest); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("%w: a process still uses it (see fuser -vm %s)", err, dest)
			}
			return err
		}
	}
	if err := releaseRecorded(ctx, state, c); err != nil {
		return fmt.Errorf("release its lease: %w", err)
	}
	if keep != "" {
		if err := os.Rename(filepath.Join(state, "upper"), keep); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return disk.RemoveAll(state)
}
