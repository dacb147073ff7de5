package main

// The harness of TestAttacks (attack_test.go): scans of the tree around DEST, hostile tar
// builders, pushes, pulls under a deadline, and the checks that nothing outside DEST and the
// cache changed.

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

func (w atkTree) l(p, target string) atkTree { return w.add(p, link(target)) }

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

// atkMust is the testing.TB of tar builders that run while the case table is
// made: an error there is a bug in the table, so it panics.
func atkMust() testing.TB { return atkPanicTB{} }

type atkPanicTB struct{ testing.TB }

func (atkPanicTB) Helper() {}

func (atkPanicTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

func (atkPanicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

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
