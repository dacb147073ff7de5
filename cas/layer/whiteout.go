//go:build linux

package layer

import (
	"fmt"
	"strings"
)

type marker int

const (
	notMarker marker = iota
	whiteoutMarker
	opaqueDirMarker
)

// classify tells whether rel (confined, non-empty) is a whiteout marker. For a whiteout
// ".wh.NAME" it returns the path being deleted; for an opaque marker ".wh..wh..opq" the directory
// whose lower contents are hidden ("" for the root). ".wh." with no name, ".wh.." and ".wh..."
// (which would name the directory itself or its parent) and every other ".wh..wh." name below
// the root are ErrInvalidWhiteout (AUFS metadata at the root never gets here, see aufsEntry).
func classify(rel string) (marker, string, error) {
	dir, base := split(rel)
	if !strings.HasPrefix(base, whiteoutPrefix) {
		return notMarker, "", nil
	}
	if base == opaqueMarker {
		return opaqueDirMarker, dir, nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return 0, "", fmt.Errorf("%q: %w", base, ErrInvalidWhiteout)
	}
	name := base[len(whiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return 0, "", fmt.Errorf("%q: %w", base, ErrInvalidWhiteout)
	}
	return whiteoutMarker, join(dir, name), nil
}
