//go:build linux

package layer

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// ChangeKind says what a Change does to its path.
type ChangeKind int

const (
	// Write: the entry at the path (a file, directory, symlink, hardlink, device or FIFO, with
	// its metadata) is written from the source root. A directory's Write is its own entry only:
	// what it holds is named by Changes of its own.
	Write ChangeKind = iota
	// Delete: the path is deleted from the layers below (a whiteout ".wh.NAME").
	Delete
	// Opaque: the directory's entry is written as for Write, and its contents in the layers
	// below are hidden (".wh..wh..opq" in it).
	Opaque
)

func (k ChangeKind) String() string {
	switch k {
	case Write:
		return "write"
	case Delete:
		return "delete"
	case Opaque:
		return "opaque"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// A Change is one path of a layer being made (see Export). Path is slash-separated, relative
// and clean, without a "./" prefix; "." is the root directory itself (a Write or Opaque of the
// root: the layer's "./" entry).
type Change struct {
	Path string
	Kind ChangeKind
}

func (c Change) String() string { return c.Kind.String() + " " + c.Path }

// SortChanges sorts changes in the order Export writes them: by path, component by component
// in byte order, so that a directory comes right before what it holds ("a", "a/b", "a-b"); the
// root "." first of all.
func SortChanges(changes []Change) {
	slices.SortStableFunc(changes, func(a, b Change) int { return ComparePaths(a.Path, b.Path) })
}

// ComparePaths orders two change paths as SortChanges does: component by component, "." (the
// root) before everything.
func ComparePaths(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == ".":
		return -1
	case b == ".":
		return 1
	}
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		// '/' ends a component: it sorts before every byte a name can hold.
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	return len(a) - len(b)
}

// checkChange rejects a change whose path is not relative and clean, names a whiteout, or whose
// kind does not fit it.
func checkChange(c Change) error {
	p := c.Path
	switch {
	case p == "" || p != path.Clean(p) || strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("%s: path is not relative and clean: %w", display(p), ErrInvalidChange)
	case c.Kind != Write && c.Kind != Delete && c.Kind != Opaque:
		return fmt.Errorf("%s: %v: %w", display(p), c.Kind, ErrInvalidChange)
	case p == "." && c.Kind == Delete:
		return fmt.Errorf("delete of the root: %w", ErrInvalidChange)
	}
	if p == "." {
		return nil
	}
	for _, comp := range strings.Split(p, "/") {
		if strings.HasPrefix(comp, whiteoutPrefix) {
			return fmt.Errorf("%s: a whiteout name: %w", display(p), ErrInvalidChange)
		}
		if len(comp) > nameMax {
			return fmt.Errorf("%s: %w", display(p), ErrNameTooLong)
		}
	}
	if _, name := split(p); c.Kind == Delete && len(whiteoutPrefix+name) > nameMax {
		return fmt.Errorf("whiteout of %s: %w", display(p), ErrNameTooLong)
	}
	return nil
}
