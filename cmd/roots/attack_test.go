package main

// TestAttacks pushes hostile layers to a real registry and pulls them with the
// built binary, with the cache (hardlink assembly) and without it
// (--cache=no). Every pull either fails cleanly or gives a confined tree that
// is checked exactly, and nothing outside DEST and the cache may change: a
// sentinel directory beside DEST and an absolute ("/tmp"-style) target
// directory are scanned before and after every pull (content, mode, owner,
// times, inode, link count, xattrs, existence).
//
// The package-level names of this file start with "atk"; those shared with
// fidelity_test.go too.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// ---------------------------------------------------------------------------
// Scanning: everything a file system entry is, for exact comparisons.

// atkState is one entry as the scans see it.
type atkState struct {
	Type     string // "f", "d", "l", "c", "b", "p"
	Mode     fs.FileMode
	UID, GID int
	Size     int64
	Hash     string // regular files: sha256 of the content (atkBigFile and over: of its non-zero runs)
	Link     string
	Rdev     string // "major:minor" of devices
	Xattrs   string
	Mtime    int64 // ns
	Ctime    int64 // ns
	Ino      uint64
	Nlink    uint64
	Blocks   int64
}

// atkBigFile: regular files this large are hashed by their non-zero runs
// (read through SEEK_DATA/SEEK_HOLE), so that a 1 GiB sparse file costs nothing.
const atkBigFile = 8 << 20

// atkScan reads every entry below root, keyed by slash path relative to root.
// skip returns true for (absolute) paths to leave out with everything below.
func atkScan(t testing.TB, root string, skip func(p string) bool) map[string]atkState {
	t.Helper()
	out := map[string]atkState{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && skip != nil && skip(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		s, err := atkStat(p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = s
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", root, err)
	}
	return out
}

// atkStat reads one entry without following it.
func atkStat(p string) (atkState, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return atkState{}, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	s := atkState{
		Mode:   fs.FileMode(st.Mode & 0o777),
		UID:    int(st.Uid),
		GID:    int(st.Gid),
		Mtime:  st.Mtim.Nano(),
		Ctime:  st.Ctim.Nano(),
		Ino:    st.Ino,
		Nlink:  uint64(st.Nlink),
		Blocks: st.Blocks,
	}
	if st.Mode&unix.S_ISUID != 0 {
		s.Mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		s.Mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		s.Mode |= fs.ModeSticky
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		s.Type, s.Size = "f", st.Size
		s.Hash, err = atkHashFile(p, st.Size)
	case unix.S_IFDIR:
		s.Type = "d"
	case unix.S_IFLNK:
		s.Type, s.Mode = "l", 0
		s.Link, err = os.Readlink(p)
	case unix.S_IFCHR, unix.S_IFBLK:
		s.Type = "c"
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			s.Type = "b"
		}
		s.Rdev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		s.Type = "p"
	default:
		s.Type = "?"
	}
	if err != nil {
		return s, err
	}
	s.Xattrs, err = atkXattrs(p)
	return s, err
}

// atkXattrs lists an entry's extended attributes as `name="value"` pairs, sorted.
func atkXattrs(p string) (string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err == unix.ENOTSUP {
		return "", nil
	}
	if err != nil {
		return "", &os.PathError{Op: "llistxattr", Path: p, Err: err}
	}
	var pairs []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			return "", &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		pairs = append(pairs, fmt.Sprintf("%s=%q", name, v[:m]))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, " "), nil
}

// atkHashFile hashes a regular file's content; see atkBigFile.
func atkHashFile(p string, size int64) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if size < atkBigFile {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	var rh atkRuns
	fd := int(f.Fd())
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // a hole to the end
		}
		if err != nil {
			return "", err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return "", err
		}
		for o := data; o < hole; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), hole-o)], o)
			if n > 0 {
				rh.feed(o, buf[:n])
				o += int64(n)
			}
			if err != nil && err != io.EOF {
				return "", err
			}
			if n == 0 {
				break
			}
		}
		off = hole
	}
	return rh.sum(size), nil
}

// atkRuns hashes a file by its maximal runs of non-zero bytes (offset, length,
// bytes): two files of the same size are equal exactly when their hashes are.
// feed must be called with increasing offsets.
type atkRuns struct {
	buf      bytes.Buffer // the current run
	start    int64        // its offset
	h        []string     // finished runs, hashed
	sumBytes int64
}

func (r *atkRuns) feed(off int64, b []byte) {
	if r.buf.Len() > 0 && off != r.start+int64(r.buf.Len()) {
		r.end()
	}
	for i := 0; i < len(b); {
		if b[i] == 0 {
			r.end()
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] != 0 {
			j++
		}
		if r.buf.Len() == 0 {
			r.start = off + int64(i)
		}
		r.buf.Write(b[i:j])
		i = j
	}
}

func (r *atkRuns) end() {
	if r.buf.Len() == 0 {
		return
	}
	s := sha256.Sum256(r.buf.Bytes())
	r.h = append(r.h, fmt.Sprintf("%d+%d:%x", r.start, r.buf.Len(), s[:8]))
	r.buf.Reset()
}

func (r *atkRuns) sum(size int64) string {
	r.end()
	s := sha256.Sum256([]byte(strings.Join(r.h, ",")))
	return fmt.Sprintf("runs:%d:%x", size, s[:12])
}

// atkFrag is a piece of data at an offset of a (sparse) file.
type atkFrag struct {
	Off  int64
	Data string
}

// atkSparseEntry is the expected entry of a regular file of size bytes that
// holds frags and zeros elsewhere.
func atkSparseEntry(mode fs.FileMode, size int64, frags ...atkFrag) entry {
	e := entry{Type: "f", Mode: mode, Size: size}
	if size < atkBigFile {
		b := make([]byte, size)
		for _, f := range frags {
			copy(b[f.Off:], f.Data)
		}
		s := sha256.Sum256(b)
		e.SHA256 = hex.EncodeToString(s[:])
		return e
	}
	sort.Slice(frags, func(i, j int) bool { return frags[i].Off < frags[j].Off })
	var rh atkRuns
	for _, f := range frags {
		rh.feed(f.Off, []byte(f.Data))
	}
	e.SHA256 = rh.sum(size)
	return e
}

// atkEntries turns a scan into the e2e entries that sameTree compares.
func atkEntries(m map[string]atkState) map[string]entry {
	out := make(map[string]entry, len(m))
	for p, s := range m {
		out[p] = entry{Type: s.Type, Mode: s.Mode, UID: s.UID, GID: s.GID, Size: s.Size, SHA256: s.Hash, Link: s.Link}
	}
	return out
}

// atkSameFS fails unless two rootfs scans agree on everything an image
// defines: type, mode, owner, content, link target, device numbers, xattrs,
// mtimes (of directories only when one side has a time set from the image,
// i.e. before since: an implicit directory's time is when it was made), and
// hardlink groups.
func atkSameFS(t testing.TB, what string, a, b map[string]atkState, since time.Time) {
	t.Helper()
	var diffs []string
	for p, x := range a {
		y, ok := b[p]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("only in the first: %s %s", p, atkShow(x)))
			continue
		}
		if x.Type == "d" && x.Mtime >= since.UnixNano() && y.Mtime >= since.UnixNano() {
			y.Mtime = x.Mtime
		}
		if atkShow(x) != atkShow(y) {
			diffs = append(diffs, fmt.Sprintf("%s:\n\t%s\n\t%s", p, atkShow(x), atkShow(y)))
		}
	}
	for p, y := range b {
		if _, ok := a[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("only in the second: %s %s", p, atkShow(y)))
		}
	}
	if ga, gb := atkLinkGroups(a), atkLinkGroups(b); ga != gb {
		diffs = append(diffs, fmt.Sprintf("hardlink groups differ:\n\t%s\n\t%s", ga, gb))
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%s differ:\n%s", what, strings.Join(diffs, "\n"))
	}
}

// atkShow is what atkSameFS compares.
func atkShow(s atkState) string {
	return fmt.Sprintf("%s %v %d:%d size=%d hash=%.20s link=%q dev=%s mtime=%s xattrs={%s}",
		s.Type, s.Mode, s.UID, s.GID, s.Size, s.Hash, s.Link, s.Rdev, time.Unix(0, s.Mtime).UTC().Format(time.RFC3339Nano), s.Xattrs)
}

// atkLinkGroups lists the sets of names that share an inode (hardlinks).
func atkLinkGroups(m map[string]atkState) string {
	byIno := map[uint64][]string{}
	for p, s := range m {
		if s.Type != "d" {
			byIno[s.Ino] = append(byIno[s.Ino], p)
		}
	}
	var groups []string
	for _, names := range byIno {
		if len(names) > 1 {
			sort.Strings(names)
			groups = append(groups, strings.Join(names, "="))
		}
	}
	sort.Strings(groups)
	return strings.Join(groups, " ")
}

// ---------------------------------------------------------------------------
// Expected trees.

// atkTree is an expected rootfs: sameTree entries, with parents added as
// implicit directories (0755 root:root).
type atkTree map[string]entry

func (w atkTree) parents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := w[d]; !ok {
			w[d] = dir(0o755)
		}
	}
}

func (w atkTree) add(p string, e entry) atkTree {
	w.parents(p)
	w[p] = e
	return w
}
func (w atkTree) f(p string, mode fs.FileMode, body string) atkTree {
	return w.add(p, file(mode, body))
}
func (w atkTree) d(p string, mode fs.FileMode) atkTree { return w.add(p, dir(mode)) }
func (w atkTree) l(p, target string) atkTree           { return w.add(p, link(target)) }

// atkMode turns the octal bits 0o4000, 0o2000, 0o1000 into Go's mode bits.
func atkMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// ---------------------------------------------------------------------------
// Hand-made tars and images.

// atkTar builds an uncompressed tar with archive/tar: add entries, raw
// blocks, and bytes after the end.
type atkTar struct {
	t   testing.TB
	buf bytes.Buffer
	tw  *tar.Writer
}

// atkZeroMode asks atkTar.add for mode 0000.
const atkZeroMode = 1 << 40

func atkNewTar(t testing.TB) *atkTar {
	a := &atkTar{t: t}
	a.tw = tar.NewWriter(&a.buf)
	return a
}

// add writes one entry. Zero mode means 0644 (0755 for directories, 0777 for
// symlinks; atkZeroMode is mode 0), zero time means registrytest.EntryTime.
func (a *atkTar) add(h tar.Header, body string) *atkTar {
	a.t.Helper()
	if h.Typeflag == tar.TypeXGlobalHeader {
		if err := a.tw.WriteHeader(&h); err != nil {
			a.t.Fatalf("tar global header: %v", err)
		}
		return a
	}
	if h.Typeflag == 0 {
		h.Typeflag = tar.TypeReg
	}
	if h.Mode == atkZeroMode {
		h.Mode = 0
	} else if h.Mode == 0 {
		switch h.Typeflag {
		case tar.TypeDir:
			h.Mode = 0o755
		case tar.TypeSymlink:
			h.Mode = 0o777
		default:
			h.Mode = 0o644
		}
	}
	if h.ModTime.IsZero() {
		h.ModTime = registrytest.EntryTime
	}
	if h.Typeflag == tar.TypeReg {
		h.Size = int64(len(body))
	}
	if err := a.tw.WriteHeader(&h); err != nil {
		a.t.Fatalf("tar header %q: %v", h.Name, err)
	}
	if body != "" {
		if _, err := a.tw.Write([]byte(body)); err != nil {
			a.t.Fatalf("tar body %q: %v", h.Name, err)
		}
	}
	return a
}

// raw appends blocks written by hand (a header and its padded data).
func (a *atkTar) raw(b []byte) *atkTar {
	a.t.Helper()
	if err := a.tw.Flush(); err != nil {
		a.t.Fatal(err)
	}
	a.buf.Write(b)
	return a
}

// bytes ends the archive (two zero blocks) and returns it.
func (a *atkTar) bytes() []byte {
	a.t.Helper()
	if err := a.tw.Close(); err != nil {
		a.t.Fatal(err)
	}
	return a.buf.Bytes()
}

// atkHeader encodes one ustar (gnu: old GNU) header block by hand, for what
// archive/tar will not write. fill may change the block before the checksum.
func atkHeader(name string, typ byte, mode, size int64, gnu bool, fill func(b []byte)) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], fmt.Sprintf("%07o\x00", mode))
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", registrytest.EntryTime.Unix()))
	b[156] = typ
	if gnu {
		copy(b[257:265], "ustar  \x00")
	} else {
		copy(b[257:265], "ustar\x0000")
	}
	if fill != nil {
		fill(b)
	}
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func atkPad(b []byte) []byte {
	if n := len(b) % 512; n != 0 {
		b = append(b, make([]byte, 512-n)...)
	}
	return b
}

// atkPAX is a raw PAX extended header ('x', or 'g' for a global one) with
// records in order, values written as given (NUL bytes too).
func atkPAX(typ byte, recs ...[2]string) []byte {
	var data []byte
	for _, kv := range recs {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		data = append(data, strconv.Itoa(n)+rec...)
	}
	return append(atkHeader("PaxHeader", typ, 0o644, int64(len(data)), false, nil), atkPad(data)...)
}

// atkPAXSparse is a GNU PAX 1.0 sparse file of realSize bytes holding frags.
func atkPAXSparse(name string, realSize int64, frags ...atkFrag) []byte {
	m := fmt.Sprintf("%d\n", len(frags))
	var data string
	for _, f := range frags {
		m += fmt.Sprintf("%d\n%d\n", f.Off, len(f.Data))
		data += f.Data
	}
	body := append(atkPad([]byte(m)), data...)
	out := atkPAX('x', [2]string{"GNU.sparse.major", "1"}, [2]string{"GNU.sparse.minor", "0"},
		[2]string{"GNU.sparse.name", name}, [2]string{"GNU.sparse.realsize", strconv.FormatInt(realSize, 10)})
	out = append(out, atkHeader("GNUSparseFile.0/"+path.Base(name), tar.TypeReg, 0o644, int64(len(body)), false, nil)...)
	return append(out, atkPad(body)...)
}

// atkPAXSparse01 is a GNU PAX 0.1 sparse file (the map in GNU.sparse.map).
func atkPAXSparse01(name string, realSize int64, frags ...atkFrag) []byte {
	var m []string
	var data string
	for _, f := range frags {
		m = append(m, strconv.FormatInt(f.Off, 10), strconv.Itoa(len(f.Data)))
		data += f.Data
	}
	out := atkPAX('x', [2]string{"GNU.sparse.size", strconv.FormatInt(realSize, 10)},
		[2]string{"GNU.sparse.numblocks", strconv.Itoa(len(frags))},
		[2]string{"GNU.sparse.map", strings.Join(m, ",")}, [2]string{"GNU.sparse.name", name})
	out = append(out, atkHeader("GNUSparseFile.0/"+path.Base(name), tar.TypeReg, 0o644, int64(len(data)), false, nil)...)
	return append(out, atkPad([]byte(data))...)
}

// atkGNUSparse is an old-GNU sparse file ('S'), at most four fragments.
func atkGNUSparse(name string, realSize int64, frags ...atkFrag) []byte {
	var data string
	for _, f := range frags {
		data += f.Data
	}
	h := atkHeader(name, tar.TypeGNUSparse, 0o644, int64(len(data)), true, func(b []byte) {
		for i, f := range frags {
			copy(b[386+i*24:], fmt.Sprintf("%011o\x00%011o\x00", f.Off, len(f.Data)))
		}
		copy(b[483:495], fmt.Sprintf("%011o\x00", realSize))
	})
	return append(h, atkPad([]byte(data))...)
}

// atkLayer is a layer blob as pushed: for images registrytest.Image cannot
// describe (media types that lie, multi-member gzip, ...).
type atkLayer struct {
	MediaType string
	Blob      []byte
	DiffID    digest.Digest
	Size      int64 // in the manifest; 0 = len(Blob)
}

// atkPush pushes an OCI image of layers to r (blobs, config, manifest) and
// returns it as registrytest describes pushed images.
func atkPush(t testing.TB, r *registrytest.Registry, repo, tag string, layers []atkLayer, diffIDs []digest.Digest) registrytest.Pushed {
	t.Helper()
	p := registrytest.Pushed{Blobs: map[digest.Digest][]byte{}}
	for i, l := range layers {
		d := r.PushBlob(t, repo, l.Blob)
		size := l.Size
		if size == 0 {
			size = int64(len(l.Blob))
		}
		p.Layers = append(p.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: d, Size: size})
		p.Blobs[d] = l.Blob
		if diffIDs == nil {
			p.DiffIDs = append(p.DiffIDs, l.DiffID)
		} else {
			p.DiffIDs = append(p.DiffIDs, diffIDs[i])
		}
	}
	cfg, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux", "created": registrytest.EntryTime, "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": p.DiffIDs},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Config = cfg
	cd := r.PushBlob(t, repo, cfg)
	p.MediaType = ocispec.MediaTypeImageManifest
	p.Manifest, err = json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: p.MediaType,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers:    p.Layers,
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Digest = r.PushRaw(t, repo, tag, p.MediaType, p.Manifest)
	return p
}

// atkCompress compresses raw as c, as registrytest does, and describes it as a layer.
func atkCompress(t testing.TB, raw []byte, c registrytest.Compression) atkLayer {
	t.Helper()
	blob, err := registrytest.Compress(raw, c)
	if err != nil {
		t.Fatal(err)
	}
	mt := ocispec.MediaTypeImageLayerGzip
	switch c {
	case registrytest.Zstd:
		mt = ocispec.MediaTypeImageLayerZstd
	case registrytest.Uncompressed:
		mt = ocispec.MediaTypeImageLayer
	}
	return atkLayer{MediaType: mt, Blob: blob, DiffID: digest.FromBytes(raw)}
}

// ---------------------------------------------------------------------------
// Running pulls.

// atkPull runs roots pull with args, interrupted after limit.
func atkPull(t testing.TB, limit time.Duration, args ...string) (res result, timedOut bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, rootsBin, append([]string{"pull"}, args...)...)
	// Interrupt, as a user would, so that roots may clean up; kill if it does not stop.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "ROOTS_TEST_BACKOFF=10ms"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		return result{out.String(), errb.String(), -1}, true
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}, false
}

// atkCacheClean checks that a cache after a failed pull holds nothing but
// allowed blobs and trees (those of other layers, the manifest and config),
// and only locks in tmp/.
func atkCacheClean(t testing.TB, cache string, blobs, trees map[string]bool) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(cache, "blobs", "sha256"))
	for _, e := range ents {
		if !blobs[e.Name()] {
			t.Errorf("the cache kept blob %s of the failed layer (or a stranger)", e.Name())
		}
	}
	ents, _ = os.ReadDir(filepath.Join(cache, "trees", "sha256"))
	for _, e := range ents {
		if !trees[strings.TrimSuffix(e.Name(), ".json")] {
			t.Errorf("the cache kept tree %s of the failed layer (or a stranger)", e.Name())
		}
	}
	atkTmpClean(t, cache)
}

// atkTmpClean checks that the cache's tmp/ holds only locks.
func atkTmpClean(t testing.TB, cache string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(cache, "tmp"))
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left in the cache's tmp/: %s", e.Name())
		}
	}
}

// atkCacheIntact checks that every blob in the cache still hashes to its name
// and that trees/ holds only digests: no layer wrote into the cache.
func atkCacheIntact(t testing.TB, cache string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(cache, "blobs", "sha256"))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(cache, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Errorf("cache blob %s: %v", e.Name(), err)
			continue
		}
		if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != e.Name() {
			t.Errorf("cache blob %s does not hash to its name", e.Name())
		}
	}
	ents, _ = os.ReadDir(filepath.Join(cache, "trees", "sha256"))
	for _, e := range ents {
		name := strings.TrimSuffix(e.Name(), ".json")
		if _, err := hex.DecodeString(name); err != nil || len(name) != 64 {
			t.Errorf("stranger in the cache's trees/: %s", e.Name())
		}
	}
}

// ---------------------------------------------------------------------------
// The sentinels.

// atkEnv is one case's directories:
//
//	Base/parent/                       DEST's parent (DESTs: rootfs-cache, rootfs-warm, rootfs-no)
//	Base/parent/outside/{secret, mode644, dir/inner}
//	Base/parent/outside-link -> outside, Base/parent/secret-link -> outside/secret
//	Base/abs/{file, dir/inner, link -> ../parent/outside/secret}
//	Base/cache/                        the cache (cache mode)
type atkEnv struct {
	Base, Parent, Out, Abs, Cache string
}

// rel is an absolute path as a confined entry name gives it inside DEST.
func (e atkEnv) rel(abs string) string { return strings.TrimPrefix(abs, "/") }

func atkNewEnv(t testing.TB, base string) atkEnv {
	t.Helper()
	e := atkEnv{Base: base, Parent: base + "/parent", Out: base + "/parent/outside", Abs: base + "/abs", Cache: base + "/cache"}
	for _, d := range []string{e.Parent, e.Out, e.Out + "/dir", e.Abs, e.Abs + "/dir", e.Cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		e.Out + "/secret": "secret", e.Out + "/mode644": "chmod me", e.Out + "/dir/inner": "inner",
		e.Abs + "/file": "abs file", e.Abs + "/dir/inner": "abs inner",
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		e.Parent + "/outside-link": "outside", e.Parent + "/secret-link": "outside/secret",
		e.Abs + "/link": "../parent/outside/secret",
	}
	for p, to := range links {
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	for _, p := range []string{e.Out + "/secret", e.Out + "/mode644", e.Out + "/dir/inner", e.Abs + "/file", e.Abs + "/dir/inner",
		e.Out + "/dir", e.Abs + "/dir", e.Out, e.Abs} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// scan is everything below Base but the cache and the given DESTs. DEST's
// parent itself changes (DEST is made in it): its times and link count are
// left out.
func (e atkEnv) scan(t testing.TB, dests ...string) map[string]atkState {
	t.Helper()
	m := atkScan(t, e.Base, func(p string) bool {
		if p == e.Cache {
			return true
		}
		for _, d := range dests {
			if p == d {
				return true
			}
		}
		return false
	})
	if s, ok := m["parent"]; ok {
		s.Mtime, s.Ctime, s.Nlink = 0, 0, 0
		m["parent"] = s
	}
	return m
}

// unchanged fails the test unless two sentinel scans are identical.
func atkUnchanged(t testing.TB, before, after map[string]atkState) {
	t.Helper()
	var diffs []string
	for p, b := range before {
		a, ok := after[p]
		if !ok {
			diffs = append(diffs, "removed: "+p)
		} else if a != b {
			diffs = append(diffs, fmt.Sprintf("changed: %s\n\tbefore %+v\n\tafter  %+v", p, b, a))
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("created: %s %+v", p, a))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("OUTSIDE DEST AND THE CACHE CHANGED:\n%s", strings.Join(diffs, "\n"))
	}
}

// ---------------------------------------------------------------------------
// The cases.

type atkCase struct {
	name string
	// layers builds the image's layers (pushed with registrytest), or push
	// pushes the image itself.
	layers func(e atkEnv) []registrytest.Layer
	push   func(t testing.TB, r *registrytest.Registry, repo string, e atkEnv) registrytest.Pushed
	// fault, if set, is put in front of the registry (a fault proxy).
	fault func(p registrytest.Pushed) registrytest.Fault
	// fail: the pull must fail with this in its error; otherwise want is the
	// exact rootfs (and check, if set, looks further).
	fail string
	// orFail: the pull may also fail cleanly with this in its error.
	orFail string
	bad    int // the hostile layer when fail is set; 0 means the last
	// treeOK: the failure comes from the layers below the hostile one (a
	// hardlink to a file they lack), so the hostile layer's blob and tree,
	// a valid changeset on their own, may stay in the cache.
	treeOK bool
	want   func(e atkEnv) atkTree
	check  func(t *testing.T, dest string, e atkEnv)
	limit  time.Duration // per pull; default 60s
}

// Shorthands for layers and entries.
func atkL(entries ...reg) registrytest.Layer {
	return registrytest.Layer{Entries: entries, Compression: registrytest.Gzip}
}
func atkRaw(raw []byte) registrytest.Layer {
	return registrytest.Layer{Raw: raw, Compression: registrytest.Gzip}
}
func atkF(name, body string) reg       { return reg{Name: name, Body: []byte(body)} }
func atkD(name string, mode int64) reg { return reg{Name: name, Type: tar.TypeDir, Mode: mode} }
func atkS(name, to string) reg         { return reg{Name: name, Type: tar.TypeSymlink, Linkname: to} }
func atkH(name, to string) reg         { return reg{Name: name, Type: tar.TypeLink, Linkname: to} }
func atkWh(name string) reg            { return reg{Name: name} }

func atkCases() []atkCase {
	const pwned = "pwned"
	return []atkCase{
		// Names.
		{name: "DotDotName", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("../outside/secret", pwned), atkF("../../escape", "x"), atkF("../../../../../../../../../x", "y"))}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.f("outside/secret", 0o644, pwned).f("escape", 0o644, "x").f("x", 0o644, "y")
		}},
		{name: "AbsoluteName", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF(e.Out+"/secret", pwned), atkF(e.Abs+"/file", pwned), atkF("/rootfile", "r"))}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.f(e.rel(e.Out)+"/secret", 0o644, pwned).f(e.rel(e.Abs)+"/file", 0o644, pwned).f("rootfile", 0o644, "r")
		}},
		{name: "DotDotInMiddle", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("a/../../outside/secret", pwned), atkF("a/b/../../../x", "x"), atkF("c/./d/../../../../outside/dir/inner", pwned))}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.f("outside/secret", 0o644, pwned).f("x", 0o644, "x").f("outside/dir/inner", 0o644, pwned)
		}},
		{name: "GNULongNameDotDot", layers: func(e atkEnv) []registrytest.Layer {
			name := strings.Repeat("../", 100) + "outside/pwned"
			return []registrytest.Layer{atkRaw(atkNewTar(atkMust()).add(tar.Header{Name: name, Format: tar.FormatGNU}, pwned).bytes())}
		}, want: func(e atkEnv) atkTree { return atkTree{}.f("outside/pwned", 0o644, pwned) }},
		{name: "NulInName", layers: func(e atkEnv) []registrytest.Layer {
			b := atkHeader("nul\x00/../../outside/pwned", tar.TypeReg, 0o644, 5, false, nil)
			b = append(b, atkPad([]byte(pwned))...)
			return []registrytest.Layer{atkRaw(append(b, make([]byte, 1024)...))}
		}, want: func(e atkEnv) atkTree { return atkTree{}.f("nul", 0o644, pwned) }},
		{name: "NulInPaxPath", layers: func(e atkEnv) []registrytest.Layer {
			b := atkPAX('x', [2]string{"path", "ok\x00/../../outside/pwned"})
			b = append(b, atkHeader("ok", tar.TypeReg, 0o644, 5, false, nil)...)
			b = append(b, atkPad([]byte(pwned))...)
			return []registrytest.Layer{atkRaw(append(b, make([]byte, 1024)...))}
		}, fail: "invalid tar header"},
		{name: "LongNameOverflow", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("a/"+strings.Repeat("x", 256), "x"))}
		}, fail: "longer than 255 bytes"},
		{name: "RootEntryModes", layers: func(e atkEnv) []registrytest.Layer {
			// Entries for the root itself, in any spelling: a directory's
			// metadata replaces the root's, the topmost winning (layer.md:
			// dir meets dir); any other type is ignored. Nothing is written
			// through "..", and DEST stays a plain directory.
			return []registrytest.Layer{
				atkL(reg{Name: "./", Type: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1000}, atkF("a", "a")),
				atkL(reg{Name: "/", Type: tar.TypeDir, Mode: 0o000}, reg{Name: "..", Type: tar.TypeSymlink, Linkname: e.Out},
					reg{Name: ".", Body: []byte("a file at the root")}, reg{Name: "../", Type: tar.TypeDir, Mode: 0o777}, atkF("b", "b")),
			}
		}, want: func(e atkEnv) atkTree { return atkTree{}.f("a", 0o644, "a").f("b", 0o644, "b") },
			check: func(t *testing.T, dest string, e atkEnv) {
				// "../", the top layer's last entry for the root, has 0777 root:root.
				s, err := atkStat(dest)
				if err != nil || s.Type != "d" || s.Mode != 0o777 || s.UID != 0 || s.GID != 0 || s.Xattrs != "" {
					t.Errorf("DEST itself: %+v, %v; want a plain 0777 root:root directory", s, err)
				}
			}},

		// Symlinked parents.
		{name: "SymlinkParentUpAndOut", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("up", "../outside"), atkF("up/secret", pwned),
				atkD("deep/", 0o755), atkS("deep/up", "../../outside"), atkF("deep/up/dir/inner", pwned))}
		}, want: func(e atkEnv) atkTree {
			// Followed inside DEST as if it were "/": ".." stops at DEST's root.
			return atkTree{}.l("up", "../outside").f("outside/secret", 0o644, pwned).d("deep", 0o755).
				l("deep/up", "../../outside").f("outside/dir/inner", 0o644, pwned)
		}},
		{name: "SymlinkParentAbsolute", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("abs", e.Abs), atkF("abs/file", pwned), atkF("abs/dir/new", pwned))}
		}, want: func(e atkEnv) atkTree {
			// An absolute link starts at DEST's root.
			return atkTree{}.l("abs", e.Abs).f(e.rel(e.Abs)+"/file", 0o644, pwned).f(e.rel(e.Abs)+"/dir/new", 0o644, pwned)
		}},
		{name: "SymlinkParentToSlash", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("root", "/")), atkL(atkF("root"+e.Abs+"/file", pwned))}
		}, want: func(e atkEnv) atkTree { return atkTree{}.l("root", "/").f(e.rel(e.Abs)+"/file", 0o644, pwned) }},
		{name: "SymlinkParentFromLowerLayer", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(atkS("up", "../outside"), atkS("abs", e.Abs), atkS("secret", "../outside/secret")),
				atkL(atkF("up/secret", pwned), atkF("abs/dir/inner", pwned)),
			}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.l("up", "../outside").f("outside/secret", 0o644, pwned).l("abs", e.Abs).
				f(e.rel(e.Abs)+"/dir/inner", 0o644, pwned).l("secret", "../outside/secret")
		}},
		{name: "SymlinkChainOut", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(atkS("a", "b"), atkS("b", "c"), atkS("c", "../outside"), atkS("d", "a/dir")),
				atkL(atkF("a/secret", pwned), atkF("d/inner", pwned)),
			}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.l("a", "b").l("b", "c").l("c", "../outside").l("d", "a/dir").
				f("outside/secret", 0o644, pwned).f("outside/dir/inner", 0o644, pwned)
		}},
		{name: "SymlinkLoopParent", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(atkS("loop", "loop"), atkS("l1", "l2"), atkS("l2", "l1")),
				atkL(atkF("l1/f", "y")),
			}
		}, treeOK: true, fail: "too many levels of symbolic links"},
		{name: "SymlinkLoopParentSameLayer", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("loop", "loop"), atkF("loop/f", "x"))}
		}, fail: "too many levels of symbolic links"},
		{name: "SymlinkDotParent", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("dot", ".")), atkL(atkF("dot/dot/f", "z"))}
		}, want: func(e atkEnv) atkTree { return atkTree{}.l("dot", ".").f("f", 0o644, "z") }},
		{name: "SymlinkIntoCache", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(atkS("c", e.Cache), atkS("b", e.Cache+"/blobs/sha256")),
				atkL(atkF("c/blobs/sha256/x", pwned), atkWh("c/.wh.roots.lock"), atkWh("b/.wh..wh..opq")),
			}
		}, want: func(e atkEnv) atkTree {
			// The links lead to the cache's path inside DEST: the cache itself is never touched.
			c := e.rel(e.Cache)
			return atkTree{}.l("c", e.Cache).l("b", e.Cache+"/blobs/sha256").f(c+"/blobs/sha256/x", 0o644, pwned)
		}},

		// Hardlinks.
		{name: "HardlinkTargetOutside", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("a", "a")), atkL(atkH("h", e.Out+"/secret"))}
		}, treeOK: true, fail: "hardlink target"},
		{name: "HardlinkTargetDotDot", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("outside/secret", "inside")), atkL(atkH("h", "../../outside/secret"))}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.f("outside/secret", 0o644, "inside").f("h", 0o644, "inside")
		}, check: func(t *testing.T, dest string, e atkEnv) {
			if !sameInode(t, dest+"/h", dest+"/outside/secret") {
				t.Error("h is not a hardlink of outside/secret")
			}
		}},
		{name: "HardlinkTargetDotDotMissing", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkH("h", "../outside/secret"))}
		}, treeOK: true, fail: "hardlink target"},
		{name: "HardlinkTargetThroughSymlink", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("s", "../outside")), atkL(atkH("h", "s/secret"))}
		}, treeOK: true, fail: "hardlink target"},
		{name: "HardlinkTargetThroughSymlinkSameLayer", layers: func(e atkEnv) []registrytest.Layer {
			// s/secret is DEST/<Out>/secret, which no layer has; the tree defers to the layers below.
			return []registrytest.Layer{atkL(atkS("s", e.Out), atkH("h", "s/secret"))}
		}, treeOK: true, fail: "hardlink target"},
		{name: "HardlinkToDirectory", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkD("d/", 0o755), atkH("h", "d"))}
		}, fail: "hardlink"},
		{name: "HardlinkToLowerDirectory", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkD("d/", 0o755)), atkL(atkH("h", "d"))}
		}, treeOK: true, fail: "hardlink"},
		{name: "HardlinkToRoot", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkH("h", "../"))}
		}, fail: "hardlink"},
		{name: "HardlinkToSymlinkOut", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(atkS("s", "../outside/secret"), atkH("h", "s")),
				atkL(atkH("h2", "s")),
				atkL(atkF("h", pwned)),
			}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.l("s", "../outside/secret").l("h2", "../outside/secret").f("h", 0o644, pwned)
		}, check: func(t *testing.T, dest string, e atkEnv) {
			if !sameInode(t, dest+"/s", dest+"/h2") {
				t.Error("h2 is not a hardlink of the symlink s")
			}
		}},
		{name: "OverwriteHardlinkedLowerFile", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("f", "orig")), atkL(atkH("h", "f")), atkL(atkF("h", "new"), atkF("f2", "x"))}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.f("f", 0o644, "orig").f("h", 0o644, "new").f("f2", 0o644, "x")
		}},
		{name: "SetuidFileThroughHardlinkOut", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(atkS("sl", "../outside/secret"), atkS("sa", e.Abs+"/file")),
				atkL(reg{Name: "bin/su", Body: []byte("su"), Mode: 0o4755}, atkH("sl", "bin/su"), atkH("sa", "bin/su")),
			}
		}, want: func(e atkEnv) atkTree {
			su := file(atkMode(0o4755), "su")
			return atkTree{}.add("bin/su", su).add("sl", su).add("sa", su)
		}, check: func(t *testing.T, dest string, e atkEnv) {
			if !sameInode(t, dest+"/bin/su", dest+"/sl") || !sameInode(t, dest+"/bin/su", dest+"/sa") {
				t.Error("sl and sa are not hardlinks of bin/su")
			}
		}},

		// Whiteouts and opaque directories.
		{name: "WhiteoutDotDot", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("keep", "k")),
				atkL(atkWh("../.wh.outside"), atkWh("a/../../.wh.parent"), atkWh("../../.wh.abs"), atkWh("../.wh.outside-link"))}
		}, want: func(e atkEnv) atkTree { return atkTree{}.f("keep", 0o644, "k") }},
		{name: "WhiteoutDotDotName", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("d/keep", "k")), atkL(atkWh("d/.wh.."))}
		}, fail: "invalid whiteout"},
		{name: "WhiteoutAbsolute", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("victim", "v"), atkF("keep", "k")),
				atkL(atkWh("/.wh.victim"), atkWh(e.Out+"/.wh.secret"), atkWh(e.Abs+"/.wh.dir"))}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.f("keep", 0o644, "k").d(e.rel(e.Out), 0o755).d(e.rel(e.Abs), 0o755)
		}},
		{name: "WhiteoutThroughSymlink", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("s", "../outside"), atkS("t", e.Abs)),
				atkL(atkWh("s/.wh.secret"), atkWh("s/.wh.dir"), atkWh("t/.wh.file"), atkWh("t/.wh.dir"))}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.l("s", "../outside").l("t", e.Abs).d("outside", 0o755).d(e.rel(e.Abs), 0o755)
		}},
		{name: "WhiteoutEmptyName", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("keep", "k")), atkL(atkWh(".wh."))}
		}, fail: "invalid whiteout"},
		{name: "WhiteoutWithSlash", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("keep", "k")), atkL(atkWh(".wh.outside/secret"))}
		}, fail: "invalid whiteout"},
		{name: "OpaqueThroughSymlink", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("s", "../outside"), atkS("t", e.Abs)),
				atkL(atkWh("s/.wh..wh..opq"), atkWh("t/.wh..wh..opq"))}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.l("s", "../outside").l("t", e.Abs).d("outside", 0o755).d(e.rel(e.Abs), 0o755)
		}},
		{name: "OpaqueRootAbsolute", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("a", "a"), atkF("d/b", "b"), atkS("s", "../outside")),
				atkL(atkWh("/.wh..wh..opq"), atkWh("../../.wh..wh..opq"), atkF("new", "n"))}
		}, want: func(e atkEnv) atkTree { return atkTree{}.f("new", 0o644, "n") }},

		// Types and metadata over lower symlinks.
		{name: "DirOverSymlinkToOutside", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("s", "../outside"), atkS("t", e.Abs+"/dir")),
				atkL(reg{Name: "s/", Type: tar.TypeDir, Mode: 0o700, Uid: 7, Gid: 7}, atkF("s/new", "n"), atkD("t/", 0o750))}
		}, want: func(e atkEnv) atkTree {
			s := dir(0o700)
			s.UID, s.GID = 7, 7
			return atkTree{}.add("s", s).f("s/new", 0o644, "n").d("t", 0o750)
		}},
		{name: "FileOverSymlinkToOutside", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("s", "../outside/secret"), atkS("t", e.Abs+"/file"), atkS("u", "../outside/dir")),
				atkL(reg{Name: "s", Body: []byte(pwned), Mode: 0o600}, atkF("t", "pwned2"), atkF("u", "pwned3"))}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.f("s", 0o600, pwned).f("t", 0o644, "pwned2").f("u", 0o644, "pwned3")
		}},
		{name: "ChmodThroughSymlink", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("s", "../outside"), atkS("t", "../outside/mode644"), atkS("u", e.Abs)),
				atkL(atkD("s/", 0o777), atkD("u/", 0o1777), reg{Name: "t", Type: tar.TypeSymlink, Linkname: "../outside/mode644", Mode: 0o4777})}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.d("s", 0o777).add("u", dir(atkMode(0o1777))).l("t", "../outside/mode644")
		}},
		{name: "ChownThroughSymlink", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("s", "../outside"), atkS("t", "../outside/secret")),
				atkL(reg{Name: "s/", Type: tar.TypeDir, Uid: 1234, Gid: 1234},
					reg{Name: "t", Type: tar.TypeSymlink, Linkname: "../outside/secret", Uid: 4321, Gid: 4321})}
		}, want: func(e atkEnv) atkTree {
			s, l := dir(0o755), link("../outside/secret")
			s.UID, s.GID, l.UID, l.GID = 1234, 1234, 4321, 4321
			return atkTree{}.add("s", s).add("t", l)
		}},
		{name: "XattrThroughSymlink", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("s", "../outside"), atkS("t", "../outside/secret")),
				atkL(reg{Name: "s/", Type: tar.TypeDir, Xattrs: map[string]string{"user.pwned": "1"}},
					reg{Name: "t", Type: tar.TypeSymlink, Linkname: "../outside/secret", Xattrs: map[string]string{"trusted.pwned": "1"}})}
		}, want: func(e atkEnv) atkTree { return atkTree{}.d("s", 0o755).l("t", "../outside/secret") },
			check: func(t *testing.T, dest string, e atkEnv) {
				for p, want := range map[string]string{"s": `user.pwned="1"`, "t": `trusted.pwned="1"`} {
					if got, err := atkXattrs(dest + "/" + p); err != nil || got != want {
						t.Errorf("xattrs of %s: %q, %v; want %s", p, got, err, want)
					}
				}
			}},
		{name: "DeviceNode", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("s", "../outside/secret"),
				reg{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
				reg{Name: "dev/loop0", Type: tar.TypeBlock, Mode: 0o660, Devmajor: 7, Devminor: 0},
				reg{Name: "../outside/dev", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}),
				atkL(reg{Name: "s", Type: tar.TypeChar, Mode: 0o600, Devmajor: 1, Devminor: 5})}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.add("dev/null", entry{Type: "c", Mode: 0o666}).add("dev/loop0", entry{Type: "b", Mode: 0o660}).
				add("outside/dev", entry{Type: "c", Mode: 0o666}).add("s", entry{Type: "c", Mode: 0o600})
		}},
		{name: "FifoOverSymlink", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkS("s", "../outside/secret"), atkS("d", "../outside"), atkS("a", e.Abs+"/file")),
				atkL(reg{Name: "s", Type: tar.TypeFifo, Mode: 0o600}, reg{Name: "d/fifo", Type: tar.TypeFifo}, reg{Name: "a", Type: tar.TypeFifo})}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.add("s", entry{Type: "p", Mode: 0o600}).l("d", "../outside").add("outside/fifo", entry{Type: "p", Mode: 0o644}).add("a", entry{Type: "p", Mode: 0o644})
		}},
		{name: "DuplicateEntries", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("f", "one"), reg{Name: "f", Body: []byte("two"), Mode: 0o600},
				atkD("d/", 0o700), reg{Name: "d/", Type: tar.TypeDir, Mode: 0o755, Uid: 5}, atkS("s", "a"), atkS("s", "b"),
				atkH("h", "f"), atkH("h", "f"))}
		}, want: func(e atkEnv) atkTree {
			d := dir(0o755)
			d.UID = 5
			return atkTree{}.f("f", 0o600, "two").f("h", 0o600, "two").add("d", d).l("s", "b")
		}},
		{name: "DirectoryThenFileSameName", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkD("x/", 0o700), atkF("x/child", "c"), atkF("x", "file"),
				atkF("y", "file"), atkD("y/", 0o711), atkF("y/c", "c"))}
		}, want: func(e atkEnv) atkTree { return atkTree{}.f("x", 0o644, "file").d("y", 0o711).f("y/c", 0o644, "c") }},
		{name: "ManyLayersDeep", layers: func(e atkEnv) []registrytest.Layer {
			var ls []registrytest.Layer
			for i := 0; i < 40; i++ {
				ents := []reg{atkF(strings.Repeat("a/", i+1)+"f", strconv.Itoa(i)), atkF("w"+strconv.Itoa(i), "w")}
				if i > 0 {
					ents = append(ents, atkWh(".wh.w"+strconv.Itoa(i-1)))
				}
				if i%2 == 0 {
					ents = append(ents, atkS("d", "../outside"))
				} else {
					ents = append(ents, atkF("d/secret", strconv.Itoa(i)))
				}
				ls = append(ls, atkL(ents...))
			}
			return ls
		}, want: func(e atkEnv) atkTree {
			w := atkTree{}.f("w39", 0o644, "w").l("d", "../outside").f("outside/secret", 0o644, "39")
			for i := 0; i < 40; i++ {
				w.f(strings.Repeat("a/", i+1)+"f", 0o644, strconv.Itoa(i))
			}
			return w
		}},

		// Malformed tars and lying blobs.
		{name: "UidWrapsToRoot", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkRaw(atkNewTar(atkMust()).add(tar.Header{Name: "f", Uid: 1 << 32, Gid: 1 << 32, Format: tar.FormatPAX, Mode: 0o4755}, "x").bytes())}
		}, fail: "invalid tar header field"},
		{name: "UnknownEntryType", layers: func(e atkEnv) []registrytest.Layer {
			b := atkHeader("odd", 'Z', 0o644, 0, false, nil)
			return []registrytest.Layer{atkRaw(append(b, make([]byte, 1024)...))}
		}, fail: "unsupported tar entry type"},
		{name: "SymlinkTargetTooLong", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkRaw(atkNewTar(atkMust()).add(tar.Header{Name: "s", Typeflag: tar.TypeSymlink,
				Linkname: strings.Repeat("../", 2000) + "outside", Format: tar.FormatPAX}, "").bytes())}
		}, fail: "s: "},
		{name: "HugeSparseHeader", limit: 8 * time.Second, orFail: "huge", layers: func(e atkEnv) []registrytest.Layer {
			// 1 TiB declared, 4 bytes of data at its end.
			raw := atkNewTar(atkMust()).raw(atkPAXSparse("huge", 1<<40, atkFrag{1<<40 - 4, "tail"})).bytes()
			return []registrytest.Layer{atkRaw(raw)}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.add("huge", atkSparseEntry(0o644, 1<<40, atkFrag{1<<40 - 4, "tail"}))
		}, check: func(t *testing.T, dest string, e atkEnv) {
			if s, _ := atkStat(dest + "/huge"); s.Blocks*512 > 1<<20 {
				t.Errorf("huge takes %d bytes on disk; want holes", s.Blocks*512)
			}
		}},
		{name: "TruncatedTar", layers: func(e atkEnv) []registrytest.Layer {
			raw := atkNewTar(atkMust()).add(tar.Header{Name: "big"}, strings.Repeat("x", 10000)).bytes()
			return []registrytest.Layer{atkL(atkF("ok", "ok")), atkRaw(raw[:512+100])}
		}, fail: "unexpected EOF"},
		{name: "GarbageAfterTar", layers: func(e atkEnv) []registrytest.Layer {
			raw := atkNewTar(atkMust()).add(tar.Header{Name: "f"}, "f").bytes()
			garbage := make([]byte, 4096)
			rnd := rand.New(rand.NewPCG(1, 2))
			for i := range garbage {
				garbage[i] = byte(rnd.Uint32())
			}
			return []registrytest.Layer{atkRaw(append(raw, garbage...))}
		}, want: func(e atkEnv) atkTree { return atkTree{}.f("f", 0o644, "f") }},
		{name: "NotATar", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{{Raw: bytes.Repeat([]byte("not a tar\n"), 200), Compression: registrytest.Uncompressed}}
		}, fail: "invalid tar header"},
		{name: "DiffIDMismatch", push: func(t testing.TB, r *registrytest.Registry, repo string, e atkEnv) registrytest.Pushed {
			good := atkCompress(t, registrytest.TarBytes([]reg{atkF("a", "a")}), registrytest.Gzip)
			bad := atkCompress(t, registrytest.TarBytes([]reg{atkF("b", "b")}), registrytest.Zstd)
			lie := digest.FromString("the config lies")
			return atkPush(t, r, repo, "latest", []atkLayer{good, bad}, []digest.Digest{good.DiffID, lie})
		}, fail: "diff id"},
		{name: "BlobDigestMismatch", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkL(atkF("a", "a")), atkL(atkF("b", strings.Repeat("b", 5000)))}
		}, fault: func(p registrytest.Pushed) registrytest.Fault {
			bad := p.Layers[len(p.Layers)-1].Digest.String()
			return registrytest.Fault{Kind: registrytest.WrongBytes, Bytes: 20,
				Match: func(req *http.Request) bool { return strings.HasSuffix(req.URL.Path, bad) }}
		}, fail: "digest mismatch"},
		{name: "BlobSizeLies", push: func(t testing.TB, r *registrytest.Registry, repo string, e atkEnv) registrytest.Pushed {
			good := atkCompress(t, registrytest.TarBytes([]reg{atkF("a", "a")}), registrytest.Gzip)
			bad := atkCompress(t, registrytest.TarBytes([]reg{atkF("b", "b")}), registrytest.Gzip)
			bad.Size = int64(len(bad.Blob)) - 10
			return atkPush(t, r, repo, "latest", []atkLayer{good, bad}, nil)
		}, fail: "descriptor says"},
		{name: "MediaTypeLies", push: func(t testing.TB, r *registrytest.Registry, repo string, e atkEnv) registrytest.Pushed {
			good := atkCompress(t, registrytest.TarBytes([]reg{atkF("a", "a")}), registrytest.Gzip)
			bad := atkCompress(t, registrytest.TarBytes([]reg{atkF("b", "b")}), registrytest.Zstd)
			bad.MediaType = ocispec.MediaTypeImageLayerGzip
			return atkPush(t, r, repo, "latest", []atkLayer{good, bad}, nil)
		}, fail: "compression does not match"},
		{name: "MediaTypeUnknown", push: func(t testing.TB, r *registrytest.Registry, repo string, e atkEnv) registrytest.Pushed {
			good := atkCompress(t, registrytest.TarBytes([]reg{atkF("a", "a")}), registrytest.Gzip)
			bad := atkCompress(t, registrytest.TarBytes([]reg{atkF("b", "b")}), registrytest.Gzip)
			bad.MediaType = "application/vnd.oci.image.layer.v1.tar+bzip2"
			return atkPush(t, r, repo, "latest", []atkLayer{good, bad}, nil)
		}, fail: "unsupported layer media type"},
		{name: "ZipBomb", layers: func(e atkEnv) []registrytest.Layer {
			// 128 MiB of zeros in about 130 KiB of gzip.
			raw := atkNewTar(atkMust()).add(tar.Header{Name: "zeros"}, string(make([]byte, 128<<20))).bytes()
			return []registrytest.Layer{atkRaw(raw)}
		}, want: func(e atkEnv) atkTree { return atkTree{}.add("zeros", atkSparseEntry(0o644, 128<<20)) },
			check: func(t *testing.T, dest string, e atkEnv) {
				if s, _ := atkStat(dest + "/zeros"); s.Blocks*512 > 1<<20 {
					t.Errorf("128 MiB of zeros take %d bytes on disk; want holes", s.Blocks*512)
				}
			}},
	}
}

// atkMust is the testing.TB of tar builders that run while the case table is
// made: an error there is a bug in the table, so it panics.
func atkMust() testing.TB { return atkPanicTB{} }

type atkPanicTB struct{ testing.TB }

func (atkPanicTB) Helper()                           {}
func (atkPanicTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (atkPanicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func TestAttacks(t *testing.T) {
	needRoot(t)
	since := time.Now()
	r := registrytest.Start(t, registrytest.Config{})
	root := t.TempDir()
	cases := atkCases()
	if len(cases) < 35 {
		t.Fatalf("only %d attack cases", len(cases))
	}
	for _, tc := range cases {
		e := atkNewEnv(t, filepath.Join(root, tc.name))
		repo := "attack/" + strings.ToLower(tc.name)
		var p registrytest.Pushed
		if tc.push != nil {
			p = tc.push(t, r, repo, e)
		} else {
			p = r.Push(t, repo, "latest", registrytest.Image{Layers: tc.layers(e)})
		}
		host := r.Host
		if tc.fault != nil {
			host = r.FaultProxy(t, tc.fault(p))
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			atkRun(t, tc, e, host+"/"+repo+":latest", p, since)
		})
	}
	t.Run("ForceOverSymlinkDest", func(t *testing.T) {
		t.Parallel()
		e := atkNewEnv(t, filepath.Join(root, "ForceOverSymlinkDest"))
		r.Push(t, "attack/force", "latest", registrytest.Image{Layers: []registrytest.Layer{atkL(atkF("secret", "pwned"), atkWh(".wh.dir"))}})
		for _, mode := range []string{"cache", "no"} {
			dest := e.Parent + "/rootfs-" + mode
			if err := os.Symlink("outside", dest); err != nil {
				t.Fatal(err)
			}
			cache := e.Cache
			if mode == "no" {
				cache = "no"
			}
			before := e.scan(t, dest)
			res, _ := atkPull(t, time.Minute, "--cache", cache, "--force", r.Host+"/attack/force", dest)
			atkUnchanged(t, before, e.scan(t, dest))
			t.Logf("%s: exit %d %s", mode, res.code, strings.TrimSpace(res.stderr))
			if res.code == 0 {
				sameTree(t, atkEntries(atkScan(t, dest, nil)), atkTree{}.f("secret", 0o644, "pwned"))
			} else if res.code != 1 || strings.Count(res.stderr, "\n") != 1 {
				t.Errorf("%s: exit %d, %q", mode, res.code, res.stderr)
			}
		}
	})
}

// atkRun pulls one case in both modes and checks it.
func atkRun(t *testing.T, tc atkCase, e atkEnv, ref string, p registrytest.Pushed, since time.Time) {
	limit := tc.limit
	if limit == 0 {
		limit = time.Minute
	}
	var want atkTree
	if tc.fail == "" {
		want = tc.want(e)
	}
	got := map[string]map[string]atkState{}
	for _, mode := range []string{"cache", "no"} {
		dest := e.Parent + "/rootfs-" + mode
		cache := e.Cache
		if mode == "no" {
			cache = "no"
		}
		others := []string{dest}
		if mode == "cache" {
			others = append(others, e.Parent+"/rootfs-warm")
		}
		before := e.scan(t, others...)
		res, timedOut := atkPull(t, limit, "--cache", cache, ref, dest)
		atkUnchanged(t, before, e.scan(t, others...))
		if timedOut {
			t.Errorf("%s: the pull did not finish within %v (stderr %q)", mode, limit, res.stderr)
			continue
		}
		if tc.fail != "" || (tc.orFail != "" && res.code != 0) {
			t.Logf("%s: %s", mode, strings.TrimSpace(res.stderr))
			fail := tc.fail
			if fail == "" {
				fail = tc.orFail
			}
			assertCleanFailure(t, res, fail, dest)
			if mode == "cache" && !tc.treeOK {
				bad := tc.bad
				if bad <= 0 {
					bad = len(p.Layers) - 1
				}
				blobs := map[string]bool{p.Digest.Encoded(): true, digest.FromBytes(p.Config).Encoded(): true}
				trees := map[string]bool{}
				for i, l := range p.Layers {
					if i != bad {
						blobs[l.Digest.Encoded()] = true
						trees[p.DiffIDs[i].Encoded()] = true
					}
				}
				atkCacheClean(t, e.Cache, blobs, trees)
			} else if mode == "cache" {
				atkTmpClean(t, e.Cache)
			}
			continue
		}
		if res.code != 0 || res.stderr != "" || res.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want a silent success", mode, res.code, res.stdout, res.stderr)
			continue
		}
		got[mode] = atkScan(t, dest, nil)
		t.Run(mode, func(t *testing.T) {
			sameTree(t, atkEntries(got[mode]), want)
		})
		if tc.check != nil {
			tc.check(t, dest, e)
		}
		if mode == "cache" {
			atkCacheIntact(t, e.Cache)
			// The same image from the warm cache is the same tree.
			warm := e.Parent + "/rootfs-warm"
			before := e.scan(t, warm, dest)
			res, _ := atkPull(t, limit, "--cache", cache, ref, warm)
			atkUnchanged(t, before, e.scan(t, warm, dest))
			if res.code != 0 {
				t.Errorf("warm pull: exit %d: %s", res.code, res.stderr)
			} else {
				atkSameFS(t, "cold and warm cache pulls", got[mode], atkScan(t, warm, nil), since)
			}
		}
	}
	if got["cache"] != nil && got["no"] != nil {
		atkSameFS(t, "--cache and --cache=no trees", got["cache"], got["no"], since)
		a, _ := atkStat(e.Parent + "/rootfs-cache")
		b, _ := atkStat(e.Parent + "/rootfs-no")
		a.Mtime, b.Mtime = 0, 0
		if atkShow(a) != atkShow(b) {
			t.Errorf("DEST roots differ:\n\t%s\n\t%s", atkShow(a), atkShow(b))
		}
	}
}
