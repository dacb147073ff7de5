package layer

// Record is what a tree cannot hold itself; cas stores it as trees/sha256/<hex>.json. Paths are
// slash-separated, relative and clean, with no leading "/"; the root directory is ".".
//
// Assembly applies one layer onto the layers below it in this order, which is what makes it
// equal to an Applier:
//
//  1. Links: hardlink Name to the existing Target (both confined, no symlink followed; a
//     missing or non-directory parent of Name is replaced by a directory like an implicit
//     one; a missing Target or a directory Target is an error).
//  2. Whiteouts: remove each path (file, symlink or whole subtree). A missing path, or one
//     whose parent is missing or not a directory, is no error: there is nothing to remove.
//  3. Opaque: remove everything below each directory, except the Names of step 1 and the
//     directories on the way to them (whose other contents go).
//  4. The tree's entries, parents first: each replaces whatever is at its path (a directory
//     replaces a non-directory; a non-directory replaces a directory and its subtree), except
//     that a directory meeting a directory keeps it. Directories in Implicit get no metadata
//     of their own: an existing directory keeps its owner, mode and mtime; a missing one is
//     made 0755 root:root. Directory metadata is applied last, the topmost layer that has an
//     explicit entry winning. When the tree was unpacked as root it also holds the whiteouts
//     as 0/0 character devices and the opaque directories' trusted.overlay.opaque xattr, so
//     that it is a valid overlayfs lowerdir: skip those (take whiteouts and opaque
//     directories from the Record, never from device numbers or xattrs).
type Record struct {
	Whiteouts []string    `json:"whiteouts,omitempty"` // paths this layer deletes from the layers below (from .wh.NAME)
	Opaque    []string    `json:"opaque,omitempty"`    // directories whose lower contents this layer hides (.wh..wh..opq, or a path the layer replaced and then made a directory)
	Implicit  []string    `json:"implicit,omitempty"`  // directories that exist in the tree only as parents of entries
	Links     []Link      `json:"links,omitempty"`     // hardlinks whose target is not in this layer, in archive order
	Unapplied []Unapplied `json:"unapplied,omitempty"` // non-root: owners, devices and xattrs the unpack could not apply
	Size      int64       `json:"size"`                // bytes of regular-file content
	Files     int         `json:"files"`               // number of entries (markers included)
}

// Link is a hardlink to a file of a lower layer: assembly links Name to Target.
type Link struct {
	Name   string `json:"name"`
	Target string `json:"target"`
}

// Unapplied is something an unpack could not apply, typically without root: What is
// "owner UID:GID", "char device MAJOR:MINOR", "block device MAJOR:MINOR" or "xattr NAME".
type Unapplied struct {
	Path string `json:"path"`
	What string `json:"what"`
}
