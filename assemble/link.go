package assemble

import (
	"crypto/rand"
	"errors"
	"fmt"
	caslayer "github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/internal/disk"
	"strconv"

	"golang.org/x/sys/unix"
)

// Links are made in two steps around a tree's whiteouts and opaque directories. holdLinks
// first links every Target, as the lower layers left it, under a private name in a private
// directory at the destination's root; placeLinks then moves each to its Name once whiteouts
// and opaque directories are done. So a Link keeps the lower file that its tar entry named,
// whatever the same layer deletes, and needs no sparing from the layer's whiteouts and opaque
// directories; a directory on the way to its Name is the one the tree's own entries meet.

// heldPrefix starts the name of the private directory; a random suffix makes it unguessable,
// so that no layer's whiteout or entry can name it.
const heldPrefix = ".roots-links-"

// holdLinks links the Target of each of links (but those naming themselves) into a new private
// directory, whose name it sets in a.held. A symlink among the Target's parents is followed
// inside the destination; a Target that is missing or behind a non-directory wraps
// caslayer.ErrLinkTargetMissing, a directory caslayer.ErrInvalidLink.
func (a *assembler) holdLinks(links []Link) (fd int, err error) {
	if len(links) == 0 {
		return -1, nil
	}
	for tries := 0; ; tries++ {
		a.held = heldPrefix + rand.Text()
		err = unix.Mkdirat(a.root, a.held, 0o700)
		if err == nil || !errors.Is(err, unix.EEXIST) || tries == 10 {
			break
		}
	}
	if err != nil {
		a.held = ""
		return -1, pathErr("mkdir", heldPrefix+"*", err)
	}
	if fd, err = disk.OpenDir(a.root, a.held); err != nil {
		a.releaseLinks(-1)
		return -1, pathErr("open", a.held, err)
	}
	for i, l := range links {
		if l.Name != l.Target {
			err = a.holdLink(fd, strconv.Itoa(i), l)
		}
		if err != nil {
			a.releaseLinks(fd)
			return -1, err
		}
	}
	return fd, nil
}

// holdLink links l.Target to key in the private directory hfd.
func (a *assembler) holdLink(hfd int, key string, l Link) error {
	dir, tname := splitLast(l.Target)
	tdir, _, _, err := a.resolveDir(dir, false, false)
	if absent(err) {
		return fmt.Errorf("link %s to %s: %w", l.Name, l.Target, caslayer.ErrLinkTargetMissing)
	}
	if err != nil {
		return fmt.Errorf("link %s to %s: %w", l.Name, l.Target, err)
	}
	defer unix.Close(tdir)
	err = unix.Linkat(tdir, tname, hfd, key, 0)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("link %s to %s: %w", l.Name, l.Target, caslayer.ErrLinkTargetMissing)
	case errors.Is(err, unix.EPERM):
		if typ, serr := statType(tdir, tname); serr == nil && typ == unix.DT_DIR {
			return fmt.Errorf("link %s to %s: a directory: %w", l.Name, l.Target, caslayer.ErrInvalidLink)
		}
	case errors.Is(err, unix.EMLINK), errors.Is(err, unix.EXDEV):
		return a.copyEntry(tdir, tname, hfd, key, unix.DT_UNKNOWN, a.held, nil)
	}
	return fmt.Errorf("link %s to %s: %w", l.Name, l.Target, err)
}

// placeLinks moves each held link to its Name, replacing whatever is there, in archive order
// (a later Link of the same Name wins), then removes the private directory.
func (a *assembler) placeLinks(hfd int, links []Link) error {
	defer a.releaseLinks(hfd)
	for i, l := range links {
		if l.Name == l.Target {
			continue // a file linked to itself is already there
		}
		if err := a.placeLink(hfd, strconv.Itoa(i), l); err != nil {
			return err
		}
	}
	return nil
}

// placeLink renames key of the private directory hfd to l.Name. A missing parent of l.Name, or a
// symlink or other non-directory in its place, becomes a new directory (see linkParent).
func (a *assembler) placeLink(hfd int, key string, l Link) error {
	dir, name := splitLast(l.Name)
	ndir, n, err := a.linkParent(dir)
	if err != nil {
		return fmt.Errorf("link %s to %s: parent directory: %w", l.Name, l.Target, err)
	}
	defer unix.Close(ndir)
	err = unix.Renameat(hfd, key, ndir, name)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		if err = a.clear(ndir, name, n); err == nil {
			err = unix.Renameat(hfd, key, ndir, name)
		}
	}
	if err != nil {
		return fmt.Errorf("link %s to %s: %w", l.Name, l.Target, err)
	}
	return nil
}

// releaseLinks closes hfd (unless -1) and removes the private directory. It is empty unless a
// link was not placed (an error, or a Name that already was the same inode: rename leaves both).
func (a *assembler) releaseLinks(hfd int) {
	if hfd >= 0 {
		unix.Close(hfd)
	}
	if a.held == "" {
		return
	}
	if err := unix.Unlinkat(a.root, a.held, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		disk.RemoveAt(a.root, a.held, unix.DT_DIR, a.buf)
	}
	a.held = ""
}

// linkParent opens the destination directory dir that will hold a Link's name, and returns its
// node. Symlinks on the way are followed inside the destination (see resolveDir); each missing
// component is made, and each other non-directory replaced, as a new directory: 0755 root:root,
// or the tree's metadata for it (see addDir).
func (a *assembler) linkParent(dir string) (int, *node, error) {
	fd, _, n, err := a.resolveDir(dir, true, true)
	return fd, n, err
}
