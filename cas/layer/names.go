//go:build linux

package layer

import (
	"fmt"
	"path"
	"strings"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
	nameMax        = 255
)

// confine turns a tar name (or hardlink target) into a clean relative path inside the target
// directory, as containerd does: clean "/"+name and drop the leading "/". So "../x", "/x" and
// "a/../../x" all become "x"; "", ".", "/" and ".." become "" (the target itself).
func confine(name string) string {
	return path.Clean("/" + name)[1:]
}

// checkPath rejects what no entry may name: components longer than NAME_MAX, and whiteout
// markers used as directories (".wh.x/y"), which would otherwise appear as plain files.
func checkPath(rel string) error {
	for rest := rel; rest != ""; {
		comp := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			comp, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if len(comp) > nameMax {
			return fmt.Errorf("%d bytes in %.32q...: %w", len(comp), comp, ErrNameTooLong)
		}
		if rest != "" && strings.HasPrefix(comp, whiteoutPrefix) {
			return fmt.Errorf("directory %q is a whiteout name: %w", comp, ErrInvalidWhiteout)
		}
	}
	return nil
}

// split returns the parent ("" for the root) and the last component of a non-empty relative path.
func split(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// join joins a parent ("" for the root) and a name.
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// under reports whether p is below dir (not dir itself); dir "" is the root.
func under(p, dir string) bool {
	if dir == "" {
		return p != ""
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}

// recordPath is how a Record names a path: the root is ".".
func recordPath(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// display quotes a tar name for an error message when it holds control characters or bytes
// that are not UTF-8, so that an error stays one readable line.
func display(name string) string {
	q := fmt.Sprintf("%q", name)
	if q[1:len(q)-1] == name {
		return name
	}
	return q
}
