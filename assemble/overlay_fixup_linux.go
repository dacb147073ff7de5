package assemble

// The overlay fix-up: overlayfs differs from the layer.Record contract that Hardlink follows in
// a few places (a merged directory takes its metadata from the topmost layer that has it, even
// as an implicit parent; it knows nothing of a layer's Links, of symlinks a layer's paths
// resolve through, or of an opaque marker on a layer's root). OverlayFixup computes, once per
// image and by difference, the small top layer that corrects exactly those paths.

import (
	"context"
	"errors"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// OverlayFixup builds in dir (an existing empty directory on the trees' filesystem) the layer
// that, put on top of trees (bottom to top) in an overlay mount, makes the mount show what
// Hardlink of the same trees gives: the directories whose metadata the trees' own stack gets
// wrong (with their parents), whiteouts for what the stack shows but should not, and hard links
// to the trees' files that the stack lacks or gets wrong (so that hardlinks across layers stay
// one inode). It works by difference: it hardlink-assembles the trees into dir, mounts the
// trees' overlay (detached, read-only, seen by this process only), and removes from dir
// everything the mount already shows identically. It needs root (a mount). An image with a
// real 0:0 character device fails with ErrOverlayCannotShow.
func OverlayFixup(ctx context.Context, dir string, trees []Tree) error {
	if len(trees) == 0 {
		return fmt.Errorf("overlay fix-up %s: no layers", dir)
	}
	if err := all(ctx, dir, trees, linkAll); err != nil {
		return err
	}
	lowers := make([]string, 0, len(trees)+1)
	for i := len(trees) - 1; i >= 0; i-- {
		lowers = append(lowers, trees[i].Dir)
	}
	lowers = uniqueLowers(lowers)
	if len(lowers) == 1 { // overlayfs wants two layers when there is no upper
		empty, err := os.MkdirTemp(filepath.Dir(dir), ".empty-")
		if err != nil {
			return fmt.Errorf("overlay fix-up: %w", err)
		}
		defer os.Remove(empty)
		lowers = append(lowers, empty)
	}
	view, release, err := ovlView(dir, lowers)
	if err != nil {
		return fmt.Errorf("overlay fix-up: %w", err)
	}
	defer release()
	hfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("overlay fix-up: %w", pathErr("open", dir, err))
	}
	defer unix.Close(hfd)
	var root unix.Stat_t
	if err := unix.Fstat(hfd, &root); err != nil {
		return fmt.Errorf("overlay fix-up: %w", pathErr("stat", dir, err))
	}
	if _, err := ovlPrune(ctx, hfd, view, "."); err != nil {
		return fmt.Errorf("overlay fix-up: %w", err)
	}
	if err := ovlRestoreTimes(hfd, &root); err != nil {
		return fmt.Errorf("overlay fix-up: %w", pathErr("utimes", ".", err))
	}
	return nil
}

// ovlRestoreTimes gives the directory fd back the times in st, which pruning its entries changed.
func ovlRestoreTimes(fd int, st *unix.Stat_t) error {
	return unix.UtimesNanoAt(fd, "", []unix.Timespec{st.Atim, st.Mtim}, unix.AT_EMPTY_PATH)
}

// OverlayView mounts a read-only overlay of lowers (top first) that only this process sees, and
// returns a descriptor of its root (use it as "/proc/self/fd/N"; it may be O_PATH) and what ends
// it. Kernels without the detached mount API get a mount in a hidden directory beside near. It
// needs root.
func OverlayView(near string, lowers []string) (fd int, release func(), err error) {
	return ovlView(near, lowers)
}

// ovlView gives a descriptor of the root of a read-only overlay of lowers (top first): a
// detached mount where the kernel has the mount API, which vanishes with its last descriptor;
// else a mount in a directory beside near, unmounted by release.
func ovlView(near string, lowers []string) (fd int, release func(), err error) {
	lowers = uniqueLowers(lowers)
	mfd, err := ovlMountDetached(lowers, "", "")
	if err == nil {
		return mfd, func() { unix.Close(mfd) }, nil
	}
	if !errors.Is(err, errOvlNoMountAPI) {
		return -1, nil, err
	}
	mnt, err := os.MkdirTemp(filepath.Dir(near), ".view-")
	if err != nil {
		return -1, nil, err
	}
	links, err := os.MkdirTemp(filepath.Dir(near), ".l-")
	if err != nil {
		os.Remove(mnt)
		return -1, nil, err
	}
	cleanup := func() { os.RemoveAll(links); os.Remove(mnt) }
	if err := ovlMountLegacy(mnt, links, lowers, "", ""); err != nil {
		cleanup()
		return -1, nil, err
	}
	fd, err = unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Unmount(mnt, unix.MNT_DETACH)
		cleanup()
		return -1, nil, err
	}
	return fd, func() { unix.Close(fd); unix.Unmount(mnt, unix.MNT_DETACH); cleanup() }, nil
}

// ovlPrune removes from the directory hfd (at rel; the hardlink assembly) what the overlay
// directory ofd shows identically, and adds whiteouts for what the overlay shows but hfd does
// not have. It reports whether anything is left in hfd, which the caller then keeps.
func ovlPrune(ctx context.Context, hfd, ofd int, rel string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	names, err := ovlNames(hfd)
	if err != nil {
		return false, pathErr("read", rel, err)
	}
	onames, err := ovlNames(ofd)
	if err != nil {
		return false, pathErr("read overlay", rel, err)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		seen[n] = true
	}
	for _, n := range onames {
		if !seen[n] {
			names = append(names, n)
		}
	}
	keep := false
	for _, name := range names {
		crel := joinPath(rel, name)
		var hst, ost unix.Stat_t
		herr := unix.Fstatat(hfd, name, &hst, unix.AT_SYMLINK_NOFOLLOW)
		oerr := unix.Fstatat(ofd, name, &ost, unix.AT_SYMLINK_NOFOLLOW)
		if herr != nil && !errors.Is(herr, unix.ENOENT) {
			return false, pathErr("stat", crel, herr)
		}
		if oerr != nil && !errors.Is(oerr, unix.ENOENT) {
			return false, pathErr("stat overlay", crel, oerr)
		}
		hdir, odir := hst.Mode&unix.S_IFMT == unix.S_IFDIR, ost.Mode&unix.S_IFMT == unix.S_IFDIR
		switch {
		case herr != nil: // the overlay shows what should not be there: a whiteout hides it
			if err := unix.Mknodat(hfd, name, unix.S_IFCHR, 0); err != nil {
				return false, pathErr("mknod whiteout", crel, err)
			}
			keep = true
		case disk.IsWhiteout(&hst):
			return false, fmt.Errorf("%w: %s is a 0:0 character device, which overlayfs takes for a whiteout", ErrOverlayCannotShow, crel)
		case oerr != nil: // the overlay lacks it: keep it, and all below
			keep = true
		case hdir && odir:
			sub, same, err := ovlPruneDir(ctx, hfd, ofd, name, crel, &hst, &ost)
			if err != nil {
				return false, err
			}
			if sub || !same {
				keep = true
			} else if err := unix.Unlinkat(hfd, name, unix.AT_REMOVEDIR); err != nil {
				return false, pathErr("rmdir", crel, err)
			}
		case !hdir && !odir && hst.Ino == ost.Ino && hst.Mode == ost.Mode:
			if err := unix.Unlinkat(hfd, name, 0); err != nil {
				return false, pathErr("unlink", crel, err)
			}
		default: // a different file, or a file against a directory: the fix-up's wins
			keep = true
		}
	}
	return keep, nil
}

// ovlPruneDir prunes the directory name of both sides and compares their metadata.
func ovlPruneDir(ctx context.Context, hfd, ofd int, name, rel string, hst, ost *unix.Stat_t) (sub, same bool, err error) {
	ch, err := disk.OpenDir(hfd, name)
	if err != nil {
		return false, false, pathErr("open", rel, err)
	}
	defer unix.Close(ch)
	co, err := disk.OpenDir(ofd, name)
	if err != nil {
		return false, false, pathErr("open overlay", rel, err)
	}
	defer unix.Close(co)
	if sub, err = ovlPrune(ctx, ch, co, rel); err != nil {
		return false, false, err
	}
	if err := ovlRestoreTimes(ch, hst); err != nil {
		return false, false, pathErr("utimes", rel, err)
	}
	if hst.Mode != ost.Mode || hst.Uid != ost.Uid || hst.Gid != ost.Gid || hst.Mtim != ost.Mtim {
		return sub, false, nil
	}
	hx, err := ovlXattrs(ch)
	if err != nil {
		return false, false, pathErr("xattrs", rel, err)
	}
	ox, err := ovlXattrs(co)
	if err != nil {
		return false, false, pathErr("xattrs overlay", rel, err)
	}
	if len(hx) != len(ox) {
		return sub, false, nil
	}
	for k, v := range hx {
		if w, ok := ox[k]; !ok || w != v {
			return sub, false, nil
		}
	}
	return sub, true, nil
}

// ovlNames lists the directory fd without moving fd's own offset for good.
func ovlNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}
