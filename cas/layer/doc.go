//go:build linux

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
// The other way, [Export] writes a layer from a directory: the [Change]s that turn a base image
// into it (package assemble finds them), read through the same confined descriptors, in one
// deterministic tar that Unpack and Applier take back as it was written.
//
// Confinement follows containerd: an entry name or hardlink target is cleaned as "/"+name, so
// "../x", "/x" and "a/../../x" all name "x" inside the target directory. All writes are made
// relative to directory file descriptors opened component by component with O_NOFOLLOW, so
// nothing is ever written through a symlink by the kernel's own resolution.
//
// Symlinked parents resolve inside the rootfs. Every path a layer names — an entry's parents,
// a hardlink target's parents, a whiteout's and an opaque marker's directory — resolves against
// the rootfs as the layers below and the earlier entries of the same layer left it, following
// symlinks as if the rootfs were "/": an absolute target starts at the rootfs's root, ".."
// stops there, and a loop or a chain of more than 40 links is ErrSymlinkLoop. So lib/x over a
// merged-/usr base (lib -> usr/lib) lands in usr/lib/x, and an absolute link /tmp/x used as a
// parent means ROOTFS/tmp/x, never the host's. The last component is never followed: an entry
// replaces whatever is at its own path, and a directory entry over a symlink replaces the link.
// A parent that is a non-directory other than a symlink is replaced by a directory. This is
// what GNU tar extracting the layer onto the rootfs, umoci unpack and containerd's applier
// (fs.RootPath) do. Docker's overlay2 driver differs: it unpacks each layer on its own and
// stacks them with overlayfs, so there a layer's directory hides a lower symlink (lib/ holding
// one file), which breaks merged-/usr images.
//
// A tree is unpacked once, on its own, and must mean the same whatever it is stacked on, so
// Unpack follows only the layer's own symlinks (an entry below one lands in the tree where it
// leads); a parent the tree holds as a plain directory is resolved against the layers below at
// assembly (package assemble), as the Applier resolves it directly. Where a same-layer link's
// target climbs with ".." out of a directory that the layer has only as a parent, the tree
// resolves the ".." by name; the Applier by the rootfs's real directories.
//
// A whiteout or opaque marker below a symlink or file that the same layer made is moot (umoci
// writes a type change as the new symlink plus a whiteout below it): the new entry stays.
// Whiteouts apply to the lower layers only.
//
// AUFS metadata that Docker's aufs driver left at a layer's root (.wh..wh.aufs, .wh..wh.orph/,
// .wh..wh.plnk/) never reaches a tree or rootfs; regular files under .wh..wh.plnk/ serve as the
// targets of the layer's hardlinks that name them, as in Docker's applier.
package layer
