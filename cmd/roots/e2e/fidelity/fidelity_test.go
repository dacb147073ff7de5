package fidelity

// TestFidelity pulls images that exercise the OCI layer rules, with the cache
// (hardlink assembly) and without it (--cache=no), and checks the rootfs file
// by file: type, mode with setuid/setgid/sticky, owner, content, link target,
// device numbers, xattrs, mtimes (files, symlinks and directories) and
// hardlink groups (scans and tars by internal/testtree).

import (
	"archive/tar"
	"encoding/binary"
	"fmt"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/cmd/roots/e2e"
	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// wantEntry is one expected entry; a zero Mtime is not checked (an implicit directory's time is
// when it was made).
type wantEntry testtree.Entry

func fromImage(e entry) wantEntry {
	e.Mtime = registrytest.EntryTime.UnixNano()
	return wantEntry(e)
}

func (w wantEntry) own(uid, gid int) wantEntry { w.UID, w.GID = uid, gid; return w }
func (w wantEntry) at(t time.Time) wantEntry   { w.Mtime = t.UnixNano(); return w }
func (w wantEntry) x(xattrs string) wantEntry  { w.Xattrs = xattrs; return w }
func (w wantEntry) devn(major, minor int) wantEntry {
	w.Rdev = fmt.Sprintf("%d:%d", major, minor)
	return w
}

// rootfs is an expected rootfs; parents not added explicitly are implicit
// directories (0755 root:root, any mtime).
type rootfs map[string]wantEntry

func (t rootfs) add(p string, w wantEntry) rootfs {
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if _, ok := t[d]; !ok {
			t[d] = wantEntry(testtree.Dir(0o755))
		}
	}
	t[p] = w
	return t
}
func (t rootfs) f(p string, mode uint32, body string) rootfs {
	return t.add(p, fromImage(testtree.File(testtree.OctalMode(mode), body)))
}
func (t rootfs) d(p string, mode uint32) rootfs {
	return t.add(p, fromImage(testtree.Dir(testtree.OctalMode(mode))))
}
func (t rootfs) l(p, target string) rootfs { return t.add(p, fromImage(testtree.Symlink(target))) }
func (t rootfs) imp(p string) rootfs       { return t.add(p, wantEntry(testtree.Dir(0o755))) }

// compare fails unless the scan got has exactly the entries of want: everything an image
// defines but hardlinks (see linkGroups).
func compare(t testing.TB, got map[string]entry, want rootfs) {
	t.Helper()
	w := map[string]entry{}
	opts := []testtree.DiffOption{testtree.Only(testtree.Type, testtree.Mode, testtree.Owner, testtree.Size,
		testtree.Content, testtree.Target, testtree.Device, testtree.Mtime, testtree.Xattrs)}
	for p, e := range want {
		w[p] = entry(e)
		if e.Mtime == 0 {
			opts = append(opts, testtree.Excuse(p, testtree.Mtime))
		}
	}
	if diffs := testtree.Diff(w, got, opts...); len(diffs) > 0 {
		t.Errorf("rootfs differs:\n%s", strings.Join(diffs, "\n"))
	}
}

// linkGroups lists the sets of names that share an inode, "="-joined, space-separated.
func linkGroups(m map[string]entry) string {
	seen := map[string]bool{}
	var groups []string
	for _, e := range m {
		if e.Hardlinks != "" && !seen[e.Hardlinks] {
			seen[e.Hardlinks] = true
			groups = append(groups, strings.ReplaceAll(e.Hardlinks, "|", "="))
		}
	}
	sort.Strings(groups)
	return strings.Join(groups, " ")
}

// capNetRaw is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_raw (13), permitted and effective: "cap_net_raw=ep".
var capNetRaw = func() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000|0x000001) // revision 2, effective
	binary.LittleEndian.PutUint32(b[4:], 1<<13)               // permitted, low word
	return string(b)
}()

// xattrs formats xattrs as testtree.Scan does.
func xattrs(kv ...string) string {
	var pairs []string
	for i := 0; i < len(kv); i += 2 {
		pairs = append(pairs, fmt.Sprintf("%s=%q", kv[i], []byte(kv[i+1])))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, " ")
}

// split compresses a tar in two independently compressed parts (gzip
// members or zstd frames), cut at a block boundary near the middle.
func split(t testing.TB, raw []byte, c registrytest.Compression) []byte {
	t.Helper()
	cut := len(raw) / 2 / 512 * 512
	var out []byte
	for _, part := range [][]byte{raw[:cut], raw[cut:]} {
		b, err := registrytest.Compress(part, c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// skippable is a zstd stream that starts with a skippable frame.
func skippable(t testing.TB, raw []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	skip := []byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 's', 'k', 'i', 'p'}
	return enc.EncodeAll(raw, skip)
}

type testCase struct {
	name string
	// layers, or push for images registrytest.Image cannot describe.
	layers func(t testing.TB) []registrytest.Layer
	push   func(t testing.TB, r *registrytest.Registry, repo string) registrytest.Pushed
	want   rootfs
	links  string                          // hardlink groups as linkGroups prints them
	check  func(t *testing.T, dest string) // further checks
}

func cases() []testCase {
	t1 := time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)
	t2 := time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	t3 := time.Date(1960, 6, 1, 0, 0, 0, 0, time.UTC)
	t4 := time.Date(2010, 1, 1, 12, 0, 0, 500, time.UTC)
	long := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	pax := func(t testing.TB, hs ...tar.Header) registrytest.Layer {
		a := testtree.NewTar(t)
		for _, h := range hs {
			body := ""
			if h.Typeflag == 0 || h.Typeflag == tar.TypeReg {
				body = h.Name + " body"
			}
			if h.Format == 0 {
				h.Format = tar.FormatPAX
			}
			a.Add(h, body)
		}
		return registrytest.RawGzipLayer(a.Bytes())
	}
	body := func(name string) string { return name + " body" }

	return []testCase{
		{name: "OwnersByNumber", layers: func(t testing.TB) []registrytest.Layer {
			var ents []reg
			for _, id := range []int{0, 1, 1000, 65534, 1<<21 - 1, 1 << 21, 1 << 31, 1<<32 - 2} {
				ents = append(ents, reg{Name: fmt.Sprintf("o/%d", id), Body: []byte("x"), Uid: id, Gid: id})
			}
			ents = append(ents, reg{Name: "od/", Type: tar.TypeDir, Uid: 3000000, Gid: 3000001},
				reg{Name: "ol", Type: tar.TypeSymlink, Linkname: "o/0", Uid: 1 << 22, Gid: 1<<22 + 1})
			gnu := testtree.NewTar(t).Add(tar.Header{Name: "g/big", Uid: 1<<21 + 5, Gid: 1<<30 + 7, Format: tar.FormatGNU}, "g").
				Add(tar.Header{Name: "g/dir/", Typeflag: tar.TypeDir, Uid: 1 << 25, Gid: 1 << 26, Format: tar.FormatGNU}, "")
			return []registrytest.Layer{registrytest.GzipLayer(ents...), registrytest.RawGzipLayer(gnu.Bytes())}
		}, want: func() rootfs {
			w := rootfs{}
			for _, id := range []int{0, 1, 1000, 65534, 1<<21 - 1, 1 << 21, 1 << 31, 1<<32 - 2} {
				w.add(fmt.Sprintf("o/%d", id), fromImage(testtree.File(0o644, "x")).own(id, id))
			}
			w.add("od", fromImage(testtree.Dir(0o755)).own(3000000, 3000001)).add("ol", fromImage(testtree.Symlink("o/0")).own(1<<22, 1<<22+1))
			w.add("g/big", fromImage(testtree.File(0o644, "g")).own(1<<21+5, 1<<30+7)).add("g/dir", fromImage(testtree.Dir(0o755)).own(1<<25, 1<<26))
			return w
		}()},

		{name: "SpecialModeBits", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(
				reg{Name: "bin/suid", Body: []byte("s"), Mode: 0o4755},
				reg{Name: "bin/suid-user", Body: []byte("s"), Mode: 0o4755, Uid: 1000, Gid: 1000},
				reg{Name: "bin/sgid", Body: []byte("s"), Mode: 0o2755, Gid: 50},
				reg{Name: "bin/both", Body: []byte("s"), Mode: 0o6755, Uid: 1000, Gid: 50},
				reg{Name: "bin/suid-only", Body: []byte("s"), Mode: 0o4000},
				reg{Name: "bin/sticky-file", Body: []byte("s"), Mode: 0o1644},
				reg{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
				reg{Name: "shared/", Type: tar.TypeDir, Mode: 0o2775, Gid: 50},
				reg{Name: "shared/file", Body: []byte("f")},
				reg{Name: "shared/sub/", Type: tar.TypeDir, Mode: 0o755},
				reg{Name: "shared/impl/f", Body: []byte("f")},
			), registrytest.RawGzipLayer(testtree.NewTar(t).Add(tar.Header{Name: "bin/none", Mode: testtree.ZeroMode}, "s").Bytes())}
		}, want: rootfs{}.
			add("bin/suid", fromImage(testtree.File(testtree.OctalMode(0o4755), "s"))).
			add("bin/suid-user", fromImage(testtree.File(testtree.OctalMode(0o4755), "s")).own(1000, 1000)).
			add("bin/sgid", fromImage(testtree.File(testtree.OctalMode(0o2755), "s")).own(0, 50)).
			add("bin/both", fromImage(testtree.File(testtree.OctalMode(0o6755), "s")).own(1000, 50)).
			add("bin/suid-only", fromImage(testtree.File(testtree.OctalMode(0o4000), "s"))).
			add("bin/none", fromImage(testtree.File(0, "s"))).
			add("bin/sticky-file", fromImage(testtree.File(testtree.OctalMode(0o1644), "s"))).
			d("tmp", 0o1777).
			add("shared", fromImage(testtree.Dir(testtree.OctalMode(0o2775))).own(0, 50)).
			f("shared/file", 0o644, "f").d("shared/sub", 0o755).f("shared/impl/f", 0o644, "f")},

		{name: "ReadOnlyDirsWithChildren", layers: func(t testing.TB) []registrytest.Layer {
			d := func(name string, mode int64) tar.Header {
				return tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode}
			}
			lower := testtree.NewTar(t).Add(d("ro/", 0o500), "").Add(tar.Header{Name: "ro/f", Mode: 0o444}, "f").
				Add(d("ro/sub/", testtree.ZeroMode), "").Add(tar.Header{Name: "ro/sub/g"}, "g").
				Add(d("none/", testtree.ZeroMode), "").Add(tar.Header{Name: "none/x"}, "x").
				Add(d("wo/", 0o200), "").Add(tar.Header{Name: "wo/y"}, "y")
			return []registrytest.Layer{
				registrytest.RawGzipLayer(lower.Bytes()),
				registrytest.GzipLayer(registrytest.File("ro/added", "a"), registrytest.File("none/y", "y"), registrytest.File("ro/sub/deeper/z", "z")),
			}
		}, want: rootfs{}.d("ro", 0o500).f("ro/f", 0o444, "f").d("ro/sub", 0).f("ro/sub/g", 0o644, "g").
			d("none", 0).f("none/x", 0o644, "x").d("wo", 0o200).f("wo/y", 0o644, "y").
			f("ro/added", 0o644, "a").f("none/y", 0o644, "y").imp("ro/sub/deeper").f("ro/sub/deeper/z", 0o644, "z")},

		{name: "Mtimes", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				pax(t, tar.Header{Name: "dated/", Typeflag: tar.TypeDir, ModTime: t1},
					tar.Header{Name: "dated/file", ModTime: t2},
					tar.Header{Name: "dated/link", Typeflag: tar.TypeSymlink, Linkname: "file", ModTime: t3},
					tar.Header{Name: "dated/sub/", Typeflag: tar.TypeDir, ModTime: t4},
					tar.Header{Name: "dated/sub/child", ModTime: t1},
					tar.Header{Name: "old", ModTime: t3},
					tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, ModTime: t4}),
				// A later layer adds to dated/ and dated/sub/ without entries for them.
				registrytest.GzipLayer(registrytest.File("dated/new", "n"), registrytest.File("dated/sub/new", "n")),
			}
		}, want: rootfs{}.
			add("dated", fromImage(testtree.Dir(0o755)).at(t1)).
			add("dated/file", fromImage(testtree.File(0o644, body("dated/file"))).at(t2)).
			add("dated/link", fromImage(testtree.Symlink("file")).at(t3)).
			add("dated/sub", fromImage(testtree.Dir(0o755)).at(t4)).
			add("dated/sub/child", fromImage(testtree.File(0o644, body("dated/sub/child"))).at(t1)).
			add("old", fromImage(testtree.File(0o644, body("old"))).at(t3)).
			add("fifo", fromImage(entry{Type: "p", Mode: 0o644}).at(t4)).
			f("dated/new", 0o644, "n").f("dated/sub/new", 0o644, "n")},

		{name: "Xattrs", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(registrytest.File("ovl/lower", "l")),
				registrytest.GzipLayer(
					reg{Name: "f", Body: []byte("f"), Xattrs: map[string]string{"user.a": "1", "user.bin": "\x00\x01\xff", "trusted.t": "t"}},
					reg{Name: "d/", Type: tar.TypeDir, Xattrs: map[string]string{"user.d": "dir"}},
					reg{Name: "s", Type: tar.TypeSymlink, Linkname: "f", Xattrs: map[string]string{"trusted.sym": "link"}},
					reg{Name: "bin/ping", Body: []byte("ping"), Mode: 0o755, Xattrs: map[string]string{"security.capability": capNetRaw}},
					reg{Name: "bin/ping-user", Body: []byte("ping"), Mode: 0o750, Uid: 1000, Gid: 1000,
						Xattrs: map[string]string{"security.capability": capNetRaw}},
					reg{Name: "bin/ping2", Type: tar.TypeLink, Linkname: "bin/ping"},
					reg{Name: "p", Type: tar.TypeFifo, Xattrs: map[string]string{"trusted.p": "fifo"}},
					// overlayfs xattrs from a tar are dropped: ovl/ stays a plain directory.
					reg{Name: "ovl/", Type: tar.TypeDir, Xattrs: map[string]string{"trusted.overlay.opaque": "y", "user.k": "v"}},
					registrytest.File("ovl/upper", "u"),
				),
			}
		}, want: rootfs{}.
			add("f", fromImage(testtree.File(0o644, "f")).x(xattrs("user.a", "1", "user.bin", "\x00\x01\xff", "trusted.t", "t"))).
			add("d", fromImage(testtree.Dir(0o755)).x(xattrs("user.d", "dir"))).
			add("s", fromImage(testtree.Symlink("f")).x(xattrs("trusted.sym", "link"))).
			add("bin/ping", fromImage(testtree.File(0o755, "ping")).x(xattrs("security.capability", capNetRaw))).
			add("bin/ping2", fromImage(testtree.File(0o755, "ping")).x(xattrs("security.capability", capNetRaw))).
			add("bin/ping-user", fromImage(testtree.File(0o750, "ping")).own(1000, 1000).x(xattrs("security.capability", capNetRaw))).
			add("p", fromImage(entry{Type: "p", Mode: 0o644}).x(xattrs("trusted.p", "fifo"))).
			add("ovl", fromImage(testtree.Dir(0o755)).x(xattrs("user.k", "v"))).
			f("ovl/lower", 0o644, "l").f("ovl/upper", 0o644, "u"),
			links: "bin/ping=bin/ping2"},

		{name: "Devices", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(
				reg{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
				reg{Name: "dev/tty0", Type: tar.TypeChar, Mode: 0o620, Gid: 5, Devmajor: 4, Devminor: 0},
				reg{Name: "dev/big", Type: tar.TypeChar, Mode: 0o600, Devmajor: 259, Devminor: 65536},
				reg{Name: "dev/loop0", Type: tar.TypeBlock, Mode: 0o660, Gid: 6, Devmajor: 7, Devminor: 0},
				reg{Name: "dev/sdb", Type: tar.TypeBlock, Mode: 0o660, Devmajor: 8, Devminor: 16},
				reg{Name: "run/fifo", Type: tar.TypeFifo, Mode: 0o600, Uid: 1000, Gid: 1000},
				reg{Name: "run/fifo-sticky", Type: tar.TypeFifo, Mode: 0o1666},
			)}
		}, want: rootfs{}.
			add("dev/null", fromImage(entry{Type: "c", Mode: 0o666}).devn(1, 3)).
			add("dev/tty0", fromImage(entry{Type: "c", Mode: 0o620, GID: 5}).devn(4, 0)).
			add("dev/big", fromImage(entry{Type: "c", Mode: 0o600}).devn(259, 65536)).
			add("dev/loop0", fromImage(entry{Type: "b", Mode: 0o660, GID: 6}).devn(7, 0)).
			add("dev/sdb", fromImage(entry{Type: "b", Mode: 0o660}).devn(8, 16)).
			add("run/fifo", fromImage(entry{Type: "p", Mode: 0o600, UID: 1000, GID: 1000})).
			add("run/fifo-sticky", fromImage(entry{Type: "p", Mode: testtree.OctalMode(0o1666)}))},

		{name: "Hardlinks", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(reg{Name: "lower", Body: []byte("l"), Mode: 0o4755}, registrytest.File("lower2", "l2")),
				registrytest.GzipLayer(registrytest.File("a", "a"), registrytest.Hardlink("b", "a"), registrytest.Hardlink("c/d", "/a"), registrytest.Hardlink("c/e", "./c/../a"),
					reg{Name: "s", Body: []byte("s"), Mode: 0o4750, Uid: 1000, Gid: 1000}, registrytest.Hardlink("s2", "s"),
					registrytest.Hardlink("up", "lower"), registrytest.Hardlink("sub/up2", "lower2")),
				// A later layer replaces one name of a group: the others keep the old content.
				registrytest.GzipLayer(registrytest.File("lower2", "new")),
			}
		}, want: rootfs{}.
			add("lower", fromImage(testtree.File(testtree.OctalMode(0o4755), "l"))).add("up", fromImage(testtree.File(testtree.OctalMode(0o4755), "l"))).
			f("lower2", 0o644, "new").f("sub/up2", 0o644, "l2").
			f("a", 0o644, "a").f("b", 0o644, "a").f("c/d", 0o644, "a").f("c/e", 0o644, "a").
			add("s", fromImage(testtree.File(testtree.OctalMode(0o4750), "s")).own(1000, 1000)).add("s2", fromImage(testtree.File(testtree.OctalMode(0o4750), "s")).own(1000, 1000)),
			links: "a=b=c/d=c/e lower=up s=s2"},

		{name: "SymlinksAsWritten", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(
				registrytest.Symlink("abs", "/etc/passwd"), registrytest.Symlink("rel", "../x/y"), registrytest.Symlink("dangling", "nowhere"), registrytest.Symlink("loop", "loop"),
				registrytest.Symlink("l1", "l2"), registrytest.Symlink("l2", "l1"), registrytest.Symlink("up", "../../../.."), registrytest.Symlink("dot", "."), registrytest.Symlink("slash", "/"),
				registrytest.Symlink("odd", "a b\tc\nd\xff"), registrytest.Symlink("sub/rel", "../abs"), registrytest.Symlink("trailing", "dir/"),
				reg{Name: "own", Type: tar.TypeSymlink, Linkname: "x", Uid: 1000, Gid: 1001, ModTime: t1},
			)}
		}, want: rootfs{}.l("abs", "/etc/passwd").l("rel", "../x/y").l("dangling", "nowhere").l("loop", "loop").
			l("l1", "l2").l("l2", "l1").l("up", "../../../..").l("dot", ".").l("slash", "/").l("odd", "a b\tc\nd\xff").
			l("sub/rel", "../abs").l("trailing", "dir/").
			add("own", fromImage(testtree.Symlink("x")).own(1000, 1001).at(t1.Round(time.Second)))},

		{name: "LongNames", layers: func(t testing.TB) []registrytest.Layer {
			var ls []registrytest.Layer
			for p, f := range map[string]tar.Format{"PAX": tar.FormatPAX, "GNU": tar.FormatGNU} {
				a := testtree.NewTar(t).
					Add(tar.Header{Name: p + "/" + long('a', 200) + "/" + long('b', 200), Format: f}, "long path").
					Add(tar.Header{Name: p + "/" + long('n', 255), Format: f}, "255").
					Add(tar.Header{Name: p + "/" + strings.Repeat(long('c', 200)+"/", 6) + "deep", Format: f}, "deep").
					Add(tar.Header{Name: p + "/sym", Typeflag: tar.TypeSymlink, Linkname: strings.Repeat("../", 300) + long('t', 100), Format: f}, "").
					Add(tar.Header{Name: p + "/" + long('h', 250) + "/hard", Typeflag: tar.TypeLink, Linkname: p + "/" + long('a', 200) + "/" + long('b', 200), Format: f}, "")
				ls = append(ls, registrytest.RawGzipLayer(a.Bytes()))
			}
			return ls
		}, want: func() rootfs {
			w := rootfs{}
			for _, p := range []string{"PAX", "GNU"} {
				w.f(p+"/"+long('a', 200)+"/"+long('b', 200), 0o644, "long path").
					f(p+"/"+long('n', 255), 0o644, "255").
					f(p+"/"+strings.Repeat(long('c', 200)+"/", 6)+"deep", 0o644, "deep").
					l(p+"/sym", strings.Repeat("../", 300)+long('t', 100)).
					f(p+"/"+long('h', 250)+"/hard", 0o644, "long path")
			}
			return w
		}(), links: "GNU/" + long('a', 200) + "/" + long('b', 200) + "=GNU/" + long('h', 250) + "/hard " +
			"PAX/" + long('a', 200) + "/" + long('b', 200) + "=PAX/" + long('h', 250) + "/hard"},

		{name: "OddNames", layers: func(t testing.TB) []registrytest.Layer {
			names := []string{"sp ace", "new\nline", "tab\tx", "\xff\xfe-bin", "é-utf8", "back\\slash", "-dash", "...", ".hidden", "#*?[]", "bin\xc3(/inner"}
			var ents []reg
			for _, n := range names {
				ents = append(ents, registrytest.File("pax/"+n, n))
			}
			gnu := testtree.NewTar(t)
			for _, n := range names {
				gnu.Add(tar.Header{Name: "gnu/" + n, Format: tar.FormatGNU}, n)
			}
			return []registrytest.Layer{registrytest.GzipLayer(ents...), registrytest.RawGzipLayer(gnu.Bytes())}
		}, want: func() rootfs {
			w := rootfs{}
			for _, n := range []string{"sp ace", "new\nline", "tab\tx", "\xff\xfe-bin", "é-utf8", "back\\slash", "-dash", "...", ".hidden", "#*?[]", "bin\xc3(/inner"} {
				w.f("pax/"+n, 0o644, n).f("gnu/"+n, 0o644, n)
			}
			return w
		}()},

		{name: "PaxGlobalHeader", layers: func(t testing.TB) []registrytest.Layer {
			a := testtree.NewTar(t)
			a.Add(tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "0123456789abcdef"}}, "")
			a.Add(tar.Header{Name: "a", Format: tar.FormatPAX}, "a")
			a.Add(tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "again"}}, "")
			a.Add(tar.Header{Name: "b/", Typeflag: tar.TypeDir, Format: tar.FormatPAX}, "")
			return []registrytest.Layer{registrytest.RawGzipLayer(a.Bytes())}
		}, want: rootfs{}.f("a", 0o644, "a").d("b", 0o755)},

		{name: "SparseFiles", layers: func(t testing.TB) []registrytest.Layer {
			const gib = 1 << 30
			frags := []testtree.Frag{{Off: 0, Data: "head"}, {Off: gib / 2, Data: "middle"}, {Off: gib - 4, Data: "tail"}}
			raw := testtree.NewTar(t).
				Raw(testtree.GNUSparse("sparse/gnu", gib, frags...)).
				Raw(testtree.PAXSparse("sparse/pax", gib, frags...)).
				Raw(testtree.PAXSparse01("sparse/pax01", 64<<20, testtree.Frag{Off: 4096, Data: "x"}, testtree.Frag{Off: 32 << 20, Data: "y"})).
				Raw(testtree.PAXSparse("sparse/small", 10000, testtree.Frag{Off: 3000, Data: "in\x00the\x00middle"}, testtree.Frag{Off: 9990, Data: "0123456789"})).
				Raw(testtree.PAXSparse("sparse/allhole", 5<<20)).
				Bytes()
			return []registrytest.Layer{registrytest.RawGzipLayer(raw)}
		}, want: rootfs{}.
			add("sparse/gnu", fromImage(testtree.Sparse(0o644, 1<<30, testtree.Frag{Off: 0, Data: "head"}, testtree.Frag{Off: 1 << 29, Data: "middle"}, testtree.Frag{Off: 1<<30 - 4, Data: "tail"}))).
			add("sparse/pax", fromImage(testtree.Sparse(0o644, 1<<30, testtree.Frag{Off: 0, Data: "head"}, testtree.Frag{Off: 1 << 29, Data: "middle"}, testtree.Frag{Off: 1<<30 - 4, Data: "tail"}))).
			add("sparse/pax01", fromImage(testtree.Sparse(0o644, 64<<20, testtree.Frag{Off: 4096, Data: "x"}, testtree.Frag{Off: 32 << 20, Data: "y"}))).
			add("sparse/small", fromImage(testtree.Sparse(0o644, 10000, testtree.Frag{Off: 3000, Data: "in\x00the\x00middle"}, testtree.Frag{Off: 9990, Data: "0123456789"}))).
			add("sparse/allhole", fromImage(testtree.Sparse(0o644, 5<<20))),
			check: func(t *testing.T, dest string) {
				for _, p := range []string{"sparse/gnu", "sparse/pax", "sparse/pax01", "sparse/allhole"} {
					if s := testtree.Stat(t, dest+"/"+p); s.Blocks*512 >= 1<<20 {
						t.Errorf("%s takes %d bytes on disk; want < 1 MiB", p, s.Blocks*512)
					}
				}
			}},

		{name: "Compression", push: func(t testing.TB, r *registrytest.Registry, repo string) registrytest.Pushed {
			tarOf := func(prefix string) []byte {
				var ents []reg
				for i := 0; i < 8; i++ {
					ents = append(ents, registrytest.File(fmt.Sprintf("%s/%d", prefix, i), strings.Repeat(prefix, 300*(i+1))))
				}
				return registrytest.TarBytes(ents)
			}
			gz, zs, sk, plain := tarOf("gzip"), tarOf("zstd"), tarOf("skip"), tarOf("none")
			return r.PushBlobs(t, repo, "latest", []registrytest.Blob{
				{MediaType: ocispec.MediaTypeImageLayerGzip, Blob: split(t, gz, registrytest.Gzip), DiffID: digest.FromBytes(gz)},
				{MediaType: ocispec.MediaTypeImageLayerZstd, Blob: split(t, zs, registrytest.Zstd), DiffID: digest.FromBytes(zs)},
				{MediaType: ocispec.MediaTypeImageLayerZstd, Blob: skippable(t, sk), DiffID: digest.FromBytes(sk)},
				{MediaType: ocispec.MediaTypeImageLayer, Blob: plain, DiffID: digest.FromBytes(plain)},
			}, nil)
		}, want: func() rootfs {
			w := rootfs{}
			for _, prefix := range []string{"gzip", "zstd", "skip", "none"} {
				for i := 0; i < 8; i++ {
					w.f(fmt.Sprintf("%s/%d", prefix, i), 0o644, strings.Repeat(prefix, 300*(i+1)))
				}
			}
			return w
		}()},

		{name: "TypeChanges", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(registrytest.File("f2d", "file"), registrytest.Dir("d2f/", 0o700), registrytest.File("d2f/x", "x"), registrytest.Symlink("s2d", "target"), registrytest.File("target/t", "t"),
					registrytest.Dir("bin/", 0o755), registrytest.File("bin/sh", "old sh"), registrytest.Dir("usr/", 0o755), registrytest.Dir("usr/bin/", 0o755),
					registrytest.Dir("lib/", 0o755), registrytest.File("lib/libc", "old libc"), registrytest.Symlink("d2s", "target")),
				registrytest.GzipLayer(registrytest.Dir("f2d/", 0o750), registrytest.File("f2d/y", "y"), registrytest.File("d2f", "now a file"), registrytest.Dir("s2d/", 0o711), registrytest.File("s2d/z", "z"),
					registrytest.Symlink("bin", "usr/bin"), registrytest.File("usr/bin/sh", "new sh"), registrytest.Symlink("lib", "usr/lib"), registrytest.File("usr/lib/libc", "new libc"),
					registrytest.Dir("d2s/", 0o700)),
				registrytest.GzipLayer(registrytest.Symlink("d2s", "/usr/lib")),
			}
		}, want: rootfs{}.d("f2d", 0o750).f("f2d/y", 0o644, "y").f("d2f", 0o644, "now a file").
			d("s2d", 0o711).f("s2d/z", 0o644, "z").f("target/t", 0o644, "t").
			l("bin", "usr/bin").d("usr", 0o755).d("usr/bin", 0o755).f("usr/bin/sh", 0o644, "new sh").
			l("lib", "usr/lib").f("usr/lib/libc", 0o644, "new libc").l("d2s", "/usr/lib")},

		{name: "ImplicitParentKeepsLower", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(reg{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
					reg{Name: "var/", Type: tar.TypeDir, Mode: 0o700, Uid: 5, Gid: 6, ModTime: t1},
					reg{Name: "opt/", Type: tar.TypeDir, Mode: 0o2755, Gid: 50, ModTime: t2, Xattrs: map[string]string{"user.k": "v"}}),
				registrytest.GzipLayer(registrytest.File("tmp/x", "x"), registrytest.File("var/y", "y"), registrytest.File("opt/z", "z"), registrytest.File("opt/deeper/w", "w")),
			}
		}, want: rootfs{}.d("tmp", 0o1777).f("tmp/x", 0o644, "x").
			add("var", fromImage(testtree.Dir(0o700)).own(5, 6).at(t1.Round(time.Second))).f("var/y", 0o644, "y").
			add("opt", fromImage(testtree.Dir(testtree.OctalMode(0o2755))).own(0, 50).at(t2.Round(time.Second)).x(xattrs("user.k", "v"))).
			f("opt/z", 0o644, "z").imp("opt/deeper").f("opt/deeper/w", 0o644, "w")},

		{name: "WhiteoutOpaqueKeepsSameLayer", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(registrytest.File("d1/a", "a"), registrytest.File("d1/b/c", "c"), registrytest.Dir("d2/", 0o750), registrytest.File("d2/a", "a"), registrytest.Dir("d2/b/", 0o700), registrytest.File("d2/b/c", "c"),
					registrytest.File("d3/a", "a")),
				registrytest.GzipLayer(registrytest.File("d1/new1", "1"), registrytest.File("d1/.wh..wh..opq", ""), registrytest.File("d1/new2", "2"),
					registrytest.File("d2/.wh..wh..opq", ""), registrytest.File("d2/b/x", "x"),
					registrytest.File("d3/z", "z"), registrytest.File("d3/.wh..wh..opq", ""), registrytest.File("d3/a", "new a")),
			}
		}, want: rootfs{}.imp("d1").f("d1/new1", 0o644, "1").f("d1/new2", 0o644, "2").
			d("d2", 0o750).imp("d2/b").f("d2/b/x", 0o644, "x").
			imp("d3").f("d3/z", 0o644, "z").f("d3/a", 0o644, "new a")},

		{name: "WhiteoutRules", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(registrytest.Symlink("dang", "nowhere"), registrytest.File("sub/tree/x", "x"), registrytest.File("re", "old"), registrytest.File("h1", "h"), registrytest.Hardlink("h2", "h1"),
					registrytest.Symlink("dirlink", "sub")),
				registrytest.GzipLayer(registrytest.File(".wh.dang", ""), registrytest.File(".wh.sub", ""), registrytest.File(".wh.nothing", ""), registrytest.File("missing/.wh.x", ""),
					registrytest.File(".wh.re", ""), registrytest.File("re", "new"), registrytest.File(".wh.h1", ""), registrytest.File(".wh.dirlink", "")),
			}
		}, want: rootfs{}.imp("missing").f("re", 0o644, "new").f("h2", 0o644, "h")},
	}
}

func TestFidelity(t *testing.T) {
	e2e.NeedRoot(t)
	since := time.Now()
	r := registrytest.Start(t, registrytest.Config{})
	for _, tc := range cases() {
		repo := "fidelity/" + strings.ToLower(tc.name)
		if tc.push != nil {
			tc.push(t, r, repo)
		} else {
			r.Push(t, repo, "latest", registrytest.Image{Layers: tc.layers(t)})
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			got := map[string]map[string]entry{}
			for _, mode := range []string{"cache", "no"} {
				cache := base + "/cache"
				if mode == "no" {
					cache = "no"
				}
				dest := base + "/rootfs-" + mode
				e2e.MustPull(t, nil, "--cache", cache, r.Host+"/"+repo, dest)
				got[mode] = testtree.Scan(t, dest)
				t.Run(mode, func(t *testing.T) {
					compare(t, got[mode], tc.want)
					if g := linkGroups(got[mode]); g != tc.links {
						t.Errorf("hardlink groups: %q, want %q", g, tc.links)
					}
					if tc.check != nil {
						tc.check(t, dest)
					}
				})
			}
			e2e.SameFS(t, "--cache and --cache=no trees", got["cache"], got["no"], since)
		})
	}
}
