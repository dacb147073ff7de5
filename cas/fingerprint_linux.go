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
	fp, _, err := fingerprintLinks(ctx, dir)
	return fp, err
}

// fingerprintLinks is fingerprint, and also reports whether a non-directory
// of dir has links outside dir: a link count higher than the number of its
// names in dir (a hardlinked destination, or a fix-up, shares it).
func fingerprintLinks(ctx context.Context, dir string) (fp string, outside bool, err error) {
	w, err := walkFingerprint(ctx, dir)
	if err != nil {
		return "", false, err
	}
	for ino, n := range w.names {
		if w.nlink[ino] > n {
			outside = true
			break
		}
	}
	return w.fp, outside, nil
}

// fpWalk is what one fingerprint walk found.
type fpWalk struct {
	fp    string
	names map[uint64]uint64 // inode → names in dir, for files with several links
	nlink map[uint64]uint64 // inode → link count, same files
	// shared counts the non-directories that are not whiteouts (0:0
	// character devices): what a fix-up may share with trees.
	shared int
}

// walkFingerprint walks dir once for fingerprint and fingerprintLinks.
func walkFingerprint(ctx context.Context, dir string) (*fpWalk, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	h := sha256.New()
	w := &fpWalk{names: map[uint64]uint64{}, nlink: map[uint64]uint64{}}
	if err := w.sumDir(ctx, h, fd, ""); err != nil {
		return nil, err
	}
	w.fp = "v1:" + hex.EncodeToString(h.Sum(nil))
	return w, nil
}

// sumDir adds the entries below the directory fd (at rel) to h, and closes fd.
func (w *fpWalk) sumDir(ctx context.Context, h hash.Hash, fd int, rel string) error {
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
			if err := w.sumDir(ctx, h, cfd, rel+name+"/"); err != nil {
				return err
			}
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			w.shared++
		}
		if st.Nlink > 1 {
			w.names[st.Ino]++
			w.nlink[st.Ino] = uint64(st.Nlink)
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
