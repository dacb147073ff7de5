package assemble

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	caslayer "github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/internal/disk"
)

// OverlayChanges returns the changes that an overlayfs upper directory holds, sorted as
// cas/layer.Export writes them: every entry of upper is a Write, a directory marked opaque
// (trusted.overlay.opaque or, with the userxattr mount option, user.overlay.opaque "y") an
// Opaque, and a whiteout (a 0/0 character device) a Delete. The root "." is always a Write (or
// Opaque): the merged root takes its metadata from upper's. Neither the lower layers nor the
// merged tree are read, so the overlay must be unmounted (or at least idle) while this runs.
//
// An entry that needs the lower layers to mean anything fails with ErrUpperNeedsLower: a
// directory renamed with redirect_dir (overlay.redirect) and a file copied up with metacopy
// (overlay.metacopy, whose data stayed below). roots mounts its overlays without either.
// Other overlayfs attributes (origin, impure, nlink) are bookkeeping, and Export leaves every
// overlay.* attribute out. Another mount below upper fails with ErrMountPoint.
func OverlayChanges(ctx context.Context, upper string) ([]caslayer.Change, error) {
	o := &upperWalk{buf: make([]byte, disk.BufSize)}
	if err := o.run(ctx, upper); err != nil {
		return nil, fmt.Errorf("changes of overlay upper %s: %w", upper, err)
	}
	caslayer.SortChanges(o.changes)
	return o.changes, nil
}

type upperWalk struct {
	buf     []byte
	root    entryStat
	changes []caslayer.Change
}

func (o *upperWalk) run(ctx context.Context, upper string) error {
	fd, err := unix.Open(upper, disk.DirFlags&^unix.O_NOFOLLOW, 0)
	if err != nil {
		return pathErr("open", upper, err)
	}
	defer unix.Close(fd)
	if o.root, err = statEntry(fd, ""); err != nil {
		return pathErr("stat", upper, err)
	}
	if err := o.add(fd, ".", ".", &o.root); err != nil {
		return err
	}
	return o.dir(ctx, fd, ".")
}

// dir adds the entries of the upper directory fd, at rel, and of its subdirectories.
func (o *upperWalk) dir(ctx context.Context, fd int, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := disk.ReadDir(fd, o.buf)
	if err != nil {
		return pathErr("read", rel, err)
	}
	for _, e := range ents {
		crel := joinPath(rel, e.Name)
		st, err := statEntry(fd, e.Name)
		if err != nil {
			return pathErr("stat", crel, err)
		}
		if !st.sameMount(&o.root) {
			return fmt.Errorf("%s: %w", crel, ErrMountPoint)
		}
		if st.typ() == unix.S_IFCHR && st.rdev == 0 {
			o.changes = append(o.changes, caslayer.Change{Path: crel, Kind: caslayer.Delete})
			continue
		}
		if err := o.add(fd, e.Name, crel, &st); err != nil {
			return err
		}
		if st.typ() != unix.S_IFDIR {
			continue
		}
		cfd, err := disk.OpenDir(fd, e.Name)
		if err != nil {
			return pathErr("open", crel, err)
		}
		err = o.dir(ctx, cfd, crel)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// add adds the Write or Opaque of name in the directory fd, at rel, after reading its overlay
// attributes.
func (o *upperWalk) add(fd int, name, rel string, st *entryStat) error {
	p := disk.ProcPath(fd, name)
	list, err := sized(func(b []byte) (int, error) { return unix.Llistxattr(p, b) })
	if err != nil && err != unix.ENOTSUP {
		return pathErr("listxattr", rel, err)
	}
	kind := caslayer.Write
	for _, n := range splitNames(list) {
		switch n {
		case "trusted.overlay.redirect", "user.overlay.redirect":
			return fmt.Errorf("%s: renamed directory (redirect_dir): %w", rel, ErrUpperNeedsLower)
		case "trusted.overlay.metacopy", "user.overlay.metacopy":
			return fmt.Errorf("%s: metadata-only copy-up (metacopy): %w", rel, ErrUpperNeedsLower)
		case "trusted.overlay.opaque", "user.overlay.opaque":
			if st.typ() != unix.S_IFDIR {
				continue
			}
			v, err := sized(func(b []byte) (int, error) { return unix.Lgetxattr(p, n, b) })
			if err != nil && err != unix.ENODATA {
				return pathErr("getxattr "+n, rel, err)
			}
			if string(v) == "y" {
				kind = caslayer.Opaque
			}
		}
	}
	o.changes = append(o.changes, caslayer.Change{Path: rel, Kind: kind})
	return nil
}

// splitNames splits a listxattr result into names.
func splitNames(list []byte) []string {
	var names []string
	for start := 0; start < len(list); {
		end := start
		for end < len(list) && list[end] != 0 {
			end++
		}
		if end > start {
			names = append(names, string(list[start:end]))
		}
		start = end + 1
	}
	return names
}
