package cas

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// fingerprint sums what a write through a hardlinked destination changes in a
// tree: the inode number, type and mode, owner, size and mtime of every
// non-directory, in name order. Directories are never shared with a
// destination (assembly makes its own), and ctimes and link counts change
// whenever a destination links or unlinks a file, so neither counts.
//
// Checking it costs one fstatat per entry, no reads: a few milliseconds per
// thousand files, against a re-unpack that reads and writes every byte. A
// write that keeps both the size and the mtime (a deliberate `touch -r`) goes
// unseen; `roots check` does no better, by design: the blob is what a tree can
// be compared with, and re-unpacking is what check does when in doubt.
func fingerprint(ctx context.Context, dir string) (string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: dir, Err: err}
	}
	h := sha256.New()
	if err := sumDir(ctx, h, fd, ""); err != nil {
		return "", err
	}
	return "v1:" + hex.EncodeToString(h.Sum(nil)), nil
}

// sumDir adds the entries below the directory fd (at rel) to h, and closes fd.
func sumDir(ctx context.Context, h hash.Hash, fd int, rel string) error {
	if err := ctx.Err(); err != nil {
		unix.Close(fd)
		return err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	slices.Sort(names)
	var line []byte
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "stat", Path: rel + name, Err: err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "open", Path: rel + name, Err: err}
			}
			if err := sumDir(ctx, h, cfd, rel+name+"/"); err != nil {
				return err
			}
			continue
		}
		line = append(line[:0], rel...)
		line = append(line, name...)
		line = append(line, 0)
		for _, n := range []uint64{st.Ino, uint64(st.Mode), uint64(st.Uid), uint64(st.Gid), uint64(st.Size), uint64(st.Mtim.Sec), uint64(st.Mtim.Nsec)} {
			line = strconv.AppendUint(line, n, 16)
			line = append(line, ' ')
		}
		line[len(line)-1] = '\n'
		h.Write(line)
	}
	return nil
}
