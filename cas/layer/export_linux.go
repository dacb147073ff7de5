package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/internal/disk"
)

// Exported is what Export wrote.
type Exported struct {
	Entries int      // tar entries (whiteouts and opaque markers included, PAX headers not)
	Files   int      // regular files written with their content (hardlinks to them not)
	Bytes   int64    // bytes of regular-file content
	Skipped []string // paths of Writes that a tar cannot hold (sockets): not written
}

// Export writes to w an uncompressed OCI image layer (a tar stream, end-of-archive included)
// that holds changes, each Write and Opaque entry read from the directory root.
//
// The entries come in SortChanges order, whatever the order of changes, and the same changes
// of the same files give the same bytes: owners are numeric (no user or group names), there
// are no access or change times, and each header is ustar unless a value needs PAX (a
// sub-second or out-of-range mtime, an owner id, size or name that ustar cannot hold,
// extended attributes), so that nothing is ever rounded. Extended attributes are PAX
// "SCHILY.xattr." records, security.capability included, overlayfs' own (trusted.overlay.*,
// user.overlay.*) left out. A directory's name ends in "/", the root's is "./".
//
// A Delete is a whiteout "DIR/.wh.NAME"; an Opaque is the directory's entry followed by
// "DIR/.wh..wh..opq" (both empty regular files, mode 0, mtime the epoch). Regular files that
// are one inode (st_dev and st_ino) under several Written paths are written once, at the first
// path, and as hardlinks to it at the others; a file whose other names are not in changes is a
// plain file. A socket is not written but listed in Exported.Skipped.
//
// Every path is opened from root's descriptor one component at a time without following a
// symlink: a path below a symlink in root fails (it is never followed out of root), and only
// regular files are ever opened (O_NOFOLLOW). A file whose size, type or inode changes while
// it is read fails with ErrSourceChanged. Export writes nothing for root itself but a Write or
// Opaque of ".".
func Export(ctx context.Context, w io.Writer, root string, changes []Change) (Exported, error) {
	sorted := slices.Clone(changes)
	for _, c := range sorted {
		if err := checkChange(c); err != nil {
			return Exported{}, fmt.Errorf("export %s: %w", root, err)
		}
	}
	SortChanges(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Path == sorted[i-1].Path {
			return Exported{}, fmt.Errorf("export %s: %s twice: %w", root, display(sorted[i].Path), ErrInvalidChange)
		}
	}
	e, err := newExporter(root, w)
	if err != nil {
		return Exported{}, fmt.Errorf("export: %w", err)
	}
	defer e.close()
	for _, c := range sorted {
		if err := ctx.Err(); err != nil {
			return e.out, err
		}
		if err := e.change(ctx, c); err != nil {
			return e.out, fmt.Errorf("export %s: %s: %w", root, display(c.Path), err)
		}
	}
	if err := e.tw.Close(); err != nil {
		return e.out, fmt.Errorf("export %s: %w", root, err)
	}
	return e.out, nil
}

// exporter writes the entries of Export.
type exporter struct {
	root  int    // O_PATH descriptor of the source root
	look  walker // parents of the paths, never following a symlink
	tw    *tar.Writer
	buf   *[]byte
	links map[fileKey]string // the first path written of each inode with several names
	out   Exported
}

type fileKey struct{ dev, ino uint64 }

func newExporter(root string, w io.Writer) (*exporter, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	return &exporter{
		root:  fd,
		look:  walker{root: fd},
		tw:    tar.NewWriter(w),
		buf:   bufPool.Get().(*[]byte),
		links: map[fileKey]string{},
	}, nil
}

func (e *exporter) close() {
	e.look.reset()
	unix.Close(e.root)
	bufPool.Put(e.buf)
}

// epoch is the mtime of whiteouts and opaque markers.
var epoch = time.Unix(0, 0)

// change writes the entries of one change.
func (e *exporter) change(ctx context.Context, c Change) error {
	if c.Path == "." {
		if err := e.entry(ctx, e.root, ".", ".", c.Kind == Opaque); err != nil {
			return err
		}
		if c.Kind == Opaque {
			return e.marker(opaqueMarker)
		}
		return nil
	}
	dir, name := split(c.Path)
	if c.Kind == Delete {
		return e.marker(join(dir, whiteoutPrefix+name))
	}
	dirfd, owned, err := e.look.dir(dir)
	if err != nil {
		return fmt.Errorf("parent %s: %w", display(recordPath(dir)), err)
	}
	if owned {
		defer unix.Close(dirfd)
	}
	if err := e.entry(ctx, dirfd, name, c.Path, c.Kind == Opaque); err != nil {
		return err
	}
	if c.Kind == Opaque {
		return e.marker(c.Path + "/" + opaqueMarker)
	}
	return nil
}

// marker writes a whiteout or opaque marker.
func (e *exporter) marker(name string) error {
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, ModTime: epoch, Format: tar.FormatPAX}
	if err := e.tw.WriteHeader(hdr); err != nil {
		return err
	}
	e.out.Entries++
	return nil
}

// entry writes the entry name of the directory dirfd, at rel. mustDir: it must be a directory
// (an Opaque).
func (e *exporter) entry(ctx context.Context, dirfd int, name, rel string, mustDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "stat", Path: rel, Err: err}
	}
	typ := st.Mode & unix.S_IFMT
	if mustDir && typ != unix.S_IFDIR {
		return fmt.Errorf("opaque but not a directory: %w", ErrInvalidChange)
	}
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
	switch typ {
	case unix.S_IFREG:
		return e.file(ctx, dirfd, name, &st, hdr)
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if rel == "." {
			hdr.Name = "./"
		} else {
			hdr.Name = rel + "/"
		}
	case unix.S_IFLNK:
		target, err := readlinkat(dirfd, name)
		if err != nil {
			return &os.PathError{Op: "readlink", Path: rel, Err: err}
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if typ == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		e.out.Skipped = append(e.out.Skipped, rel)
		return nil
	default:
		return fmt.Errorf("file type %#o: %w", typ, ErrUnsupportedEntry)
	}
	p := disk.ProcPath(dirfd, name)
	if err := e.xattrs(hdr, func(b []byte) (int, error) { return unix.Llistxattr(p, b) },
		func(n string, b []byte) (int, error) { return unix.Lgetxattr(p, n, b) }); err != nil {
		return fmt.Errorf("xattrs: %w", err)
	}
	if err := e.tw.WriteHeader(hdr); err != nil {
		return err
	}
	e.out.Entries++
	return nil
}

// file writes a regular file, whose lstat is st: the first name of an inode as the file, a
// later one as a hardlink to it.
func (e *exporter) file(ctx context.Context, dirfd int, name string, st *unix.Stat_t, hdr *tar.Header) error {
	key := fileKey{dev: st.Dev, ino: st.Ino}
	if st.Nlink > 1 {
		if first, ok := e.links[key]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			if err := e.tw.WriteHeader(hdr); err != nil {
				return err
			}
			e.out.Entries++
			return nil
		}
	}
	// O_NONBLOCK: should a FIFO take the file's place meanwhile, the open must not hang.
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: hdr.Name, Err: err}
	}
	defer unix.Close(fd)
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil {
		return &os.PathError{Op: "stat", Path: hdr.Name, Err: err}
	}
	if fst.Mode&unix.S_IFMT != unix.S_IFREG || fst.Dev != st.Dev || fst.Ino != st.Ino {
		return fmt.Errorf("replaced while read: %w", ErrSourceChanged)
	}
	// The metadata of the file opened, which the content read is checked against.
	hdr.Mode, hdr.Uid, hdr.Gid = int64(fst.Mode&0o7777), int(fst.Uid), int(fst.Gid)
	hdr.ModTime = time.Unix(fst.Mtim.Unix())
	hdr.Typeflag, hdr.Size = tar.TypeReg, fst.Size
	if err := e.xattrs(hdr, func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) }); err != nil {
		return fmt.Errorf("xattrs: %w", err)
	}
	if err := e.tw.WriteHeader(hdr); err != nil {
		return err
	}
	e.out.Entries++
	if err := e.content(ctx, fd, fst.Size); err != nil {
		return err
	}
	var after unix.Stat_t
	if err := unix.Fstat(fd, &after); err != nil {
		return &os.PathError{Op: "stat", Path: hdr.Name, Err: err}
	}
	if after.Size != fst.Size || after.Mtim != fst.Mtim || after.Ctim != fst.Ctim {
		return fmt.Errorf("written while read: %w", ErrSourceChanged)
	}
	if st.Nlink > 1 {
		e.links[key] = hdr.Name
	}
	e.out.Files++
	e.out.Bytes += fst.Size
	return nil
}

// content copies exactly size bytes of fd into the tar, and checks that the file ends there.
func (e *exporter) content(ctx context.Context, fd int, size int64) error {
	buf := *e.buf
	for left := size; left > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := disk.ReadFull(fd, buf[:min(int64(len(buf)), left)])
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("%d bytes short of its size %d: %w", left, size, ErrSourceChanged)
		}
		if _, err := e.tw.Write(buf[:n]); err != nil {
			return err
		}
		left -= int64(n)
	}
	n, err := disk.ReadFull(fd, buf[:1])
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("longer than its size %d: %w", size, ErrSourceChanged)
	}
	return nil
}

// xattrs adds the extended attributes that list and get read to hdr, as PAX records; the
// overlayfs ones are left out (see headerMeta).
func (e *exporter) xattrs(hdr *tar.Header, list func([]byte) (int, error), get func(string, []byte) (int, error)) error {
	names, err := xattrSized(list)
	if errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for _, name := range strings.Split(string(names), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		v, err := xattrSized(func(b []byte) (int, error) { return get(name, b) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("get %s: %w", name, err)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattr+name] = string(v)
	}
	return nil
}

// xattrSized calls a listxattr or getxattr style function for the size, then for the bytes,
// again when the value grew between the two.
func xattrSized(call func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := call(nil)
		if err != nil || n == 0 {
			return nil, err
		}
		b := make([]byte, n)
		n, err = call(b)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, err
		}
		return b[:n], nil
	}
}
