package assemble

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames old to new, failing with EEXIST if new exists. File systems without
// RENAME_NOREPLACE get a check followed by rename(2).
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if _, lerr := os.Lstat(new); lerr == nil {
			return &os.LinkError{Op: "rename", Old: old, New: new, Err: unix.EEXIST}
		}
		return os.Rename(old, new)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	return nil
}

// exchange swaps old and new atomically (RENAME_EXCHANGE). File systems without it get two
// renames through a third name, with a short window in which new does not exist.
func exchange(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_EXCHANGE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		if err != nil {
			return &os.LinkError{Op: "exchange", Old: old, New: new, Err: err}
		}
		return nil
	}
	aside := old + ".old"
	if err := os.Rename(new, aside); err != nil {
		return err
	}
	if err := os.Rename(old, new); err != nil {
		if rerr := os.Rename(aside, new); rerr != nil {
			return fmt.Errorf("%w (and restoring %s from %s: %v)", err, new, aside, rerr)
		}
		return err
	}
	return os.Rename(aside, old)
}

// hold takes a non-blocking exclusive flock on the directory dir, kept until release is called
// or the process ends.
func hold(dir string) (release func(), err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}
