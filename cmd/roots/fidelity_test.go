package main

// TestFidelity pulls images that exercise the OCI layer rules, with the cache
// (hardlink assembly) and without it (--cache=no), and checks the rootfs file
// by file: type, mode with setuid/setgid/sticky, owner, content, link target,
// device numbers, xattrs, mtimes (files, symlinks and directories) and
// hardlink groups. Scanning and tar helpers are in attack_test.go; the
// package-level names of this file start with "fid".

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

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// fidWant is one expected entry; a zero Mtime is not checked (an implicit directory's time is
// when it was made).
type fidWant testtree.Entry

func fidW(e entry) fidWant {
	e.Mtime = registrytest.EntryTime.UnixNano()
	return fidWant(e)
}

func (w fidWant) own(uid, gid int) fidWant { w.UID, w.GID = uid, gid; return w }
func (w fidWant) at(t time.Time) fidWant   { w.Mtime = t.UnixNano(); return w }
func (w fidWant) x(xattrs string) fidWant  { w.Xattrs = xattrs; return w }
func (w fidWant) devn(major, minor int) fidWant {
	w.Rdev = fmt.Sprintf("%d:%d", major, minor)
	return w
}

// fidTree is an expected rootfs; parents not added explicitly are implicit
// directories (0755 root:root, any mtime).
type fidTree map[string]fidWant

func (t fidTree) add(p string, w fidWant) fidTree {
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if _, ok := t[d]; !ok {
			t[d] = fidWant(dir(0o755))
		}
	}
	t[p] = w
	return t
}
func (t fidTree) f(p string, mode uint32, body string) fidTree {
	return t.add(p, fidW(file(testtree.OctalMode(mode), body)))
}
func (t fidTree) d(p string, mode uint32) fidTree {
	return t.add(p, fidW(dir(testtree.OctalMode(mode))))
}
func (t fidTree) l(p, target string) fidTree { return t.add(p, fidW(link(target))) }
func (t fidTree) imp(p string) fidTree       { return t.add(p, fidWant(dir(0o755))) }

// fidCompare fails unless the scan got has exactly the entries of want: everything an image
// defines but hardlinks (see fidLinkGroups).
func fidCompare(t testing.TB, got map[string]entry, want fidTree) {
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

// fidLinkGroups lists the sets of names that share an inode, "="-joined, space-separated.
func fidLinkGroups(m map[string]entry) string {
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

// fidCapNetRaw is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_raw (13), permitted and effective: "cap_net_raw=ep".
var fidCapNetRaw = func() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000|0x000001) // revision 2, effective
	binary.LittleEndian.PutUint32(b[4:], 1<<13)               // permitted, low word
	return string(b)
}()

// fidX formats xattrs as testtree.Scan does.
func fidX(kv ...string) string {
	var pairs []string
	for i := 0; i < len(kv); i += 2 {
		pairs = append(pairs, fmt.Sprintf("%s=%q", kv[i], []byte(kv[i+1])))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, " ")
}

// fidSplit compresses a tar in two independently compressed parts (gzip
// members or zstd frames), cut at a block boundary near the middle.
func fidSplit(t testing.TB, raw []byte, c registrytest.Compression) []byte {
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

// fidSkippable is a zstd stream that starts with a skippable frame.
func fidSkippable(t testing.TB, raw []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	skip := []byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 's', 'k', 'i', 'p'}
	return enc.EncodeAll(raw, skip)
}

type fidCase struct {
	name string
	// layers, or push for images registrytest.Image cannot describe.
	layers func(t testing.TB) []registrytest.Layer
	push   func(t testing.TB, r *registrytest.Registry, repo string) registrytest.Pushed
	want   fidTree
	links  string                          // hardlink groups as atkLinkGroups prints them
	check  func(t *testing.T, dest string) // further checks
}

func fidCases() []fidCase {
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
		return atkRaw(a.Bytes())
	}
	body := func(name string) string { return name + " body" }

	return []fidCase{
		{name: "OwnersByNumber", layers: func(t testing.TB) []registrytest.Layer {
			var ents []reg
			for _, id := range []int{0, 1, 1000, 65534, 1<<21 - 1, 1 << 21, 1 << 31, 1<<32 - 2} {
				ents = append(ents, reg{Name: fmt.Sprintf("o/%d", id), Body: []byte("x"), Uid: id, Gid: id})
			}
			ents = append(ents, reg{Name: "od/", Type: tar.TypeDir, Uid: 3000000, Gid: 3000001},
				reg{Name: "ol", Type: tar.TypeSymlink, Linkname: "o/0", Uid: 1 << 22, Gid: 1<<22 + 1})
			gnu := testtree.NewTar(t).Add(tar.Header{Name: "g/big", Uid: 1<<21 + 5, Gid: 1<<30 + 7, Format: tar.FormatGNU}, "g").
				Add(tar.Header{Name: "g/dir/", Typeflag: tar.TypeDir, Uid: 1 << 25, Gid: 1 << 26, Format: tar.FormatGNU}, "")
			return []registrytest.Layer{atkL(ents...), atkRaw(gnu.Bytes())}
		}, want: func() fidTree {
			w := fidTree{}
			for _, id := range []int{0, 1, 1000, 65534, 1<<21 - 1, 1 << 21, 1 << 31, 1<<32 - 2} {
				w.add(fmt.Sprintf("o/%d", id), fidW(file(0o644, "x")).own(id, id))
			}
			w.add("od", fidW(dir(0o755)).own(3000000, 3000001)).add("ol", fidW(link("o/0")).own(1<<22, 1<<22+1))
			w.add("g/big", fidW(file(0o644, "g")).own(1<<21+5, 1<<30+7)).add("g/dir", fidW(dir(0o755)).own(1<<25, 1<<26))
			return w
		}()},

		{name: "SpecialModeBits", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{atkL(
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
			), atkRaw(testtree.NewTar(t).Add(tar.Header{Name: "bin/none", Mode: testtree.ZeroMode}, "s").Bytes())}
		}, want: fidTree{}.
			add("bin/suid", fidW(file(testtree.OctalMode(0o4755), "s"))).
			add("bin/suid-user", fidW(file(testtree.OctalMode(0o4755), "s")).own(1000, 1000)).
			add("bin/sgid", fidW(file(testtree.OctalMode(0o2755), "s")).own(0, 50)).
			add("bin/both", fidW(file(testtree.OctalMode(0o6755), "s")).own(1000, 50)).
			add("bin/suid-only", fidW(file(testtree.OctalMode(0o4000), "s"))).
			add("bin/none", fidW(file(0, "s"))).
			add("bin/sticky-file", fidW(file(testtree.OctalMode(0o1644), "s"))).
			d("tmp", 0o1777).
			add("shared", fidW(dir(testtree.OctalMode(0o2775))).own(0, 50)).
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
				atkRaw(lower.Bytes()),
				atkL(atkF("ro/added", "a"), atkF("none/y", "y"), atkF("ro/sub/deeper/z", "z")),
			}
		}, want: fidTree{}.d("ro", 0o500).f("ro/f", 0o444, "f").d("ro/sub", 0).f("ro/sub/g", 0o644, "g").
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
				atkL(atkF("dated/new", "n"), atkF("dated/sub/new", "n")),
			}
		}, want: fidTree{}.
			add("dated", fidW(dir(0o755)).at(t1)).
			add("dated/file", fidW(file(0o644, body("dated/file"))).at(t2)).
			add("dated/link", fidW(link("file")).at(t3)).
			add("dated/sub", fidW(dir(0o755)).at(t4)).
			add("dated/sub/child", fidW(file(0o644, body("dated/sub/child"))).at(t1)).
			add("old", fidW(file(0o644, body("old"))).at(t3)).
			add("fifo", fidW(entry{Type: "p", Mode: 0o644}).at(t4)).
			f("dated/new", 0o644, "n").f("dated/sub/new", 0o644, "n")},

		{name: "Xattrs", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(atkF("ovl/lower", "l")),
				atkL(
					reg{Name: "f", Body: []byte("f"), Xattrs: map[string]string{"user.a": "1", "user.bin": "\x00\x01\xff", "trusted.t": "t"}},
					reg{Name: "d/", Type: tar.TypeDir, Xattrs: map[string]string{"user.d": "dir"}},
					reg{Name: "s", Type: tar.TypeSymlink, Linkname: "f", Xattrs: map[string]string{"trusted.sym": "link"}},
					reg{Name: "bin/ping", Body: []byte("ping"), Mode: 0o755, Xattrs: map[string]string{"security.capability": fidCapNetRaw}},
					reg{Name: "bin/ping-user", Body: []byte("ping"), Mode: 0o750, Uid: 1000, Gid: 1000,
						Xattrs: map[string]string{"security.capability": fidCapNetRaw}},
					reg{Name: "bin/ping2", Type: tar.TypeLink, Linkname: "bin/ping"},
					reg{Name: "p", Type: tar.TypeFifo, Xattrs: map[string]string{"trusted.p": "fifo"}},
					// overlayfs xattrs from a tar are dropped: ovl/ stays a plain directory.
					reg{Name: "ovl/", Type: tar.TypeDir, Xattrs: map[string]string{"trusted.overlay.opaque": "y", "user.k": "v"}},
					atkF("ovl/upper", "u"),
				),
			}
		}, want: fidTree{}.
			add("f", fidW(file(0o644, "f")).x(fidX("user.a", "1", "user.bin", "\x00\x01\xff", "trusted.t", "t"))).
			add("d", fidW(dir(0o755)).x(fidX("user.d", "dir"))).
			add("s", fidW(link("f")).x(fidX("trusted.sym", "link"))).
			add("bin/ping", fidW(file(0o755, "ping")).x(fidX("security.capability", fidCapNetRaw))).
			add("bin/ping2", fidW(file(0o755, "ping")).x(fidX("security.capability", fidCapNetRaw))).
			add("bin/ping-user", fidW(file(0o750, "ping")).own(1000, 1000).x(fidX("security.capability", fidCapNetRaw))).
			add("p", fidW(entry{Type: "p", Mode: 0o644}).x(fidX("trusted.p", "fifo"))).
			add("ovl", fidW(dir(0o755)).x(fidX("user.k", "v"))).
			f("ovl/lower", 0o644, "l").f("ovl/upper", 0o644, "u"),
			links: "bin/ping=bin/ping2"},

		{name: "Devices", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{atkL(
				reg{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
				reg{Name: "dev/tty0", Type: tar.TypeChar, Mode: 0o620, Gid: 5, Devmajor: 4, Devminor: 0},
				reg{Name: "dev/big", Type: tar.TypeChar, Mode: 0o600, Devmajor: 259, Devminor: 65536},
				reg{Name: "dev/loop0", Type: tar.TypeBlock, Mode: 0o660, Gid: 6, Devmajor: 7, Devminor: 0},
				reg{Name: "dev/sdb", Type: tar.TypeBlock, Mode: 0o660, Devmajor: 8, Devminor: 16},
				reg{Name: "run/fifo", Type: tar.TypeFifo, Mode: 0o600, Uid: 1000, Gid: 1000},
				reg{Name: "run/fifo-sticky", Type: tar.TypeFifo, Mode: 0o1666},
			)}
		}, want: fidTree{}.
			add("dev/null", fidW(entry{Type: "c", Mode: 0o666}).devn(1, 3)).
			add("dev/tty0", fidW(entry{Type: "c", Mode: 0o620, GID: 5}).devn(4, 0)).
			add("dev/big", fidW(entry{Type: "c", Mode: 0o600}).devn(259, 65536)).
			add("dev/loop0", fidW(entry{Type: "b", Mode: 0o660, GID: 6}).devn(7, 0)).
			add("dev/sdb", fidW(entry{Type: "b", Mode: 0o660}).devn(8, 16)).
			add("run/fifo", fidW(entry{Type: "p", Mode: 0o600, UID: 1000, GID: 1000})).
			add("run/fifo-sticky", fidW(entry{Type: "p", Mode: testtree.OctalMode(0o1666)}))},

		{name: "Hardlinks", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(reg{Name: "lower", Body: []byte("l"), Mode: 0o4755}, atkF("lower2", "l2")),
				atkL(atkF("a", "a"), atkH("b", "a"), atkH("c/d", "/a"), atkH("c/e", "./c/../a"),
					reg{Name: "s", Body: []byte("s"), Mode: 0o4750, Uid: 1000, Gid: 1000}, atkH("s2", "s"),
					atkH("up", "lower"), atkH("sub/up2", "lower2")),
				// A later layer replaces one name of a group: the others keep the old content.
				atkL(atkF("lower2", "new")),
			}
		}, want: fidTree{}.
			add("lower", fidW(file(testtree.OctalMode(0o4755), "l"))).add("up", fidW(file(testtree.OctalMode(0o4755), "l"))).
			f("lower2", 0o644, "new").f("sub/up2", 0o644, "l2").
			f("a", 0o644, "a").f("b", 0o644, "a").f("c/d", 0o644, "a").f("c/e", 0o644, "a").
			add("s", fidW(file(testtree.OctalMode(0o4750), "s")).own(1000, 1000)).add("s2", fidW(file(testtree.OctalMode(0o4750), "s")).own(1000, 1000)),
			links: "a=b=c/d=c/e lower=up s=s2"},

		{name: "SymlinksAsWritten", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{atkL(
				atkS("abs", "/etc/passwd"), atkS("rel", "../x/y"), atkS("dangling", "nowhere"), atkS("loop", "loop"),
				atkS("l1", "l2"), atkS("l2", "l1"), atkS("up", "../../../.."), atkS("dot", "."), atkS("slash", "/"),
				atkS("odd", "a b\tc\nd\xff"), atkS("sub/rel", "../abs"), atkS("trailing", "dir/"),
				reg{Name: "own", Type: tar.TypeSymlink, Linkname: "x", Uid: 1000, Gid: 1001, ModTime: t1},
			)}
		}, want: fidTree{}.l("abs", "/etc/passwd").l("rel", "../x/y").l("dangling", "nowhere").l("loop", "loop").
			l("l1", "l2").l("l2", "l1").l("up", "../../../..").l("dot", ".").l("slash", "/").l("odd", "a b\tc\nd\xff").
			l("sub/rel", "../abs").l("trailing", "dir/").
			add("own", fidW(link("x")).own(1000, 1001).at(t1.Round(time.Second)))},

		{name: "LongNames", layers: func(t testing.TB) []registrytest.Layer {
			var ls []registrytest.Layer
			for p, f := range map[string]tar.Format{"PAX": tar.FormatPAX, "GNU": tar.FormatGNU} {
				a := testtree.NewTar(t).
					Add(tar.Header{Name: p + "/" + long('a', 200) + "/" + long('b', 200), Format: f}, "long path").
					Add(tar.Header{Name: p + "/" + long('n', 255), Format: f}, "255").
					Add(tar.Header{Name: p + "/" + strings.Repeat(long('c', 200)+"/", 6) + "deep", Format: f}, "deep").
					Add(tar.Header{Name: p + "/sym", Typeflag: tar.TypeSymlink, Linkname: strings.Repeat("../", 300) + long('t', 100), Format: f}, "").
					Add(tar.Header{Name: p + "/" + long('h', 250) + "/hard", Typeflag: tar.TypeLink, Linkname: p + "/" + long('a', 200) + "/" + long('b', 200), Format: f}, "")
				ls = append(ls, atkRaw(a.Bytes()))
			}
			return ls
		}, want: func() fidTree {
			w := fidTree{}
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
				ents = append(ents, atkF("pax/"+n, n))
			}
			gnu := testtree.NewTar(t)
			for _, n := range names {
				gnu.Add(tar.Header{Name: "gnu/" + n, Format: tar.FormatGNU}, n)
			}
			return []registrytest.Layer{atkL(ents...), atkRaw(gnu.Bytes())}
		}, want: func() fidTree {
			w := fidTree{}
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
			return []registrytest.Layer{atkRaw(a.Bytes())}
		}, want: fidTree{}.f("a", 0o644, "a").d("b", 0o755)},

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
			return []registrytest.Layer{atkRaw(raw)}
		}, want: fidTree{}.
			add("sparse/gnu", fidW(testtree.Sparse(0o644, 1<<30, testtree.Frag{Off: 0, Data: "head"}, testtree.Frag{Off: 1 << 29, Data: "middle"}, testtree.Frag{Off: 1<<30 - 4, Data: "tail"}))).
			add("sparse/pax", fidW(testtree.Sparse(0o644, 1<<30, testtree.Frag{Off: 0, Data: "head"}, testtree.Frag{Off: 1 << 29, Data: "middle"}, testtree.Frag{Off: 1<<30 - 4, Data: "tail"}))).
			add("sparse/pax01", fidW(testtree.Sparse(0o644, 64<<20, testtree.Frag{Off: 4096, Data: "x"}, testtree.Frag{Off: 32 << 20, Data: "y"}))).
			add("sparse/small", fidW(testtree.Sparse(0o644, 10000, testtree.Frag{Off: 3000, Data: "in\x00the\x00middle"}, testtree.Frag{Off: 9990, Data: "0123456789"}))).
			add("sparse/allhole", fidW(testtree.Sparse(0o644, 5<<20))),
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
					ents = append(ents, atkF(fmt.Sprintf("%s/%d", prefix, i), strings.Repeat(prefix, 300*(i+1))))
				}
				return registrytest.TarBytes(ents)
			}
			gz, zs, sk, plain := tarOf("gzip"), tarOf("zstd"), tarOf("skip"), tarOf("none")
			return atkPush(t, r, repo, "latest", []atkLayer{
				{MediaType: ocispec.MediaTypeImageLayerGzip, Blob: fidSplit(t, gz, registrytest.Gzip), DiffID: digest.FromBytes(gz)},
				{MediaType: ocispec.MediaTypeImageLayerZstd, Blob: fidSplit(t, zs, registrytest.Zstd), DiffID: digest.FromBytes(zs)},
				{MediaType: ocispec.MediaTypeImageLayerZstd, Blob: fidSkippable(t, sk), DiffID: digest.FromBytes(sk)},
				{MediaType: ocispec.MediaTypeImageLayer, Blob: plain, DiffID: digest.FromBytes(plain)},
			}, nil)
		}, want: func() fidTree {
			w := fidTree{}
			for _, prefix := range []string{"gzip", "zstd", "skip", "none"} {
				for i := 0; i < 8; i++ {
					w.f(fmt.Sprintf("%s/%d", prefix, i), 0o644, strings.Repeat(prefix, 300*(i+1)))
				}
			}
			return w
		}()},

		{name: "TypeChanges", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(atkF("f2d", "file"), atkD("d2f/", 0o700), atkF("d2f/x", "x"), atkS("s2d", "target"), atkF("target/t", "t"),
					atkD("bin/", 0o755), atkF("bin/sh", "old sh"), atkD("usr/", 0o755), atkD("usr/bin/", 0o755),
					atkD("lib/", 0o755), atkF("lib/libc", "old libc"), atkS("d2s", "target")),
				atkL(atkD("f2d/", 0o750), atkF("f2d/y", "y"), atkF("d2f", "now a file"), atkD("s2d/", 0o711), atkF("s2d/z", "z"),
					atkS("bin", "usr/bin"), atkF("usr/bin/sh", "new sh"), atkS("lib", "usr/lib"), atkF("usr/lib/libc", "new libc"),
					atkD("d2s/", 0o700)),
				atkL(atkS("d2s", "/usr/lib")),
			}
		}, want: fidTree{}.d("f2d", 0o750).f("f2d/y", 0o644, "y").f("d2f", 0o644, "now a file").
			d("s2d", 0o711).f("s2d/z", 0o644, "z").f("target/t", 0o644, "t").
			l("bin", "usr/bin").d("usr", 0o755).d("usr/bin", 0o755).f("usr/bin/sh", 0o644, "new sh").
			l("lib", "usr/lib").f("usr/lib/libc", 0o644, "new libc").l("d2s", "/usr/lib")},

		{name: "ImplicitParentKeepsLower", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(reg{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
					reg{Name: "var/", Type: tar.TypeDir, Mode: 0o700, Uid: 5, Gid: 6, ModTime: t1},
					reg{Name: "opt/", Type: tar.TypeDir, Mode: 0o2755, Gid: 50, ModTime: t2, Xattrs: map[string]string{"user.k": "v"}}),
				atkL(atkF("tmp/x", "x"), atkF("var/y", "y"), atkF("opt/z", "z"), atkF("opt/deeper/w", "w")),
			}
		}, want: fidTree{}.d("tmp", 0o1777).f("tmp/x", 0o644, "x").
			add("var", fidW(dir(0o700)).own(5, 6).at(t1.Round(time.Second))).f("var/y", 0o644, "y").
			add("opt", fidW(dir(testtree.OctalMode(0o2755))).own(0, 50).at(t2.Round(time.Second)).x(fidX("user.k", "v"))).
			f("opt/z", 0o644, "z").imp("opt/deeper").f("opt/deeper/w", 0o644, "w")},

		{name: "WhiteoutOpaqueKeepsSameLayer", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(atkF("d1/a", "a"), atkF("d1/b/c", "c"), atkD("d2/", 0o750), atkF("d2/a", "a"), atkD("d2/b/", 0o700), atkF("d2/b/c", "c"),
					atkF("d3/a", "a")),
				atkL(atkF("d1/new1", "1"), atkWh("d1/.wh..wh..opq"), atkF("d1/new2", "2"),
					atkWh("d2/.wh..wh..opq"), atkF("d2/b/x", "x"),
					atkF("d3/z", "z"), atkWh("d3/.wh..wh..opq"), atkF("d3/a", "new a")),
			}
		}, want: fidTree{}.imp("d1").f("d1/new1", 0o644, "1").f("d1/new2", 0o644, "2").
			d("d2", 0o750).imp("d2/b").f("d2/b/x", 0o644, "x").
			imp("d3").f("d3/z", 0o644, "z").f("d3/a", 0o644, "new a")},

		{name: "WhiteoutRules", layers: func(t testing.TB) []registrytest.Layer {
			return []registrytest.Layer{
				atkL(atkS("dang", "nowhere"), atkF("sub/tree/x", "x"), atkF("re", "old"), atkF("h1", "h"), atkH("h2", "h1"),
					atkS("dirlink", "sub")),
				atkL(atkWh(".wh.dang"), atkWh(".wh.sub"), atkWh(".wh.nothing"), atkWh("missing/.wh.x"),
					atkWh(".wh.re"), atkF("re", "new"), atkWh(".wh.h1"), atkWh(".wh.dirlink")),
			}
		}, want: fidTree{}.imp("missing").f("re", 0o644, "new").f("h2", 0o644, "h")},
	}
}

func TestFidelity(t *testing.T) {
	needRoot(t)
	since := time.Now()
	r := registrytest.Start(t, registrytest.Config{})
	for _, tc := range fidCases() {
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
				mustPull(t, nil, "--cache", cache, r.Host+"/"+repo, dest)
				got[mode] = testtree.Scan(t, dest)
				t.Run(mode, func(t *testing.T) {
					fidCompare(t, got[mode], tc.want)
					if g := fidLinkGroups(got[mode]); g != tc.links {
						t.Errorf("hardlink groups: %q, want %q", g, tc.links)
					}
					if tc.check != nil {
						tc.check(t, dest)
					}
				})
			}
			atkSameFS(t, "--cache and --cache=no trees", got["cache"], got["no"], since)
		})
	}
}
