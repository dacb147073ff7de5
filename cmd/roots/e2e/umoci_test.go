package e2e

// Differential test: the same images unpacked by roots and by umoci (fetched
// with skopeo), compared file by file. umoci is an independent implementation
// of the OCI layer rules; where the two differ, one of them is wrong, and the
// exceptions below say which and why.

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// umociCase is one image of the differential table, and the differences from
// umoci that are explained (each with its reason in the table).
type umociCase struct {
	name    string
	image   registrytest.Image
	excused []testtree.DiffOption // testtree.Excuse
	// roots, when set, turns umoci's tree into the one roots documents where it
	// deliberately differs; the rest is still compared with umoci.
	roots func(tree map[string]entry)
	// fails, when set: roots refuses the image on purpose. The pull must fail
	// cleanly (exit 1, one line holding fails, no DEST); umoci is not run.
	fails string
}

// Times used by the table, distinct so that a wrong mtime shows which entry it came from.
var (
	tFile = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	tDir  = time.Date(2002, 3, 4, 5, 6, 7, 0, time.UTC)
	tLink = time.Date(2003, 4, 5, 6, 7, 8, 0, time.UTC)
	tLate = time.Date(2040, 5, 6, 7, 8, 9, 0, time.UTC) // past 2038
)

// capNetRaw is a security.capability value (VFS_CAP_REVISION_2, effective)
// granting cap_net_raw, as setcap cap_net_raw+ep writes it.
const capNetRaw = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// rawTar encodes entries as a tar in the given format (for GNU long names and
// sub-second PAX mtimes, which registrytest's default writer does not make).
func rawTar(t testing.TB, format tar.Format, entries []reg) []byte {
	t.Helper()
	a := testtree.NewTar(t)
	for _, e := range entries {
		e.Format = format
		a.Entries(e)
	}
	return a.Bytes()
}

// umociCases is the table. Every case is gzip or uncompressed (umoci 0.4.7
// has no zstd) and has no GNU sparse files or PAX global headers (umoci
// ignores both). Run as root, umoci adds no xattrs of its own (it writes
// user.rootlesscontainers only with --rootless), so xattrs are compared whole.
func umociCases(t testing.TB) []umociCase {
	long := strings.Repeat("l", 100)
	name255 := strings.Repeat("n", 255)
	return []umociCase{
		{name: "EntryTypes", image: registrytest.Image{Layers: []registrytest.Layer{{Compression: "gzip", Entries: []reg{
			{Name: "etc/", Type: tar.TypeDir, ModTime: tDir},
			{Name: "etc/empty", ModTime: tFile},
			{Name: "etc/data", Body: []byte("data\n"), ModTime: tFile},
			{Name: "etc/hard", Type: tar.TypeLink, Linkname: "etc/data"},
			{Name: "bin/sh", Body: []byte("#!sh"), Mode: 0o755, ModTime: tFile},
			{Name: "link-abs", Type: tar.TypeSymlink, Linkname: "/etc/data", ModTime: tLink},
			{Name: "link-rel", Type: tar.TypeSymlink, Linkname: "etc/data", ModTime: tLink},
			{Name: "link-dangling", Type: tar.TypeSymlink, Linkname: "nowhere/at/all", ModTime: tLink},
			{Name: "link-up", Type: tar.TypeSymlink, Linkname: "../../../etc/data", ModTime: tLink},
			{Name: "link-loop-a", Type: tar.TypeSymlink, Linkname: "link-loop-b"},
			{Name: "link-loop-b", Type: tar.TypeSymlink, Linkname: "link-loop-a"},
			{Name: "link-self", Type: tar.TypeSymlink, Linkname: "link-self"},
			{Name: "dev/", Type: tar.TypeDir, ModTime: tDir},
			{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: tFile},
			{Name: "dev/loop0", Type: tar.TypeBlock, Mode: 0o660, Gid: 6, Devmajor: 7, Devminor: 0, ModTime: tFile},
			{Name: "dev/big", Type: tar.TypeChar, Mode: 0o600, Devmajor: 240, Devminor: 70000},
			{Name: "dev/fifo", Type: tar.TypeFifo, Mode: 0o600, ModTime: tFile},
		}}}}},

		{name: "OwnersAndModes", image: registrytest.Image{Layers: []registrytest.Layer{{Compression: "none", Entries: []reg{
			// layer.md: "If the entry and the existing path are both directories, then the
			// existing path's attributes MUST be replaced by those of the entry." The root
			// gets 0751 7:8 and this mtime (umoci and roots; containerd ignores "./").
			{Name: "./", Type: tar.TypeDir, Mode: 0o751, Uid: 7, Gid: 8, ModTime: tDir},
			{Name: "owned/", Type: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000, ModTime: tDir},
			{Name: "owned/file", Mode: 0o640, Uid: 1234, Gid: 5678, ModTime: tFile},
			{Name: "owned/big", Mode: 0o600, Uid: 3000000, Gid: 4000000, ModTime: tFile},
			{Name: "owned/setuid", Mode: 0o4755, Uid: 1000, Body: []byte("u")},
			{Name: "owned/setgid", Mode: 0o2755, Gid: 50, Body: []byte("g")},
			{Name: "owned/both", Mode: 0o6711, Uid: 1, Gid: 2, Body: []byte("ug")},
			{Name: "owned/zero", Mode: 0o0000, Body: []byte("0")},
			{Name: "owned/link", Type: tar.TypeSymlink, Linkname: "file", Uid: 1000, Gid: 1001, ModTime: tLink},
			{Name: "owned/fifo", Type: tar.TypeFifo, Mode: 0o620, Uid: 33, Gid: 33},
			{Name: "sticky/", Type: tar.TypeDir, Mode: 0o1777, ModTime: tDir},
			{Name: "setgid-dir/", Type: tar.TypeDir, Mode: 0o2775, Gid: 100, ModTime: tDir},
			{Name: "setgid-dir/f", Body: []byte("f")},
			{Name: "locked/", Type: tar.TypeDir, Mode: 0o500, ModTime: tDir},
			{Name: "locked/inner/", Type: tar.TypeDir, Mode: 0o000, ModTime: tDir},
			{Name: "locked/inner/f", Mode: 0o400, Body: []byte("deep"), ModTime: tFile},
		}}}}},

		{name: "Xattrs", image: registrytest.Image{Layers: []registrytest.Layer{{Compression: "gzip", Entries: []reg{
			{Name: "caps/", Type: tar.TypeDir, Xattrs: map[string]string{"user.dir": "d"}, ModTime: tDir},
			{Name: "caps/ping", Mode: 0o755, Body: []byte("ping"), Xattrs: map[string]string{"security.capability": capNetRaw}},
			{Name: "caps/setuid-and-cap", Mode: 0o4755, Uid: 1000, Body: []byte("both"),
				Xattrs: map[string]string{"security.capability": capNetRaw, "user.why": "chown clears caps and setuid: order matters"}},
			{Name: "caps/hard", Type: tar.TypeLink, Linkname: "caps/ping"},
			{Name: "xfile", Body: []byte("x"), Xattrs: map[string]string{
				"user.binary": "\x00\x01\xff", "user.long": strings.Repeat("v", 2000)}},
			{Name: "xempty", Body: []byte("e"), Xattrs: map[string]string{"user.empty": ""}},
			{Name: "xtrusted", Body: []byte("t"), Xattrs: map[string]string{"trusted.roots-test": "t"}},
			// Linux allows no user.* xattr on a symlink or FIFO (umoci fails on one); trusted.* it does.
			{Name: "xlink", Type: tar.TypeSymlink, Linkname: "xfile", Xattrs: map[string]string{"trusted.on-link": "l"}},
			{Name: "xfifo", Type: tar.TypeFifo, Xattrs: map[string]string{"trusted.on-fifo": "p"}},
		}}}}, excused: []testtree.DiffOption{
			// umoci drops an xattr whose value is empty (SCHILY.xattr.user.empty=""); roots
			// sets it. Linux, Go's archive/tar and libarchive all keep empty values, and the
			// spec says xattrs MUST be included: roots is right. (POSIX pax says an empty
			// record deletes a previous value of the same name; there is none here.)
			testtree.Excuse("xempty", testtree.Xattrs),
		}},

		{name: "Hardlinks", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "a/orig", Mode: 0o4755, Uid: 5, Body: []byte("orig"), ModTime: tFile},
				{Name: "a/link1", Type: tar.TypeLink, Linkname: "a/orig"},
				{Name: "b/link2", Type: tar.TypeLink, Linkname: "a/orig"},
				{Name: "./a/link3", Type: tar.TypeLink, Linkname: "./a/orig"},
				{Name: "a/lower", Body: []byte("lower"), Mode: 0o600, ModTime: tFile},
				{Name: "a/replaced", Body: []byte("old")},
				{Name: "d/sym", Type: tar.TypeSymlink, Linkname: "target", ModTime: tLink},
				{Name: "d/symhard", Type: tar.TypeLink, Linkname: "d/sym"},
				{Name: "d/fifo", Type: tar.TypeFifo},
				{Name: "d/fifohard", Type: tar.TypeLink, Linkname: "d/fifo"},
				{Name: "d/empty"},
				{Name: "d/emptyhard", Type: tar.TypeLink, Linkname: "d/empty"},
			}},
			{Compression: "none", Entries: []reg{
				{Name: "c/up", Type: tar.TypeLink, Linkname: "a/lower"},
				{Name: "a/replaced", Body: []byte("new"), Mode: 0o640},
				{Name: "c/to-new", Type: tar.TypeLink, Linkname: "a/replaced"},
				{Name: "c/to-link1", Type: tar.TypeLink, Linkname: "a/link1"},
			}},
		}}},

		{name: "Whiteouts", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "w/", Type: tar.TypeDir, Mode: 0o750, ModTime: tDir},
				{Name: "w/file", Body: []byte("file")},
				{Name: "w/dir/sub/x", Body: []byte("x")},
				{Name: "w/sym", Type: tar.TypeSymlink, Linkname: "file"},
				{Name: "w/dangling", Type: tar.TypeSymlink, Linkname: "missing"},
				{Name: "w/dirlink", Type: tar.TypeSymlink, Linkname: "dir"},
				{Name: "w/keep", Body: []byte("keep")},
				{Name: "w/hard", Type: tar.TypeLink, Linkname: "w/keep"},
				{Name: "w/s1", Body: []byte("lower s1")},
				{Name: "w/s2", Body: []byte("lower s2")},
				{Name: "w/reborn/old", Body: []byte("old")},
				{Name: "w/rd1/old", Body: []byte("old")},
				{Name: "w/rd2/old", Body: []byte("old")},
			}},
			{Compression: "gzip", Entries: []reg{
				{Name: "w/.wh.file"},
				{Name: "w/.wh.dir"},
				{Name: "w/.wh.sym"},
				{Name: "w/.wh.dangling"},
				{Name: "w/.wh.dirlink"},
				{Name: "w/.wh.nothere"},
				{Name: "w/.wh.hard"},
				// layer.md: "Whiteout files MUST only apply to resources in lower/parent layers.
				// Files that are present in the same layer as a whiteout file can only be hidden
				// by whiteout files in subsequent layers." So s1 and s2 stay, whichever comes
				// first.
				{Name: "w/.wh.s1"},
				{Name: "w/s1", Body: []byte("upper s1")},
				{Name: "w/s2", Body: []byte("upper s2")},
				{Name: "w/.wh.s2"},
				{Name: "w/.wh.reborn"},
				// The same for directories: the lower w/rd1 and w/rd2 go, the new children stay
				// (a whiteout after the layer's own directory acts as an opaque marker).
				{Name: "w/.wh.rd1"},
				{Name: "w/rd1/new", Body: []byte("new")},
				{Name: "w/rd2/new", Body: []byte("new")},
				{Name: "w/.wh.rd2"},
			}},
			{Compression: "none", Entries: []reg{
				{Name: "w/file/", Type: tar.TypeDir, Mode: 0o700, ModTime: tDir},
				{Name: "w/file/now-a-dir", Body: []byte("!")},
				{Name: "w/reborn/new", Body: []byte("new")},
			}},
		}}, excused: []testtree.DiffOption{
			// Layer 2 has no entry for w/, so w keeps layer 1's attributes (roots). umoci
			// leaves the time at which it removed w's children: the spec gives w no new
			// mtime, roots is right.
			testtree.Excuse("w", testtree.Mtime),
		}},

		{name: "OpaqueDirs", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "o/", Type: tar.TypeDir, Mode: 0o700, Uid: 3, ModTime: tDir},
				{Name: "o/a", Body: []byte("a")},
				{Name: "o/sub/b", Body: []byte("b")},
				{Name: "o/link", Type: tar.TypeSymlink, Linkname: "a"},
				{Name: "p/x", Body: []byte("x")},
				{Name: "q/", Type: tar.TypeDir, Mode: 0o1777, ModTime: tDir},
				{Name: "q/y", Body: []byte("y")},
			}},
			{Compression: "none", Entries: []reg{
				{Name: "o/before", Body: []byte("before the marker")},
				{Name: "o/.wh..wh..opq"},
				{Name: "o/after", Body: []byte("after the marker")},
				{Name: "o/sub/", Type: tar.TypeDir, Mode: 0o711, ModTime: tDir},
				{Name: "o/sub/c", Body: []byte("c")},
				{Name: "p/.wh..wh..opq"},
				{Name: "q/", Type: tar.TypeDir, Mode: 0o1777, ModTime: tLate},
				{Name: "q/.wh..wh..opq"},
			}},
		}}, excused: []testtree.DiffOption{
			// As w in Whiteouts: layer 2 has no entry for o/, roots keeps layer 1's mtime,
			// umoci the time it emptied o. roots is right.
			testtree.Excuse("o", testtree.Mtime),
		}},

		{name: "TypeChanges", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "f2d", Body: []byte("file")},
				{Name: "d2f/child", Body: []byte("child")},
				{Name: "s2d", Type: tar.TypeSymlink, Linkname: "elsewhere"},
				{Name: "d2s/child", Body: []byte("child")},
				{Name: "f2s", Body: []byte("file")},
				{Name: "s2f", Type: tar.TypeSymlink, Linkname: "f2s"},
				{Name: "f2p", Body: []byte("file")},
				{Name: "usr/bin/tool", Body: []byte("tool"), Mode: 0o755},
				{Name: "bin/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "bin/old", Body: []byte("old")},
			}},
			{Compression: "gzip", Entries: []reg{
				{Name: "f2d/", Type: tar.TypeDir, Mode: 0o750, ModTime: tDir},
				{Name: "f2d/in", Body: []byte("in")},
				{Name: "d2f", Body: []byte("now a file"), ModTime: tFile},
				{Name: "s2d/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "s2d/in", Body: []byte("in")},
				{Name: "d2s", Type: tar.TypeSymlink, Linkname: "usr", ModTime: tLink},
				{Name: "f2s", Type: tar.TypeSymlink, Linkname: "f2d", ModTime: tLink},
				{Name: "s2f", Body: []byte("now a file")},
				{Name: "f2p", Type: tar.TypeFifo},
				{Name: "bin", Type: tar.TypeSymlink, Linkname: "usr/bin", ModTime: tLink},
			}},
		}}},

		{name: "SymlinkParentInLaterLayer", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "usr/bin/tool", Body: []byte("tool")},
				{Name: "bin", Type: tar.TypeSymlink, Linkname: "usr/bin"},
				{Name: "abs", Type: tar.TypeSymlink, Linkname: "/usr"},
			}},
			{Compression: "none", Entries: []reg{
				{Name: "bin/new", Body: []byte("new")},
				{Name: "abs/x", Body: []byte("x")},
				{Name: "bin/hard", Type: tar.TypeLink, Linkname: "usr/bin/tool"},
			}},
		}}},
		// A layer naming a path under a lower layer's symlink to a directory (the usr-merge
		// case): roots, like tar, containerd and umoci, resolves the parent inside the root:
		// bin/new lands in usr/bin/new, abs/x (abs -> /usr) in usr/x, and the symlinks stay.

		{name: "HardlinkTargetThroughLowerSymlink", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "usr/bin/tool", Body: []byte("tool")},
				{Name: "bin", Type: tar.TypeSymlink, Linkname: "usr/bin"},
			}},
			{Compression: "none", Entries: []reg{
				// The target resolves through the lower symlink, inside the root.
				{Name: "hard-via-link", Type: tar.TypeLink, Linkname: "bin/tool"},
				{Name: "lib/x86_64-linux-gnu/libfoo.so", Body: []byte("foo"), Mode: 0o755},
				{Name: "lib/.wh.old.so"},
				{Name: "sbin/tool2", Type: tar.TypeLink, Linkname: "lib/x86_64-linux-gnu/libfoo.so"},
			}},
		}}},
		{name: "TypeChangeWithRedundantWhiteout", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "var/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "var/mail/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "var/mail/root", Body: []byte("mail"), ModTime: tFile},
				{Name: "var/spool/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "var/spool/mail/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "var/spool/mail/root", Body: []byte("spool"), ModTime: tFile},
			}},
			{Compression: "gzip", Entries: []reg{
				// How umoci repack writes a directory that became a symlink.
				{Name: "var/spool/mail", Type: tar.TypeSymlink, Linkname: "../mail", ModTime: tLink},
				{Name: "var/spool/mail/.wh.root"},
			}},
		}}, roots: func(m map[string]entry) {
			// umoci follows the layer's own new symlink and deletes var/mail/root, which the
			// layer never meant: a whiteout below a non-directory of the same layer is moot.
			m["var/mail/root"] = entry{Type: "f", Mode: 0o644, Size: 4, Hash: testtree.HashBytes([]byte("mail")), Mtime: tFile.UnixNano()}
		}},
		{name: "AUFSLayer", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "usr/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "usr/bin/", Type: tar.TypeDir, ModTime: tDir},
			}},
			{Compression: "gzip", Entries: []reg{
				{Name: ".wh..wh.aufs", ModTime: tFile},
				{Name: ".wh..wh.orph/", Type: tar.TypeDir, ModTime: tDir},
				{Name: ".wh..wh.plnk/", Type: tar.TypeDir, ModTime: tDir},
				{Name: ".wh..wh.plnk/262.1045", Body: []byte("shared"), Mode: 0o755, ModTime: tFile},
				{Name: "usr/bin/a", Type: tar.TypeLink, Linkname: ".wh..wh.plnk/262.1045"},
				{Name: "usr/bin/b", Type: tar.TypeLink, Linkname: ".wh..wh.plnk/262.1045"},
			}},
		}}, roots: func(m map[string]entry) {
			// umoci knows nothing of AUFS and keeps its metadata; roots does what Docker's
			// applier does: the .wh..wh.plnk/ file is only the hardlinks' target.
			delete(m, ".wh..wh.plnk")
			delete(m, ".wh..wh.plnk/262.1045")
			for _, p := range []string{"usr/bin/a", "usr/bin/b"} {
				e := m[p]
				e.Hardlinks = "usr/bin/a|usr/bin/b"
				m[p] = e
			}
		}},
		{name: "MergedUsrBase", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "usr/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "usr/lib/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "usr/lib/x86_64-linux-gnu/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "usr/lib/x86_64-linux-gnu/libc.so.6", Body: []byte("libc"), Mode: 0o755, ModTime: tFile},
				{Name: "usr/bin/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "usr/bin/sh", Body: []byte("sh"), Mode: 0o755, ModTime: tFile},
				{Name: "lib", Type: tar.TypeSymlink, Linkname: "usr/lib", ModTime: tLink},
				{Name: "bin", Type: tar.TypeSymlink, Linkname: "usr/bin", ModTime: tLink},
				{Name: "lib64", Type: tar.TypeSymlink, Linkname: "usr/lib64", ModTime: tLink},
				{Name: "var/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "var/mail/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "var/spool/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "var/spool/mail/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "var/spool/mail/root", Body: []byte("spool"), ModTime: tFile},
			}},
			{Compression: "gzip", Entries: []reg{
				// What Bazel rules_pkg, ko or crane append write onto a merged-/usr base.
				{Name: "lib/x86_64-linux-gnu/libfoo.so.1", Body: []byte("foo"), Mode: 0o755, ModTime: tFile},
				{Name: "bin/app", Body: []byte("app"), Mode: 0o755, ModTime: tFile},
				{Name: "lib64/ld-linux-x86-64.so.2", Body: []byte("ld"), Mode: 0o755, ModTime: tFile},
				{Name: "lib/x86_64-linux-gnu/.wh.libc.so.6"},
			}},
		}}, excused: []testtree.DiffOption{
			// lib64 -> usr/lib64 dangles: the layer's lib64/... makes usr/lib64, which no layer
			// names (its mtime is when it was made). umoci then leaves usr with that time too;
			// roots keeps the mtime the image gives usr, as for every directory a layer only
			// writes into.
			testtree.Excuse("usr/lib64", testtree.Mtime), testtree.Excuse("usr", testtree.Mtime),
		}},

		{name: "ImplicitParents", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777, ModTime: tDir},
				{Name: "opt/", Type: tar.TypeDir, Mode: 0o700, Uid: 5, Gid: 6, ModTime: tDir},
				{Name: "srv/", Type: tar.TypeDir, Mode: 0o750, ModTime: tDir},
			}},
			{Compression: "gzip", Entries: []reg{
				{Name: "tmp/x", Body: []byte("x")},
				{Name: "opt/y/z", Body: []byte("z")},
				{Name: "deep/a/b/c", Body: []byte("c")},
				{Name: "srv/", Type: tar.TypeDir, Mode: 0o755, Uid: 9, ModTime: tLate},
			}},
		}}, excused: []testtree.DiffOption{
			// opt/ is named by layer 1 only; layer 2 creates opt/y inside it. umoci
			// restores the mtime of an entry's direct parent (opt/y) but not of the
			// directories above it, so opt gets the time of unpacking. roots keeps
			// layer 1's, which is what the spec gives: roots is right.
			testtree.Excuse("opt", testtree.Mtime),
		}},

		{name: "Mtimes", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: "m/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "m/f", Body: []byte("f"), ModTime: tFile},
				{Name: "m/l", Type: tar.TypeSymlink, Linkname: "f", ModTime: tLink},
				{Name: "m/late", ModTime: tLate},
				{Name: "m/sub/", Type: tar.TypeDir, ModTime: tLate},
				{Name: "m/sub/child", ModTime: tFile},
				{Name: "dup", Body: []byte("first"), ModTime: tFile},
				{Name: "dup", Body: []byte("second"), ModTime: tLate},
			}},
			{Compression: "none", Raw: rawTar(t, tar.FormatPAX, []reg{
				{Name: "m/sub/frac", ModTime: time.Date(2005, 6, 7, 8, 9, 10, 123456789, time.UTC)},
				{Name: "m/sub/frac-dir/", Type: tar.TypeDir, ModTime: time.Date(2005, 6, 7, 8, 9, 10, 987654321, time.UTC)},
				{Name: "m/sub/frac-link", Type: tar.TypeSymlink, Linkname: "frac", ModTime: time.Date(2005, 6, 7, 8, 9, 10, 555, time.UTC)},
			})},
		}}},

		{name: "LongNames", image: registrytest.Image{Layers: []registrytest.Layer{
			{Compression: "gzip", Entries: []reg{
				{Name: long + "/" + long + "/" + long + "/file", Body: []byte("over 255 bytes of path")},
				{Name: "n/" + name255, Body: []byte("255-byte name")},
				{Name: "n/longlink", Type: tar.TypeSymlink, Linkname: strings.Repeat("../", 100) + "target"},
				{Name: "n/hard-to-long", Type: tar.TypeLink, Linkname: long + "/" + long + "/" + long + "/file"},
				{Name: "n/héllo wörld ✓", Body: []byte("utf-8")},
				{Name: "n/with space", Body: []byte("space")},
				{Name: "n/new\nline", Body: []byte("newline")},
				{Name: "n/\xff\xfe-not-utf8", Body: []byte("bytes")},
			}},
			{Compression: "none", Raw: rawTar(t, tar.FormatGNU, []reg{
				{Name: "gnu/" + long + "/" + long + "/file", Body: []byte("gnu long name")},
				{Name: "gnu/longlink", Type: tar.TypeSymlink, Linkname: "/" + long + "/" + long},
				{Name: "gnu/hard", Type: tar.TypeLink, Linkname: "gnu/" + long + "/" + long + "/file"},
			})},
		}}},

		{name: "DockerUncompressed", image: registrytest.Image{Format: registrytest.Docker, Layers: []registrytest.Layer{
			{Compression: "none", Entries: []reg{
				{Name: "etc/", Type: tar.TypeDir, ModTime: tDir},
				{Name: "etc/os-release", Body: []byte("ID=test\n"), ModTime: tFile},
				{Name: "usr/bin/su", Mode: 0o4755, Body: []byte("su")},
			}},
			{Compression: "gzip", Entries: []reg{
				{Name: "etc/.wh.os-release"},
				{Name: "usr/bin/ping", Mode: 0o755, Body: []byte("ping"), Xattrs: map[string]string{"security.capability": capNetRaw}},
			}},
		}}},
	}
}

// TestDifferentialUmoci unpacks every image of the table with roots (hardlink
// assembly and --cache=no) and with skopeo + umoci, and compares the trees.
func TestDifferentialUmoci(t *testing.T) {
	NeedRoot(t)
	for _, tool := range []string{"umoci", "skopeo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (Debian package %s; .ci/run installs it): %v", tool, tool, err)
		}
	}
	r := registrytest.Start(t, registrytest.Config{})
	cache := t.TempDir() // shared: the cases' layers are distinct, their blobs and trees coexist
	cases := umociCases(t)
	for _, tc := range cases {
		r.Push(t, "diff/"+strings.ToLower(tc.name), "v1", tc.image)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ref := r.Host + "/diff/" + strings.ToLower(tc.name) + ":v1"
			if tc.fails != "" {
				for _, mode := range []struct{ name, cache string }{{"Hardlink", cache}, {"NoCache", "no"}} {
					t.Run(mode.name, func(t *testing.T) {
						dest := filepath.Join(t.TempDir(), "rootfs")
						res := Roots(t, nil, "pull", "--cache", mode.cache, ref, dest)
						AssertCleanFailure(t, res, tc.fails, dest)
					})
				}
				return
			}
			umoci := testtree.Scan(t, umociUnpack(t, ref), testtree.WithRoot())
			if tc.roots != nil {
				tc.roots(umoci)
			}
			excused := append([]testtree.DiffOption(nil), tc.excused...)
			// A directory that no layer names (an implicit parent; the root when
			// no layer has "./") has no mtime in the image: each unpacker leaves
			// the time it made it, never the same twice. umoci sometimes leaves
			// the root at the epoch.
			for _, d := range unnamedDirs(t, tc.image) {
				excused = append(excused, testtree.Excuse(d, testtree.Mtime))
			}
			for _, mode := range []struct{ name, cache string }{{"Hardlink", cache}, {"NoCache", "no"}} {
				t.Run(mode.name, func(t *testing.T) {
					dest := filepath.Join(t.TempDir(), "rootfs")
					MustPull(t, nil, "--cache", mode.cache, ref, dest)
					if diffs := testtree.Diff(umoci, testtree.Scan(t, dest, testtree.WithRoot()), excused...); len(diffs) > 0 {
						t.Errorf("roots differs from umoci:\n%s", strings.Join(diffs, "\n"))
					}
				})
			}
		})
	}
}

// umociUnpack copies ref into an OCI layout with skopeo and unpacks it with
// umoci; it returns the rootfs.
func umociUnpack(t *testing.T, ref string) string {
	t.Helper()
	work := t.TempDir()
	layout, bundle := filepath.Join(work, "layout"), filepath.Join(work, "bundle")
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "HOME="+work, "XDG_RUNTIME_DIR="+work)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	// The registry is plain HTTP on loopback: --src-tls-verify=false lets skopeo use it.
	run("skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false", "docker://"+ref, "oci:"+layout+":v1")
	run("umoci", "--log=error", "unpack", "--image", layout+":v1", bundle)
	return filepath.Join(bundle, "rootfs")
}

// unnamedDirs lists the directories that some entry of img implies as a
// parent but that no layer has an entry for; "." unless a layer names the root.
func unnamedDirs(t testing.TB, img registrytest.Image) []string {
	t.Helper()
	named, parents := map[string]bool{}, map[string]bool{".": true}
	for _, l := range img.Layers {
		raw := l.Raw
		if raw == nil {
			raw = registrytest.TarBytes(l.Entries)
		}
		tr := tar.NewReader(bytes.NewReader(raw))
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(filepath.Clean("/"+hdr.Name), "/")
			if name == "" {
				name = "."
			}
			if hdr.Typeflag == tar.TypeDir {
				named[name] = true
			}
			for d := filepath.Dir(name); d != "."; d = filepath.Dir(d) {
				parents[d] = true
			}
		}
	}
	var out []string
	for d := range parents {
		if !named[d] {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}
