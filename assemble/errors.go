package assemble

import (
	"errors"

	"github.com/rootsdev/roots/internal/disk"
)

var (
	// ErrExists reports a destination that already exists when replacing it was not asked for.
	// Its message reads "DEST exists"; the CLI names the flag that replaces it.
	ErrExists = errors.New("exists")

	// ErrUnsafePath reports a path in a Tree that is absolute, not clean, or climbs out with "..".
	ErrUnsafePath = errors.New("unsafe path")

	// ErrMountPoint reports a directory that a removal would have entered, but that is another
	// mount than its parent (a bind mount, a tmpfs, a chroot's /dev): roots never removes
	// anything on a filesystem it did not make.
	ErrMountPoint = disk.ErrMountPoint

	// ErrUpperNeedsLower reports an entry of an overlay upper directory that means something
	// only with the lower layers (a redirect_dir rename, a metacopy copy-up): it cannot be
	// written as a layer on its own.
	ErrUpperNeedsLower = errors.New("overlay upper entry needs the lower layers")
)

// errFinished reports a use of an Assembly after Finish or Close.
var errFinished = errors.New("assembly already finished")
