// Package disk holds the filesystem primitives that cas, cas/layer, assemble and roots share,
// each written once: reading a directory by descriptor, removing a tree without following a
// symlink or entering another mount, making renames and whole trees durable, telling a
// whiteout device and an overlay mount.
//
// roots runs on Linux only: this package, and so every package of roots, builds on Linux alone.
package disk
