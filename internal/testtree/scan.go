package testtree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Entry is one file of a tree as the tests compare it. A scan fills every field; an expected
// entry sets only the ones its test compares (see Aspect).
type Entry struct {
	Type     string      // "f", "d", "l", "c", "b", "p", "s", "?"
	Mode     fs.FileMode // permission bits with setuid, setgid and sticky; 0 for a symlink
	UID, GID int
	Size     int64  // regular files
	Hash     string // regular files: HashBytes of the content
	Link     string // symlink target
	Rdev     string // devices: "major:minor"
	Mtime    int64  // ns since the epoch
	Xattrs   string // name="value" pairs, sorted, space-separated
	// Hardlinks: the paths of the scan that name this inode, sorted and "|"-joined, when
	// there are several; "" otherwise and for directories.
	Hardlinks string
	// What only the same file keeps (Aspect Identity).
	Ctime    int64
	Dev, Ino uint64
	Nlink    uint64
	Blocks   int64
}

func (e Entry) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v %d:%d", e.Type, e.Mode, e.UID, e.GID)
	switch e.Type {
	case "f":
		fmt.Fprintf(&b, " size=%d hash=%.20s", e.Size, e.Hash)
	case "l":
		fmt.Fprintf(&b, " -> %q", e.Link)
	case "c", "b":
		fmt.Fprintf(&b, " dev=%s", e.Rdev)
	}
	if e.Mtime != 0 {
		fmt.Fprintf(&b, " mtime=%s", nanoTime(e.Mtime))
	}
	if e.Xattrs != "" {
		fmt.Fprintf(&b, " xattrs={%s}", e.Xattrs)
	}
	if e.Hardlinks != "" {
		fmt.Fprintf(&b, " links=%s", e.Hardlinks)
	}
	return b.String()
}

// BigFile: regular files this large are hashed by their runs of non-zero bytes (read through
// SEEK_DATA and SEEK_HOLE), so that a sparse file of a GiB costs nothing to scan.
const BigFile = 8 << 20

// Option changes what Scan reads.
type Option func(*scanner)

// WithRoot includes root itself, as ".".
func WithRoot() Option { return func(s *scanner) { s.root = true } }

// Skip leaves out the entries whose slash path relative to root skip returns true for, with
// everything below them.
func Skip(skip func(rel string) bool) Option { return func(s *scanner) { s.skip = skip } }

// SkipXattrs leaves out the extended attributes whose names start with prefix (overlayfs
// bookkeeping, "trusted.overlay.", say).
func SkipXattrs(prefix string) Option {
	return func(s *scanner) { s.noXattrs = append(s.noXattrs, prefix) }
}

type scanner struct {
	root     bool
	skip     func(string) bool
	noXattrs []string
}

// Scan reads every entry below root, keyed by slash path relative to root. It walks through
// directory descriptors: it never follows a symlink, and paths may be of any length.
func Scan(t testing.TB, root string, opts ...Option) map[string]Entry {
	t.Helper()
	var s scanner
	for _, o := range opts {
		o(&s)
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("scan %s: %v", root, err)
	}
	defer unix.Close(fd)
	out := map[string]Entry{}
	if s.root {
		e, err := s.entryAt(fd, ".", "/proc/self/fd/"+strconv.Itoa(fd)+"/.")
		if err != nil {
			t.Fatalf("scan %s: %v", root, err)
		}
		out["."] = e
	}
	if err := s.dir(out, fd, ""); err != nil {
		t.Fatalf("scan %s: %v", root, err)
	}
	groupLinks(out)
	return out
}

// Stat reads the one entry p, without following it (Hardlinks stays empty).
func Stat(t testing.TB, p string) Entry {
	t.Helper()
	var s scanner
	e, err := s.entryAt(unix.AT_FDCWD, p, p)
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return e
}

// dir adds the entries below the directory fd, whose path is rel ("" for the root).
func (s *scanner) dir(out map[string]Entry, fd int, rel string) error {
	dup, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), rel)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("read %q: %w", rel, err)
	}
	for _, name := range names {
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		if s.skip != nil && s.skip(p) {
			continue
		}
		e, err := s.entryAt(fd, name, "/proc/self/fd/"+strconv.Itoa(fd)+"/"+name)
		if err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
		out[p] = e
		if e.Type != "d" {
			continue
		}
		cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %q: %w", p, err)
		}
		err = s.dir(out, cfd, p)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// entryAt reads name in the directory dirfd; path names the same entry for the calls that
// take no descriptor (xattrs).
func (s *scanner) entryAt(dirfd int, name, path string) (Entry, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return Entry{}, fmt.Errorf("stat: %w", err)
	}
	e := Entry{
		Mode:   OctalMode(st.Mode & 0o7777),
		UID:    int(st.Uid),
		GID:    int(st.Gid),
		Mtime:  st.Mtim.Nano(),
		Ctime:  st.Ctim.Nano(),
		Dev:    st.Dev,
		Ino:    st.Ino,
		Nlink:  uint64(st.Nlink),
		Blocks: st.Blocks,
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type, e.Size = "f", st.Size
		e.Hash, err = hashAt(dirfd, name, st.Size)
	case unix.S_IFDIR:
		e.Type = "d"
	case unix.S_IFLNK:
		e.Type, e.Mode = "l", 0
		buf := make([]byte, unix.PathMax)
		n, rerr := unix.Readlinkat(dirfd, name, buf)
		e.Link, err = string(buf[:max(n, 0)]), rerr
	case unix.S_IFCHR:
		e.Type, e.Rdev = "c", fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		e.Type, e.Rdev = "b", fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		e.Type = "p"
	case unix.S_IFSOCK:
		e.Type = "s"
	default:
		e.Type = "?"
	}
	if err != nil {
		return e, err
	}
	e.Xattrs, err = s.xattrs(path)
	return e, err
}

// xattrs lists the extended attributes of p (not followed) as sorted name="value" pairs.
func (s *scanner) xattrs(p string) (string, error) {
	m, err := readXattrs(p, s.noXattrs)
	if err != nil {
		return "", err
	}
	var pairs []string
	for name, v := range m {
		pairs = append(pairs, fmt.Sprintf("%s=%q", name, v))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, " "), nil
}

// XattrMap reads the extended attributes of p, not following a symlink.
func XattrMap(t testing.TB, p string) map[string]string {
	t.Helper()
	m, err := readXattrs(p, nil)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return m
}

// readXattrs reads the extended attributes of p (not followed) but those whose names start
// with one of skip.
func readXattrs(p string, skip []string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err == unix.ENOTSUP {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listxattr: %w", err)
	}
	m := map[string]string{}
names:
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		for _, prefix := range skip {
			if strings.HasPrefix(name, prefix) {
				continue names
			}
		}
		v := make([]byte, 64<<10)
		n, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s: %w", name, err)
		}
		m[name] = string(v[:n])
	}
	return m, nil
}

// groupLinks sets Hardlinks on every non-directory whose inode has other names in m.
func groupLinks(m map[string]Entry) {
	byInode := map[[2]uint64][]string{}
	for p, e := range m {
		if e.Type != "d" {
			k := [2]uint64{e.Dev, e.Ino}
			byInode[k] = append(byInode[k], p)
		}
	}
	for _, paths := range byInode {
		if len(paths) < 2 {
			continue
		}
		sort.Strings(paths)
		group := strings.Join(paths, "|")
		for _, p := range paths {
			e := m[p]
			e.Hardlinks = group
			m[p] = e
		}
	}
}

// hashAt hashes the regular file name in dirfd; see BigFile.
func hashAt(dirfd int, name string, size int64) (string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if size < BigFile {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return "", fmt.Errorf("read: %w", err)
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	var r runs
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // a hole to the end
		}
		if err != nil {
			return "", fmt.Errorf("seek: %w", err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return "", fmt.Errorf("seek: %w", err)
		}
		for o := data; o < hole; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), hole-o)], o)
			if n > 0 {
				r.feed(o, buf[:n])
				o += int64(n)
			}
			if err != nil && err != io.EOF {
				return "", fmt.Errorf("read: %w", err)
			}
			if n == 0 {
				break
			}
		}
		off = hole
	}
	return r.sum(size), nil
}
