package assemble

import (
	"errors"
	"github.com/rootsdev/roots/internal/disk"

	"golang.org/x/sys/unix"
)

// fileID identifies an inode, to keep hardlink groups together when files are copied.
type fileID struct{ dev, ino uint64 }

// copyBufSize is the buffer for copies done with read(2) and write(2).
const copyBufSize = 256 << 10

// copyEntry copies the non-directory sname of the directory sfd to dname in the destination
// directory dfd (at rel, node n), replacing whatever is there, and keeps its owner, mode, times
// and xattrs. typ is its DT_ type, or DT_UNKNOWN. A file that has other names in the same tree
// becomes a hardlink of the first copy made of it.
func (a *assembler) copyEntry(sfd int, sname string, dfd int, dname string, typ uint8, rel string, n *node) error {
	if typ == unix.DT_REG {
		return a.copyRegular(sfd, sname, dfd, dname, rel, n)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, sname, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathErr("stat", joinPath(rel, dname), err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		return a.copyRegular(sfd, sname, dfd, dname, rel, n)
	}
	if err := a.copySpecial(sfd, sname, dfd, dname, &st, n); err != nil {
		return pathErr("copy", joinPath(rel, dname), err)
	}
	return nil
}

// copySpecial copies a symlink, device, fifo or socket described by st.
func (a *assembler) copySpecial(sfd int, sname string, dfd int, dname string, st *unix.Stat_t, n *node) error {
	var create func() error
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		target, err := readlinkat(sfd, sname)
		if err != nil {
			return err
		}
		create = func() error { return unix.Symlinkat(target, dfd, dname) }
	} else {
		create = func() error { return unix.Mknodat(dfd, dname, st.Mode, int(st.Rdev)) }
	}
	err := create()
	if errors.Is(err, unix.EEXIST) {
		if err = a.clear(dfd, dname, n); err == nil {
			err = create()
		}
	}
	if err != nil {
		return err
	}
	if err := unix.Fchownat(dfd, dname, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil && !a.unprivileged(err) {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// Just made by mknod, so not a symlink: following is harmless, and mknod's mode was umasked.
		if err := unix.Fchmodat(dfd, dname, st.Mode&0o7777, 0); err != nil {
			return err
		}
	}
	xs, err := linkXattrs(disk.ProcPath(sfd, sname))
	if err != nil {
		return err
	}
	dst := disk.ProcPath(dfd, dname)
	if err := a.setXattrs(xs, func(name string, v []byte) error { return unix.Lsetxattr(dst, name, v, 0) }); err != nil {
		return err
	}
	return unix.UtimesNanoAt(dfd, dname, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// copyRegular copies a regular file: reflink if the file system can, else copy_file_range, else
// read and write.
func (a *assembler) copyRegular(sfd int, sname string, dfd int, dname, rel string, n *node) error {
	path := joinPath(rel, dname)
	src, err := unix.Openat(sfd, sname, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathErr("open", path, err)
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return pathErr("stat", path, err)
	}
	id := fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	if st.Nlink > 1 {
		// The names of one inode become one copy and links to it: walkers that meet them
		// take turns, so the first copy is made, and recorded, once.
		a.copyMu.Lock()
		defer a.copyMu.Unlock()
		if done, err := a.linkCopy(id, dfd, dname, n); done || err != nil {
			return err
		}
	}

	create := func() (int, error) {
		return unix.Openat(dfd, dname, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	}
	dst, err := create()
	if errors.Is(err, unix.EEXIST) {
		if err = a.clear(dfd, dname, n); err == nil {
			dst, err = create()
		}
	}
	if err != nil {
		return pathErr("create", path, err)
	}
	err = a.fillCopy(dst, src, &st)
	if cerr := unix.Close(dst); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.UtimesNanoAt(dfd, dname, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return pathErr("copy", path, err)
	}
	if st.Nlink > 1 {
		if a.copies == nil {
			a.copies = make(map[fileID]string)
		}
		a.copies[id] = path
	}
	return nil
}

// fillCopy gives the new file dst the data, owner, mode and xattrs of src.
func (a *assembler) fillCopy(dst, src int, st *unix.Stat_t) error {
	if err := a.copyData(dst, src, st); err != nil {
		return err
	}
	if err := unix.Fchown(dst, int(st.Uid), int(st.Gid)); err != nil && !a.unprivileged(err) {
		return err
	}
	if err := unix.Fchmod(dst, st.Mode&0o7777); err != nil {
		return err
	}
	xs, err := fdXattrs(src)
	if err != nil {
		return err
	}
	return a.setXattrs(xs, func(name string, v []byte) error { return unix.Fsetxattr(dst, name, v, 0) })
}

// linkCopy links dname to the copy already made of the inode id, if there is one. It reports
// false when the file still has to be copied.
func (a *assembler) linkCopy(id fileID, dfd int, dname string, n *node) (bool, error) {
	first, ok := a.copies[id]
	if !ok {
		return false, nil
	}
	parts := splitPath(first)
	pfd, err := openPath(a.root, parts[:len(parts)-1])
	if absent(err) {
		return false, nil
	}
	if err != nil {
		return true, pathErr("open", first, err)
	}
	defer unix.Close(pfd)
	name := parts[len(parts)-1]
	err = unix.Linkat(pfd, name, dfd, dname, 0)
	if errors.Is(err, unix.EEXIST) {
		if err = a.clear(dfd, dname, n); err == nil {
			err = unix.Linkat(pfd, name, dfd, dname, 0)
		}
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EMLINK), errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return true, pathErr("link", first, err)
}

// copyData copies the data of src (whose stat is st) to the empty file dst: a reflink when the
// file system can, else copy_file_range (read and write where it cannot). A file with holes
// keeps them: only its data ranges are copied (SEEK_DATA, SEEK_HOLE), and dst is extended to the
// size, so that a huge sparse file costs what its data costs.
func (a *assembler) copyData(dst, src int, st *unix.Stat_t) error {
	size := st.Size
	if size == 0 {
		return nil
	}
	if unix.IoctlFileClone(dst, src) == nil {
		return nil
	}
	if st.Blocks*512 >= size {
		return a.copyRange(dst, src, 0, size)
	}
	for off := int64(0); off < size; {
		data, err := unix.Seek(src, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return err
		}
		hole, err := unix.Seek(src, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if err := a.copyRange(dst, src, data, min(hole, size)-data); err != nil {
			return err
		}
		off = hole
	}
	return unix.Ftruncate(dst, size)
}

// copyRange copies n bytes at off from src to the same offset of dst (fewer if src ends first).
func (a *assembler) copyRange(dst, src int, off, n int64) error {
	for end := off + n; off < end; {
		in, out := off, off
		m, err := unix.CopyFileRange(src, &in, dst, &out, int(min(end-off, 1<<30)), 0)
		switch {
		case err == unix.EINTR:
			continue
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
			return a.readWrite(dst, src, off, end)
		case err != nil:
			return err
		case m == 0:
			return nil
		}
		off += int64(m)
	}
	return nil
}

// readWrite copies the bytes of src from off to end to the same offsets of dst with pread(2) and
// pwrite(2).
func (a *assembler) readWrite(dst, src int, off, end int64) error {
	if a.copyBuf == nil {
		a.copyBuf = make([]byte, copyBufSize)
	}
	for off < end {
		n, err := unix.Pread(src, a.copyBuf[:min(int64(len(a.copyBuf)), end-off)], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		for b := a.copyBuf[:n]; len(b) > 0; {
			w, err := unix.Pwrite(dst, b, off)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			b, off = b[w:], off+int64(w)
		}
	}
	return nil
}

// readlinkat reads the target of the symlink name in dirfd, whatever its length.
func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// unprivileged reports whether err is a permission error that an assembly without root has to
// live with (owners, trusted.* xattrs): such metadata is kept only by root.
func (a *assembler) unprivileged(err error) bool {
	return a.euid != 0 && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES))
}
