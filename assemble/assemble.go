// Package assemble turns an ordered list of unpacked layers (trees) into one root filesystem.
//
// Layers are unpacked once into the cache as independent changesets; assembling an image is
// then a cheap walk over its trees, bottom to top, that hardlinks (or copies) their entries into
// a destination, applying each layer's whiteouts and opaque directories on the way. Directory
// metadata is set last, children before parents, so read-only directories and mtimes survive.
//
// Every walk goes through directory file descriptors and *at system calls, never through path
// strings in the destination, so the kernel never follows a symlink a layer planted. Where a
// layer names a path below a symlink of the layers beneath it (lib/x over lib -> usr/lib), the
// assembler follows the link itself, inside the destination as if it were "/" (see
// resolve_linux.go), as tar extraction onto the rootfs does; the last component of a path is
// never followed. The
// destination is built beside its final path (Stage) and renamed or atomically swapped into
// place (Commit). The package knows nothing of registries or digests: a tree is a directory plus
// the few facts its directory cannot hold.
package assemble

import (
	"context"
	"fmt"
	"path"
	"strings"

	caslayer "github.com/rootsdev/roots/cas/layer"
)

// Tree is one unpacked layer (a changeset) as the cache holds it: its directory and its
// layer.Record, whose Whiteouts, Opaque, Implicit and Links assembly uses (the rest is the
// cache's). Paths are slash-separated, relative and clean; "." names the tree's root.
//
// Assembly adds each tree onto the ones below it in the order of the layer.Record contract,
// which makes it equal to applying the layer's tar directly: (1) the Links' targets are held
// (hardlinked under a private name), as the lower layers left them; (2) Whiteouts are removed;
// (3) Opaque directories are emptied; (4) the held Links are put at their names; (5) the
// entries of Dir are added, parents first, an implicit directory that meets a symlink
// following it inside the destination. Directory metadata comes last, children before
// parents, the topmost explicit directory winning; the root "." takes the metadata of the
// topmost tree that does not list it implicit, else it is made 0755 and keeps its owner.
// When the cache was filled as root, Dir also holds the whiteouts as 0/0 character devices,
// which are never linked or copied.
type Tree struct {
	Dir string
	caslayer.Record
}

// Link makes Name a hardlink of the destination's Target (both relative to the root) as the
// lower layers left it, symlinks among the parents of both followed inside the destination. A
// missing parent of Name, or a non-directory other than a symlink in its place, becomes a new
// directory (0755 root:root unless the tree gives it metadata); a Target that is missing, a
// directory, or behind a non-directory wraps cas/layer.ErrLinkTargetMissing (a directory: ErrInvalidLink).
type Link = caslayer.Link

// Hardlink assembles trees (bottom to top) into dir, an existing empty directory (normally a
// Staging.Dir). Each tree's links to lower files, whiteouts and opaque directories are applied
// first (see Tree for the order); then directories are created, and files, symlinks, devices
// and fifos become hard links to the trees' inodes. Directory metadata (owner, mode, xattrs,
// times) is set last, children before parents, from the topmost tree that has the directory and
// does not mark it implicit; the root's too. A link that fails with EXDEV or EMLINK falls back
// to a copy of that file (reflink first), which keeps owner, mode, times and xattrs.
//
// Regular files below CopiedDirs (etc/) are copied, not linked: container engines and init
// rewrite some of them in place (systemd-nspawn writes etc/resolv.conf, systemd
// etc/machine-id), and a write through a hard link would change the cache's layer and every
// other destination that shares it. A hardlink group of one layer that has names both in and
// out of them becomes two inodes.
func Hardlink(ctx context.Context, dir string, trees []Tree) error {
	return all(ctx, dir, trees, linkMost)
}

// CopiedDirs are the destination directories whose regular files Hardlink copies (see Hardlink).
var CopiedDirs = []string{"etc"}

// Copy is Hardlink with copies instead of links, for destinations that must not share inodes with
// the trees. Hardlinks within a layer, and Links, stay hardlinks within the destination.
func Copy(ctx context.Context, dir string, trees []Tree) error {
	return all(ctx, dir, trees, copyAll)
}

// fileMode is how an assembly puts regular files into the destination.
type fileMode int

const (
	linkMost fileMode = iota // hard links, but copies below CopiedDirs (Hardlink)
	linkAll                  // hard links everywhere (an overlay fix-up: nothing in it is written)
	copyAll                  // copies everywhere (Copy)
)

func all(ctx context.Context, dir string, trees []Tree, mode fileMode) error {
	a, err := start(dir, mode)
	if err != nil {
		return err
	}
	defer a.Close()
	for _, t := range trees {
		if err := a.Add(ctx, t); err != nil {
			return err
		}
	}
	return a.Finish(ctx)
}

// An Assembly is Hardlink or Copy one tree at a time, so that a layer can be added as soon as
// it is unpacked while the layers above it still are. Add the trees bottom to top, then Finish
// (which sets directory metadata); Close releases an assembly that is not finished. An Assembly
// is used by one goroutine.
type Assembly struct {
	a      *assembler
	stream *Stream // following the first tree as it unpacks (see Stream)
	dir    string
	n      int   // trees added
	err    error // the first failure: the destination is incomplete
	done   bool
}

// NewHardlink starts a Hardlink assembly into dir, an existing empty directory.
func NewHardlink(dir string) (*Assembly, error) { return start(dir, linkMost) }

// NewCopy starts a Copy assembly into dir, an existing empty directory.
func NewCopy(dir string) (*Assembly, error) { return start(dir, copyAll) }

// Add adds the next tree, above the ones added before. After a failure every call fails.
func (s *Assembly) Add(ctx context.Context, t Tree) error {
	if s.err != nil || s.done {
		return s.failed()
	}
	err := t.validate()
	if err == nil {
		if st := s.stream; st != nil && s.n == 0 {
			s.stream = nil
			err = s.a.addStreamed(ctx, &t, st)
		} else {
			err = s.a.addTree(ctx, &t, s.n == 0)
		}
	}
	if err != nil {
		s.err = fmt.Errorf("assemble %s: layer %d (%s): %w", s.dir, s.n, t.Dir, err)
		return s.err
	}
	s.n++
	return nil
}

// Finish sets the directories' metadata, children before parents, and closes the assembly.
func (s *Assembly) Finish(ctx context.Context) error {
	if s.err != nil || s.done {
		return s.failed()
	}
	if err := s.a.applyMeta(ctx); err != nil {
		s.err = fmt.Errorf("assemble %s: directory metadata: %w", s.dir, err)
		return s.err
	}
	s.Close()
	return nil
}

// Close releases the assembly's descriptor; the destination is left as it is.
func (s *Assembly) Close() {
	if !s.done {
		s.done = true
		if s.stream != nil {
			s.stream.close()
		}
		s.a.close()
	}
}

func (s *Assembly) failed() error {
	if s.err != nil {
		return s.err
	}
	return fmt.Errorf("assemble %s: %w", s.dir, errFinished)
}

// validate checks that every path in t is relative, clean and stays below the root.
func (t *Tree) validate() error {
	check := func(kind, p string, rootOK bool) error {
		if err := checkPath(p, rootOK); err != nil {
			return fmt.Errorf("%s %q: %w", kind, p, err)
		}
		return nil
	}
	for _, p := range t.Whiteouts {
		if err := check("whiteout", p, false); err != nil {
			return err
		}
	}
	for _, p := range t.Opaque {
		if err := check("opaque dir", p, true); err != nil {
			return err
		}
	}
	for _, p := range t.Implicit {
		if err := check("implicit dir", p, true); err != nil {
			return err
		}
	}
	for _, l := range t.Links {
		if err := check("link", l.Name, false); err != nil {
			return err
		}
		if err := check("link target", l.Target, false); err != nil {
			return err
		}
	}
	return nil
}

// checkPath accepts a relative, clean, slash-separated path that does not climb out of the root;
// "." only when rootOK.
func checkPath(p string, rootOK bool) error {
	switch {
	case p == ".":
		if rootOK {
			return nil
		}
		return ErrUnsafePath
	case p == "", strings.HasPrefix(p, "/"), path.Clean(p) != p, p == "..", strings.HasPrefix(p, "../"):
		return ErrUnsafePath
	}
	return nil
}

// splitPath splits a checked path into its components; "." has none.
func splitPath(p string) []string {
	if p == "." {
		return nil
	}
	return strings.Split(p, "/")
}

// joinPath appends name to the relative directory path dir.
func joinPath(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}
