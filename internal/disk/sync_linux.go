package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// SyncDir makes the renames, creations and removals in the directory dir durable.
func SyncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", filepath.Clean(dir), err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("sync %s: %w", filepath.Clean(dir), err)
	}
	return nil
}

// Syncfs flushes the filesystem that holds the directory dir: one call for a whole tree instead
// of an fsync per file.
func Syncfs(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", filepath.Clean(dir), err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", filepath.Clean(dir), err)
	}
	return nil
}

// WriteBehind is a writer to the file f that starts the writeback of every `every` bytes it
// has written (sync_file_range SYNC_FILE_RANGE_WRITE: a hint that does not wait), so that a
// later Syncfs finds little left to write: the disk works while the CPU still unpacks.
type WriteBehind struct {
	F     *os.File
	Every int64
	n     int64 // bytes written
	since int64 // bytes written since the last writeback started
}

func (w *WriteBehind) Write(p []byte) (int, error) {
	n, err := w.F.Write(p)
	w.n += int64(n)
	w.since += int64(n)
	if w.since >= w.Every {
		StartWriteback(int(w.F.Fd()), w.n-w.since, w.since)
		w.since = 0
	}
	return n, err
}

// StartWriteback starts writing back n bytes of the file fd from off (n 0: to its end) without
// waiting for it: a hint, whose failure does not matter (Syncfs makes the data durable).
func StartWriteback(fd int, off, n int64) {
	unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}
