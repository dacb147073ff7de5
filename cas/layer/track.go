//go:build linux

package layer

import (
	"sort"
	"strings"
)

// node tracks what the unpack must remember about a path until the end of the layer (Unpack)
// or of all layers (Applier): directory metadata to apply after the children, implicit parents,
// and — for a tree — whiteouts, opaque directories and paths whose lower contents the layer has
// hidden. Regular files have no node, so the tree stays as small as the directory tree. The
// root node is the target directory itself: implicit unless a layer has an entry for the root.
type node struct {
	kids map[string]*node

	meta     *metadata // explicit directory entry: applied last (the topmost wins)
	implicit bool      // directory created only as the parent of an entry: Record.Implicit
	bare     bool      // tree: directory created as a parent where the layer had removed or replaced something: 0755 root:root, not implicit
	opaque   bool      // tree: the layer hides this directory's lower contents
	whiteout bool      // tree: the layer deletes this path from the layers below
	hidden   bool      // tree: the layer replaced or removed something here (lower contents hidden)
	link     bool      // tree: the path is a Record.Links name (the layer's file, not in the tree)
}

func nextComp(rel string) (comp, rest string) {
	if i := strings.IndexByte(rel, '/'); i >= 0 {
		return rel[:i], rel[i+1:]
	}
	return rel, ""
}

// get returns the node of rel ("" = n itself), or nil.
func (n *node) get(rel string) *node {
	for rel != "" && n != nil {
		var comp string
		comp, rel = nextComp(rel)
		n = n.kids[comp]
	}
	return n
}

// ensure returns the node of rel, creating it and its ancestors.
func (n *node) ensure(rel string) *node {
	for rel != "" {
		var comp string
		comp, rel = nextComp(rel)
		k := n.kids[comp]
		if k == nil {
			if n.kids == nil {
				n.kids = make(map[string]*node)
			}
			k = &node{}
			n.kids[comp] = k
		}
		n = k
	}
	return n
}

// cut forgets rel and everything below it.
func (n *node) cut(rel string) {
	dir, base := split(rel)
	if p := n.get(dir); p != nil {
		delete(p.kids, base)
	}
}

// anyHidden reports whether the layer hid lower contents at rel or at one of its ancestors.
func (n *node) anyHidden(rel string) bool {
	for n != nil {
		if n.hidden {
			return true
		}
		if rel == "" {
			return false
		}
		var comp string
		comp, rel = nextComp(rel)
		n = n.kids[comp]
	}
	return false
}

// postOrder calls fn for every node below n, children before their parent, siblings in name
// order (so that neighbours share a directory prefix).
func (n *node) postOrder(prefix string, fn func(rel string, k *node) error) error {
	names := make([]string, 0, len(n.kids))
	for name := range n.kids {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		k := n.kids[name]
		rel := join(prefix, name)
		if err := k.postOrder(rel, fn); err != nil {
			return err
		}
		if err := fn(rel, k); err != nil {
			return err
		}
	}
	return nil
}

// collect returns the record paths of the nodes for which keep is true, sorted.
func (n *node) collect(keep func(*node) bool) []string {
	var out []string
	if keep(n) {
		out = append(out, recordPath(""))
	}
	_ = n.postOrder("", func(rel string, k *node) error {
		if keep(k) {
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}
