package cas

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUntrusted reports a cache that another user could have written: roots would link its
// files into a rootfs, or mount its trees, as they are.
var ErrUntrusted = errors.New("cache not trusted")

// trustedEntries are the cache's top-level entries that checkTrust looks at.
var trustedEntries = []string{"blobs", "trees", "fixups", "linked", "images", "leases", "tmp", "roots.lock"}

// Trusted is the trust check that Open makes, for a reader that does not open the cache (a
// record read straight from images/): nil when root is trusted or does not exist yet.
func Trusted(root string) error {
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return checkTrust(root)
}

// checkTrust refuses a cache that the invoking user does not own alone, as ssh's StrictModes and
// git's safe.directory do: the cache directory (after its symlinks) and its top-level entries
// must belong to the user (root too: root uses no cache that another user made) and must not be
// writable by group or others; a top-level entry must not be a symlink.
func checkTrust(root string) error {
	euid := uint32(os.Geteuid())
	check := func(p string, follow bool) error {
		var st unix.Stat_t
		var err error
		if follow {
			err = unix.Stat(p, &st)
		} else {
			err = unix.Lstat(p, &st)
		}
		if errors.Is(err, unix.ENOENT) && !follow {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cache %s: %w", root, &os.PathError{Op: "stat", Path: p, Err: err})
		}
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			return fmt.Errorf("%w: %s is a symlink: remove it", ErrUntrusted, p)
		case st.Uid != euid:
			return fmt.Errorf("%w: %s belongs to uid %d, not to you (uid %d): use a cache of your own, or chown -R %d %s",
				ErrUntrusted, p, st.Uid, euid, euid, root)
		case st.Mode&0o022 != 0:
			return fmt.Errorf("%w: %s is writable by others (mode %04o): chmod go-w %s", ErrUntrusted, p, st.Mode&0o7777, p)
		}
		return nil
	}
	if err := check(root, true); err != nil {
		return err
	}
	for _, e := range trustedEntries {
		if err := check(filepath.Join(root, e), false); err != nil {
			return err
		}
	}
	return nil
}

// ownObject reports whether the tree or fix-up at dir is one this user's roots made: a real
// directory (never a symlink: any host directory would become a layer) whose record file is a
// regular file of this user. The directory's own owner is the image's (a layer's "./" entry).
func ownObject(dir string) bool {
	var d, r unix.Stat_t
	if unix.Lstat(dir, &d) != nil || d.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	if unix.Lstat(dir+".json", &r) != nil || r.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	return r.Uid == uint32(os.Geteuid())
}
