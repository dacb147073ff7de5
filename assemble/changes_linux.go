package assemble

// Finding what changed in a root filesystem: the change set that, written as one layer (see
// cas/layer.Export) and put on top of the base image, gives the root filesystem back.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	caslayer "github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/internal/disk"
)

// ChangeOptions says how Changes tells a changed entry.
type ChangeOptions struct {
	// Hardlinked: dest was hardlink-assembled from the same trees as base, so a non-directory
	// that is the same inode (st_dev and st_ino) in both at the same path is unchanged, without
	// comparing anything else or opening it. A write through such a shared inode (content,
	// mode, owner, xattrs) changes base too and is not seen: the caller checks the trees'
	// fingerprints for that.
	Hardlinked bool
	// Checksum: regular files whose quick-check attributes (type, mode, owner, size, mtime,
	// xattrs) are equal are compared by content too, as rsync --checksum does.
	Checksum bool
	// Exclude: names at the root of dest and base that are never part of the change set (".git"
	// for a git destination). Names below the root are not excluded.
	Exclude []string
	// Only, if not nil, holds the only paths where an entry that both dest and base have may
	// differ, with every directory above them: any other entry they both have is taken as
	// equal, without a stat, and a directory not in Only is not read. Entries that one side
	// has and the other has not are found as always, in the directories that are read.
	Only map[string]bool
}

// Changes compares the root filesystem dest with base, a directory holding the base image's
// root filesystem, and returns the changes that turn base into dest, sorted as
// cas/layer.Export writes them.
//
// A path in dest and not in base is a Write (a new directory with everything below it); a path
// in base and not in dest is a Delete, but when a directory of both has lost every one of its
// two or more entries it is one Opaque instead. A path in both is a Write when its type
// differs (a new directory with everything below it), or when its mode (setuid, setgid and
// sticky included), owner or extended attributes (overlayfs' own left out) differ, and for a
// non-directory its mtime (to the nanosecond), a regular file's size, a symlink's target or a
// device's numbers (see ChangeOptions for Hardlinked and Checksum). A directory's Write is its
// own entry: its children are compared on their own. A regular file written that has other
// names in dest has them all written (Export makes them one inode again). And, as docker
// commit does, every directory above a change is written too, the root "." included, so that
// an applier that touched them while applying the layer (an entry replaced in a directory
// changes its mtime) gives them their metadata back.
//
// Both trees are walked by directory descriptors, never following a symlink: one statx of each
// entry, a listxattr where types agree, and one getdents per directory; a file is opened only
// for Checksum. Another mount below dest or base (a bind mount, /proc) fails with
// ErrMountPoint naming it. A socket is reported like any entry (Export skips it).
func Changes(ctx context.Context, dest, base string, opts ChangeOptions) ([]caslayer.Change, error) {
	d := &differ{opts: opts, buf: make([]byte, disk.BufSize), set: map[string]caslayer.ChangeKind{}}
	if err := d.run(ctx, dest, base); err != nil {
		return nil, fmt.Errorf("changes of %s against %s: %w", dest, base, err)
	}
	return d.result(), nil
}

// differ walks dest and base side by side.
type differ struct {
	opts       ChangeOptions
	buf        []byte // getdents
	dmnt, bmnt entryStat
	set        map[string]caslayer.ChangeKind
	// Regular files of dest with several names: each inode's paths, and the inodes written.
	names   map[fileID][]string
	written []fileID
	// Content comparison buffers (Checksum).
	cbuf [2][]byte
}

func (d *differ) run(ctx context.Context, dest, base string) error {
	dfd, err := unix.Open(dest, disk.DirFlags&^unix.O_NOFOLLOW, 0)
	if err != nil {
		return pathErr("open", dest, err)
	}
	defer unix.Close(dfd)
	bfd, err := unix.Open(base, disk.DirFlags&^unix.O_NOFOLLOW, 0)
	if err != nil {
		return pathErr("open", base, err)
	}
	defer unix.Close(bfd)
	if d.dmnt, err = statEntry(dfd, ""); err != nil {
		return pathErr("stat", dest, err)
	}
	if d.bmnt, err = statEntry(bfd, ""); err != nil {
		return pathErr("stat", base, err)
	}
	same, err := d.sameDir(dfd, bfd, ".", ".", &d.dmnt, &d.bmnt)
	if err != nil {
		return err
	}
	if !same {
		d.add(".", caslayer.Write)
	}
	return d.dir(ctx, dfd, bfd, ".")
}

// result is the change set: the paths found, the other names of the files written, and every
// directory above them, sorted.
func (d *differ) result() []caslayer.Change {
	for _, id := range d.written {
		for _, p := range d.names[id] {
			d.add(p, caslayer.Write)
		}
	}
	paths := make([]string, 0, len(d.set))
	for p := range d.set {
		paths = append(paths, p)
	}
	for _, p := range paths {
		for dir := p; dir != "."; {
			if i := strings.LastIndexByte(dir, '/'); i >= 0 {
				dir = dir[:i]
			} else {
				dir = "."
			}
			if _, ok := d.set[dir]; ok {
				break // and so are its parents
			}
			d.set[dir] = caslayer.Write
		}
	}
	changes := make([]caslayer.Change, 0, len(d.set))
	for p, k := range d.set {
		changes = append(changes, caslayer.Change{Path: p, Kind: k})
	}
	caslayer.SortChanges(changes)
	return changes
}

// add puts a change in the set; an Opaque is not made a mere Write again.
func (d *differ) add(p string, k caslayer.ChangeKind) {
	if old, ok := d.set[p]; ok && old == caslayer.Opaque {
		return
	}
	d.set[p] = k
}

// write adds a Write of the dest entry at p, and notes a regular file's other names.
func (d *differ) write(p string, st *entryStat) {
	d.add(p, caslayer.Write)
	if st.isReg() && st.nlink > 1 {
		d.written = append(d.written, fileID{dev: st.dev, ino: st.ino})
	}
}

// note remembers the names of dest's regular files that have several.
func (d *differ) note(p string, st *entryStat) {
	if !st.isReg() || st.nlink < 2 {
		return
	}
	if d.names == nil {
		d.names = map[fileID][]string{}
	}
	id := fileID{dev: st.dev, ino: st.ino}
	d.names[id] = append(d.names[id], p)
}

// dir compares the directories dfd (dest) and bfd (base), both at rel.
func (d *differ) dir(ctx context.Context, dfd, bfd int, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dents, err := disk.ReadDir(dfd, d.buf)
	if err != nil {
		return pathErr("read", rel, err)
	}
	bents, err := disk.ReadDir(bfd, d.buf)
	if err != nil {
		return pathErr("read base", rel, err)
	}
	if rel == "." && len(d.opts.Exclude) > 0 {
		excluded := func(e disk.Dirent) bool { return slices.Contains(d.opts.Exclude, e.Name) }
		dents = slices.DeleteFunc(dents, excluded)
		bents = slices.DeleteFunc(bents, excluded)
	}
	inBase := make(map[string]bool, len(bents))
	for _, e := range bents {
		inBase[e.Name] = true
	}
	kept := 0
	for _, e := range dents {
		crel := joinPath(rel, e.Name)
		if d.opts.Only != nil && inBase[e.Name] && !d.opts.Only[crel] {
			kept++ // the caller vouches that it is the same in both
			continue
		}
		dst, err := d.stat(dfd, e.Name, crel, &d.dmnt)
		if err != nil {
			return err
		}
		if !inBase[e.Name] {
			if err := d.addTree(ctx, dfd, e.Name, crel, &dst); err != nil {
				return err
			}
			continue
		}
		kept++
		bst, err := d.stat(bfd, e.Name, crel, &d.bmnt)
		if err != nil {
			return err
		}
		if err := d.entry(ctx, dfd, bfd, e.Name, crel, &dst, &bst); err != nil {
			return err
		}
	}
	if kept == 0 && len(bents) > 1 {
		// Every entry of base's directory is gone: one opaque marker says it.
		d.add(rel, caslayer.Opaque)
		return nil
	}
	inDest := make(map[string]bool, len(dents))
	for _, e := range dents {
		inDest[e.Name] = true
	}
	for _, e := range bents {
		if !inDest[e.Name] {
			d.add(joinPath(rel, e.Name), caslayer.Delete)
		}
	}
	return nil
}

// entry compares name, which both directories hold (dest's dfd, base's bfd), at rel.
func (d *differ) entry(ctx context.Context, dfd, bfd int, name, rel string, dst, bst *entryStat) error {
	if dst.typ() != bst.typ() {
		return d.addTree(ctx, dfd, name, rel, dst)
	}
	if dst.typ() != unix.S_IFDIR {
		same, err := d.sameFile(dfd, bfd, name, rel, dst, bst)
		if err != nil {
			return err
		}
		d.note(rel, dst)
		if !same {
			d.write(rel, dst)
		}
		return nil
	}
	same, err := d.sameDir(dfd, bfd, name, rel, dst, bst)
	if err != nil {
		return err
	}
	if !same {
		d.add(rel, caslayer.Write)
	}
	cdfd, err := disk.OpenDir(dfd, name)
	if err != nil {
		return pathErr("open", rel, err)
	}
	defer unix.Close(cdfd)
	cbfd, err := disk.OpenDir(bfd, name)
	if err != nil {
		return pathErr("open base", rel, err)
	}
	defer unix.Close(cbfd)
	return d.dir(ctx, cdfd, cbfd, rel)
}

// addTree adds a Write of the dest entry name of dfd (at rel) and, for a directory, of
// everything below it.
func (d *differ) addTree(ctx context.Context, dfd int, name, rel string, st *entryStat) error {
	d.note(rel, st)
	d.write(rel, st)
	if st.typ() != unix.S_IFDIR {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, err := disk.OpenDir(dfd, name)
	if err != nil {
		return pathErr("open", rel, err)
	}
	defer unix.Close(fd)
	ents, err := disk.ReadDir(fd, d.buf)
	if err != nil {
		return pathErr("read", rel, err)
	}
	for _, e := range ents {
		crel := joinPath(rel, e.Name)
		cst, err := d.stat(fd, e.Name, crel, &d.dmnt)
		if err != nil {
			return err
		}
		if err := d.addTree(ctx, fd, e.Name, crel, &cst); err != nil {
			return err
		}
	}
	return nil
}

// stat reads name in dirfd (at rel), which must be on the mount of root.
func (d *differ) stat(dirfd int, name, rel string, root *entryStat) (entryStat, error) {
	st, err := statEntry(dirfd, name)
	if err != nil {
		return st, pathErr("stat", rel, err)
	}
	if !st.sameMount(root) {
		return st, fmt.Errorf("%s: %w", rel, ErrMountPoint)
	}
	return st, nil
}

// sameFile compares two non-directories of the same type.
func (d *differ) sameFile(dfd, bfd int, name, rel string, dst, bst *entryStat) (bool, error) {
	if dst.dev == bst.dev && dst.ino == bst.ino && d.opts.Hardlinked {
		return true, nil
	}
	if dst.mode != bst.mode || dst.uid != bst.uid || dst.gid != bst.gid || dst.mtime != bst.mtime {
		return false, nil
	}
	switch dst.typ() {
	case unix.S_IFREG:
		if dst.size != bst.size {
			return false, nil
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if dst.rdev != bst.rdev {
			return false, nil
		}
	case unix.S_IFLNK:
		dt, err := readlinkat(dfd, name)
		if err != nil {
			return false, pathErr("readlink", rel, err)
		}
		bt, err := readlinkat(bfd, name)
		if err != nil {
			return false, pathErr("readlink base", rel, err)
		}
		if dt != bt {
			return false, nil
		}
	}
	same, err := sameXattrsAt(dfd, bfd, name, rel)
	if err != nil || !same {
		return false, err
	}
	if d.opts.Checksum && dst.isReg() && (dst.dev != bst.dev || dst.ino != bst.ino) {
		return d.sameContent(dfd, bfd, name, rel)
	}
	return true, nil
}

// sameDir compares the metadata of two directories: mode, owner, mtime and xattrs.
func (d *differ) sameDir(dfd, bfd int, name, rel string, dst, bst *entryStat) (bool, error) {
	if dst.mode != bst.mode || dst.uid != bst.uid || dst.gid != bst.gid || dst.mtime != bst.mtime {
		return false, nil
	}
	return sameXattrsAt(dfd, bfd, name, rel)
}

// sameXattrsAt compares the extended attributes of name in dfd and in bfd, overlayfs' own left
// out.
func sameXattrsAt(dfd, bfd int, name, rel string) (bool, error) {
	dx, err := linkXattrs(disk.ProcPath(dfd, name))
	if err != nil {
		return false, pathErr("xattrs", rel, err)
	}
	bx, err := linkXattrs(disk.ProcPath(bfd, name))
	if err != nil {
		return false, pathErr("xattrs base", rel, err)
	}
	if len(dx) != len(bx) {
		return false, nil
	}
	for _, x := range dx {
		i := slices.IndexFunc(bx, func(y xattr) bool { return y.name == x.name })
		if i < 0 || !bytes.Equal(bx[i].value, x.value) {
			return false, nil
		}
	}
	return true, nil
}

// sameContent compares the contents of two regular files of the same size.
func (d *differ) sameContent(dfd, bfd int, name, rel string) (bool, error) {
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	df, err := unix.Openat(dfd, name, flags, 0)
	if err != nil {
		return false, pathErr("open", rel, err)
	}
	defer unix.Close(df)
	bf, err := unix.Openat(bfd, name, flags, 0)
	if err != nil {
		return false, pathErr("open base", rel, err)
	}
	defer unix.Close(bf)
	if d.cbuf[0] == nil {
		d.cbuf = [2][]byte{make([]byte, copyBufSize), make([]byte, copyBufSize)}
	}
	for {
		n, err := disk.ReadFull(df, d.cbuf[0])
		if err != nil {
			return false, pathErr("read", rel, err)
		}
		m, err := disk.ReadFull(bf, d.cbuf[1])
		if err != nil {
			return false, pathErr("read base", rel, err)
		}
		if n != m || !bytes.Equal(d.cbuf[0][:n], d.cbuf[1][:m]) {
			return false, nil
		}
		if n < len(d.cbuf[0]) {
			return true, nil
		}
	}
}

// entryStat is what Changes compares of an entry, from one statx.
type entryStat struct {
	mode       uint32 // type and permission bits
	uid, gid   uint32
	nlink      uint32
	size       int64
	mtime      unix.StatxTimestamp
	dev, ino   uint64
	rdev       uint64
	mnt        uint64 // mount id; 0 when the kernel does not say (then dev tells mounts apart)
	hasMountID bool
}

func (s *entryStat) typ() uint32 { return s.mode & unix.S_IFMT }
func (s *entryStat) isReg() bool { return s.typ() == unix.S_IFREG }

// sameMount reports whether s is on the mount of root.
func (s *entryStat) sameMount(root *entryStat) bool {
	if s.hasMountID && root.hasMountID {
		return s.mnt == root.mnt
	}
	return s.dev == root.dev
}

// statEntry reads name in dirfd ("": dirfd itself) without following a symlink.
func statEntry(dirfd int, name string) (entryStat, error) {
	flags := unix.AT_SYMLINK_NOFOLLOW | unix.AT_STATX_SYNC_AS_STAT
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	var sx unix.Statx_t
	for {
		err := unix.Statx(dirfd, name, flags, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &sx)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return entryStat{}, err
		}
		break
	}
	return entryStat{
		mode:       uint32(sx.Mode),
		uid:        sx.Uid,
		gid:        sx.Gid,
		nlink:      sx.Nlink,
		size:       int64(sx.Size),
		mtime:      sx.Mtime,
		dev:        unix.Mkdev(sx.Dev_major, sx.Dev_minor),
		ino:        sx.Ino,
		rdev:       unix.Mkdev(sx.Rdev_major, sx.Rdev_minor),
		mnt:        sx.Mnt_id,
		hasMountID: sx.Mask&unix.STATX_MNT_ID != 0,
	}, nil
}
