//go:build !linux

package disk

// roots runs on Linux only: it builds trees with *at system calls on directory descriptors,
// mounts overlayfs and reads statx mount ids. This makes any other GOOS fail with one clear error.
var _ = roots_runs_on_linux_only
