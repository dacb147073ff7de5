// Package layer turns one OCI layer — a tar stream, possibly compressed — into files on disk.
//
// It exists because a layer is untrusted input that roots writes as root: every entry name,
// link target and whiteout is confined to the target directory, and nothing is ever created,
// modified, deleted, chmod'ed, chown'ed or linked outside it, whatever the tar says.
//
// Two ways to use a layer:
//
//   - [Unpack] writes one layer as a tree (a changeset) in the cache; what the tree cannot hold
//     itself goes to a [Record]. Assembly (package assemble) later stacks trees into a rootfs.
//   - [Applier] applies layers bottom to top directly onto one rootfs (roots pull --cache=no).
//
// Both give the same rootfs: Unpack of every layer followed by assembly equals Applier.
//
// Confinement follows containerd: an entry name or hardlink target is cleaned as "/"+name, so
// "../x", "/x" and "a/../../x" all name "x" inside the target directory. All writes are made
// relative to directory file descriptors opened component by component with O_NOFOLLOW, so a
// symlink — from this layer or a lower one — is never followed while writing. A parent component
// that is a symlink or any other non-directory is replaced by a directory (as an overlayfs upper
// directory hides a lower symlink), never written through. This is a choice: tar, containerd's
// applier and umoci resolve such a parent inside the root (bin/new over bin -> usr/bin lands in
// usr/bin/new), but a tree is unpacked once, on its own, and must mean the same whatever it is
// stacked on, as an overlayfs layer does (docker's overlay2 driver gives roots' result). For the
// same reason a hardlink target is never resolved through a symlink: a target whose path goes
// through one is missing ([ErrLinkTargetMissing]).
package layer
