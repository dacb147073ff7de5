package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Outputs are not deleted between runs but moved aside, and deleted when
// every run is over. On ext4 without a journal (this machine's root
// filesystem) the inode allocator skips every inode deleted in the last
// 60 s (360 s when its inode table block is dirty) and tests each one on
// the way: a tree of 16 000 files made where one was just removed costs
// twice the system time (perf: recently_deleted, find_inode_bit). Deleting
// before every run would charge that to whichever row's files happen to
// land in those groups.

// trash is where outputs go until the end of the benchmark.
type trash struct {
	dir  string
	seq  atomic.Int64
	keep bool        // false: delete at once (not enough free space to keep them)
	full atomic.Bool // the filesystem ran low during the run: deleting at once from now on
}

// keepFree is the free space below which outputs are deleted at once rather than kept: more
// than the largest row writes in one run (skopeo + umoci on the big image, about 3 GB), so a
// run that keeps outputs never fills the disk.
const keepFree = 16 << 30

// keepInodes is the number of free inodes below which outputs are deleted at once: a run of
// every row on the many image makes about 2 million, and a filesystem with few inodes left
// allocates them slowly (ext4 searches its groups for a free one), which would charge the
// late rows for the early ones.
const keepInodes = 6 << 20

// keeping reports whether an output can go to the trash: there is room to keep it.
func (t *trash) keeping() bool {
	if !t.keep || t.full.Load() {
		return false
	}
	var st unix.Statfs_t
	if err := unix.Statfs(t.dir, &st); err == nil && (st.Bavail*uint64(st.Bsize) < keepFree || st.Ffree < keepInodes) {
		t.full.Store(true)
		return false
	}
	return true
}

func newTrash(work string, minFree uint64) (*trash, error) {
	t := &trash{dir: filepath.Join(work, "trash"), keep: true}
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(work, &st); err == nil && st.Bavail*uint64(st.Bsize) < minFree {
		t.keep = false
	}
	return t, nil
}

// fresh makes way for dir: unmounts anything under it, moves it to the
// trash (or removes it) and leaves its parent in place.
func (b *bench) fresh(dir string) error {
	unmountUnder(dir)
	if _, err := os.Lstat(dir); err == nil {
		if b.trash.keeping() {
			aside := filepath.Join(b.trash.dir, fmt.Sprint(b.trash.seq.Add(1)))
			if err := os.Rename(dir, aside); err != nil {
				return fmt.Errorf("move %s aside: %w", dir, err)
			}
		} else if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Dir(dir), 0o755)
}

// empty deletes what the trash holds.
func (t *trash) empty() error {
	unmountUnder(t.dir)
	if err := os.RemoveAll(t.dir); err != nil {
		return err
	}
	return os.MkdirAll(t.dir, 0o755)
}

// spreadDirs asks ext4 to place dir's subdirectories as it places top-level
// ones (chattr +T: Orlov's allocator picks a roomy block group rather than
// the parent's), away from the groups an earlier benchmark just emptied.
// Best effort: other filesystems ignore or refuse it.
func spreadDirs(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return
	}
	unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsTopdirFL))
}

// fsTopdirFL is FS_TOPDIR_FL of linux/fs.h.
const fsTopdirFL = 0x00020000
