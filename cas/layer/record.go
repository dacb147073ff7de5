//go:build linux

package layer

// Record is what a tree cannot hold itself; cas stores it as trees/sha256/<hex>.json. Paths are
// slash-separated, relative and clean, with no leading "/"; the root directory is ".".
//
// Assembly applies one layer onto the layers below it in this order, which is what makes it
// equal to an Applier:
//
// Every path below resolves its parents against the rootfs the lower layers left: a symlink on
// the way is followed inside the rootfs, as if it were "/" (an absolute target starts at its
// root, ".." stops there; a loop or more than 40 links is an error); the last component is
// never followed.
//
//  1. Links, held: take hold of each Target's file as the lower layers left it (a missing
//     Target, a directory, or one behind a non-directory is an error), e.g. by hardlinking it
//     under a private name.
//  2. Whiteouts: remove each path (file, symlink or whole subtree). A missing path, or one
//     whose parent is missing or not a directory, is no error: there is nothing to remove.
//  3. Opaque: remove everything below each directory; the directory itself stays, with its
//     metadata. A missing path or a non-directory is left alone.
//  4. Links, placed: make each Name, in order, a hardlink of its held file, replacing whatever
//     is there. A missing parent of Name, or a non-directory other than a symlink in its
//     place, becomes a new directory, 0755 root:root; an existing directory is walked through.
//  5. The tree's entries, parents first: each replaces whatever is at its path (a directory
//     replaces a non-directory; a non-directory replaces a directory and its subtree), except
//     that a directory meeting a directory keeps it, and a directory in Implicit meeting a
//     symlink follows it: its entries go where the link leads (after the tree's other
//     entries). Directories in Implicit get no metadata
//     of their own: an existing directory keeps its owner, mode and mtime; a missing one is
//     made 0755 root:root (as the tree holds it). When the tree was unpacked as root it also
//     holds the whiteouts as 0/0 character devices and the opaque directories'
//     trusted.overlay.opaque xattr, so that it is a valid overlayfs lowerdir: skip those (take
//     whiteouts and opaque directories from the Record, never from device numbers or xattrs).
//
// Directory metadata is applied last, children before parents, the topmost layer whose tree has
// the directory and does not list it in Implicit winning. The root "." follows the same rule:
// it is in Implicit unless the layer has an entry for it ("./", "/", "."), whose owner, mode,
// mtime and xattrs are then the tree root's (layer.md: both directories, "the existing path's
// attributes MUST be replaced"). When no layer names the root, the destination's root is 0755
// and keeps its owner.
//
// What the order relies on, and Unpack guarantees:
//   - A whiteout applies to the layers below only. A whiteout of a path the layer also writes,
//     before or after, in any order, is no Whiteout: of a non-directory it is moot; of a
//     directory (an entry, a parent of entries or of Links) it hides the lower contents and
//     keeps the layer's, so the directory is in Opaque. A Whiteout's path holds nothing in the
//     tree but, as root, the whiteout device; no path is both a Whiteout and Opaque.
//   - A directory the layer makes where it had removed or replaced something of its own (its
//     whiteout, a file, a symlink, a directory, a Link) is a new directory: in Opaque, and not
//     in Implicit (the tree holds it 0755 root:root when it has no entry of its own).
//   - Inside an opaque directory nothing of the lower layers shows, metadata included (as in
//     overlayfs): a lower directory that the layer only walks through there (a parent of its
//     entries or Links) is a new one, 0755 root:root — which steps 3 to 5 give, as step 3
//     leaves nothing below an opaque directory for steps 4 and 5 to keep.
//   - Each Link's Name holds nothing in the tree, its parents are directories of the tree,
//     and no two Links have the same Name: a Link that a later entry of the layer replaced is
//     left out. A hardlink to the name of one of the layer's own Links is a Link to its Target.
type Record struct {
	Whiteouts []string    `json:"whiteouts,omitempty"` // paths this layer deletes from the layers below (from .wh.NAME)
	Opaque    []string    `json:"opaque,omitempty"`    // directories whose lower contents this layer hides (.wh..wh..opq, a whiteout of a directory the layer has, or a path the layer removed or replaced and then made a directory)
	Implicit  []string    `json:"implicit,omitempty"`  // directories that exist in the tree only as parents of entries (not new ones, see above); "." unless the layer has an entry for the root
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
// "owner UID:GID", "char device MAJOR:MINOR", "block device MAJOR:MINOR", "xattr NAME", or
// "mode MODE" (octal; the root directory without root, which keeps rwx for its owner so that
// the tree stays writable and readable). One is not about privilege: "xattr NAME: not supported
// on a KIND" (KIND "symlink", "fifo", "char device" or "block device") is a user.* attribute,
// which Linux allows on regular files and directories only, even to root.
type Unapplied struct {
	Path string `json:"path"`
	What string `json:"what"`
}
