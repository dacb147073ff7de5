package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/internal/testtree"
)

// layerCase is a stack of layers (bottom to top) and what must come of them.
type layerCase struct {
	name    string
	layers  [][]ent
	want    []string         // the rootfs an Applier makes (listing lines; nil: not checked)
	root    string           // the rootfs's root as listing would show it, named "." ("": not checked)
	err     error            // the top layer fails with this error (Applier and Unpack)
	treeOK  bool             // ... but Unpack of the top layer succeeds (the Record defers the failure)
	trees   map[int][]string // listing of a layer's tree (as root)
	records map[int]Record   // a layer's Record (Whiteouts, Opaque, Implicit, Links)
}

var (
	t1 = time.Date(2011, 1, 1, 0, 0, 1, 500, time.UTC)
	t2 = time.Date(2012, 2, 2, 0, 0, 2, 0, time.UTC)
	t3 = time.Date(1999, 3, 3, 0, 0, 3, 0, time.UTC)
)

// capNetBind is a security.capability value: cap_net_bind_service+ep (vfs_cap_data v2).
const capNetBind = "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

func layerCases() []layerCase {
	longDir := strings.Repeat("d", 150)
	deep := strings.Repeat("abcdefghij/", 40) + "leaf"
	var deepDirs []string
	for p := deep; strings.Contains(p, "/"); {
		p, _ = split(p)
		deepDirs = append(deepDirs, p+" dir 0755 0:0 t=now")
	}
	longNames := append([]string{
		longDir + " dir 0755 0:0 t=now",
		longDir + "/" + strings.Repeat("m", 120) + ` file 0644 0:0 "gnu"`,
		strings.Repeat("p", 200) + " dir 0755 0:0 t=now",
		strings.Repeat("p", 200) + `/file file 0644 0:0 "pax"`,
		"bad\xffbyte file 0644 0:0 \"b\"",
		"hl file 0644 0:0 =" + longDir + "/" + strings.Repeat("m", 120),
		`ls symlink 0:0 -> "` + strings.Repeat("t/", 200) + `"`,
		"new\nline file 0644 0:0 \"n\"",
		"with space file 0644 0:0 \"s\"",
		deep + ` file 0644 0:0 "deep"`,
	}, deepDirs...)

	return []layerCase{
		{
			name: "RegularFileMetadata",
			layers: [][]ent{{reg("a", "hello").M(0o640).O(1000, 2000), reg("empty", ""), reg("ro", "r").M(0o444),
				{Name: "cont", Type: tar.TypeCont, Mode: 0o600, Body: "contiguous"}}},
			want: []string{`a file 0640 1000:2000 "hello"`, `cont file 0600 0:0 "contiguous"`, `empty file 0644 0:0 ""`,
				`ro file 0444 0:0 "r"`},
		},
		{
			name: "SetuidSurvivesChown",
			layers: [][]ent{{reg("su", "x").M(0o4755).O(1000, 1000), reg("sg", "x").M(0o2755).O(0, 50),
				dir("sticky").M(0o1777), dir("sgdir").M(0o2775).O(0, 50)}},
			want: []string{`sg file 2755 0:50 "x"`, "sgdir dir 2775 0:50", "sticky dir 1777 0:0", `su file 4755 1000:1000 "x"`},
		},
		{
			name: "Mode0500DirWithChildren",
			layers: [][]ent{{dir("ro").M(0o500), reg("ro/f", "f").M(0o400), dir("ro/none").M(0),
				reg("ro/none/g", "g").M(0), dir("ro/none/deeper").M(0o555)}},
			want: []string{"ro dir 0500 0:0", `ro/f file 0400 0:0 "f"`, "ro/none dir 0000 0:0",
				"ro/none/deeper dir 0555 0:0", `ro/none/g file 0000 0:0 "g"`},
		},
		{
			name:    "ImplicitParentKeepsLowerMode",
			layers:  [][]ent{{dir("tmp").M(0o1777).O(0, 0)}, {reg("tmp/x", "x"), reg("new/y", "y")}},
			want:    []string{"new dir 0755 0:0 t=now", `new/y file 0644 0:0 "y"`, "tmp dir 1777 0:0", `tmp/x file 0644 0:0 "x"`},
			trees:   map[int][]string{1: {"new dir 0755 0:0 t=now", `new/y file 0644 0:0 "y"`, "tmp dir 0755 0:0 t=now", `tmp/x file 0644 0:0 "x"`}},
			records: map[int]Record{1: {Implicit: []string{".", "new", "tmp"}}},
		},
		{
			name:   "ImplicitParentThenExplicitEntry",
			layers: [][]ent{{reg("d/x", "x"), dir("d").M(0o700).O(3, 3)}},
			want:   []string{"d dir 0700 3:3", `d/x file 0644 0:0 "x"`},
		},
		{
			name: "DotDotNameConfined",
			layers: [][]ent{{reg("../x", "x"), reg("/abs", "abs"), reg("a/../../y", "y"),
				reg("../../outside/secret", "mine"), reg("./z", "z"), reg("//double//slash", "ds"),
				reg("/../../..//q/../deep/file", "deep"), dir("."), dir("./"), dir("/"), dir("..").M(0o700)}},
			want: []string{`abs file 0644 0:0 "abs"`, "deep dir 0755 0:0 t=now", `deep/file file 0644 0:0 "deep"`,
				"double dir 0755 0:0 t=now", `double/slash file 0644 0:0 "ds"`,
				"outside dir 0755 0:0 t=now", `outside/secret file 0644 0:0 "mine"`,
				`x file 0644 0:0 "x"`, `y file 0644 0:0 "y"`, `z file 0644 0:0 "z"`},
			root:    ". dir 0700 0:0", // "..", the last of the root's names, has 0700
			records: map[int]Record{0: {Implicit: []string{"deep", "double", "outside"}}},
		},
		{
			// layer.md: when the entry and the existing path are both directories, "the existing
			// path's attributes MUST be replaced by those of the entry": the root too.
			name:    "RootEntryMetadataApplied",
			layers:  [][]ent{{dir("./").M(0o751).O(7, 8).T(t1).X("user.r", "root").F(tar.FormatPAX), reg("a", "a")}, {reg("b", "b")}},
			want:    []string{`a file 0644 0:0 "a"`, `b file 0644 0:0 "b"`},
			root:    `. dir 0751 7:8 x:user.r="root" t=2011-01-01T00:00:01.0000005Z`,
			trees:   map[int][]string{0: {`a file 0644 0:0 "a"`}},
			records: map[int]Record{0: {}, 1: {Implicit: []string{"."}}},
		},
		{
			name:   "RootEntryTopmostWins",
			layers: [][]ent{{dir("/").M(0o700).O(1, 1).T(t1).X("user.low", "l")}, {dir(".").M(0o1777).T(t2)}, {reg("x", "x")}},
			want:   []string{`x file 0644 0:0 "x"`},
			// As for any directory, the topmost entry's attributes replace the lower ones, xattrs too.
			root: ". dir 1777 0:0 t=2012-02-02T00:00:02Z",
		},
		{
			name:    "RootEntryWithOpaqueMarker",
			layers:  [][]ent{{reg("a", "a")}, {reg(".wh..wh..opq", ""), dir("./").M(0o711).T(t3), reg("n", "n")}},
			want:    []string{`n file 0644 0:0 "n"`},
			root:    ". dir 0711 0:0 t=1999-03-03T00:00:03Z",
			records: map[int]Record{1: {Opaque: []string{"."}}},
		},
		{
			name:    "RootWithoutEntryIs0755",
			layers:  [][]ent{{reg("a", "a")}},
			root:    ". dir 0755 0:0 t=now",
			records: map[int]Record{0: {Implicit: []string{"."}}},
		},
		{
			// Only a directory can replace the root's attributes; other types naming it are ignored.
			name:    "RootEntryNotADirIgnored",
			layers:  [][]ent{{sym("..", "elsewhere"), fifo(".").M(0o600), reg("a/..", "file"), reg("a", "a")}},
			want:    []string{`a file 0644 0:0 "a"`},
			root:    ". dir 0755 0:0 t=now",
			records: map[int]Record{0: {Implicit: []string{"."}}},
		},
		{
			// A parent that is a symlink is followed inside the rootfs, as if it were "/": an
			// absolute target starts at the rootfs's root, ".." stops there.
			name: "SymlinkParentUpAndOut",
			layers: [][]ent{{sym("abs", "$OUT"), reg("abs/secret", "pwned"), sym("up", "../../outside"),
				reg("up/secret", "pwned"), sym("link", "../../outside/link"), reg("link", "mine"),
				sym("chain1", "chain2"), sym("chain2", "$OUT/dir"), reg("chain1/file", "pwned")}},
			want: []string{`abs symlink 0:0 -> "$OUT"`, "$OUT dir 0755 0:0 t=now", `$OUT/secret file 0644 0:0 "pwned"`,
				`chain1 symlink 0:0 -> "chain2"`, `chain2 symlink 0:0 -> "$OUT/dir"`,
				"$OUT/dir dir 0755 0:0 t=now", `$OUT/dir/file file 0644 0:0 "pwned"`,
				`link file 0644 0:0 "mine"`, `up symlink 0:0 -> "../../outside"`, "outside dir 0755 0:0 t=now",
				`outside/secret file 0644 0:0 "pwned"`},
		},
		{
			name:   "SymlinkLoopRefused",
			layers: [][]ent{{sym("a", "b"), sym("b", "a"), reg("a/x", "x")}},
			err:    ErrSymlinkLoop,
		},
		{
			name:   "SymlinkChainOf40Followed",
			layers: [][]ent{append(chain(40), reg("l0/x", "x"))},
		},
		{
			name:   "SymlinkChainOf41Refused",
			layers: [][]ent{append(chain(41), reg("l0/x", "x"))},
			err:    ErrSymlinkLoop,
		},
		{
			name:    "SymlinkParentFromLowerLayer",
			layers:  [][]ent{{sym("etc", "$OUT"), sym("dir", "$OUT/dir")}, {reg("etc/secret", "pwned"), dir("dir").M(0o700), reg("dir/file", "pwned")}},
			want:    []string{"dir dir 0700 0:0", `dir/file file 0644 0:0 "pwned"`, `etc symlink 0:0 -> "$OUT"`, "$OUT dir 0755 0:0 t=now", `$OUT/secret file 0644 0:0 "pwned"`},
			records: map[int]Record{1: {Implicit: []string{".", "etc"}}},
		},
		{
			name:    "SymlinkParentSameLayerResolvedInTree",
			layers:  [][]ent{{dir("usr"), dir("usr/lib").M(0o750)}, {sym("lib", "usr/lib"), reg("lib/x", "x"), sym("usr/lib/y", "../../lib"), reg("usr/lib/y/z", "z")}},
			want:    []string{`lib symlink 0:0 -> "usr/lib"`, "usr dir 0755 0:0", "usr/lib dir 0750 0:0", `usr/lib/x file 0644 0:0 "x"`, `usr/lib/y symlink 0:0 -> "../../lib"`, `usr/lib/z file 0644 0:0 "z"`},
			trees:   map[int][]string{1: {`lib symlink 0:0 -> "usr/lib"`, "usr dir 0755 0:0 t=now", "usr/lib dir 0755 0:0 t=now", `usr/lib/x file 0644 0:0 "x"`, `usr/lib/y symlink 0:0 -> "../../lib"`, `usr/lib/z file 0644 0:0 "z"`}},
			records: map[int]Record{1: {Implicit: []string{".", "usr", "usr/lib"}}},
		},
		{
			name:   "FileOverSymlinkReplacesIt",
			layers: [][]ent{{sym("f", "$OUT/secret"), sym("g", "$OUT/secret")}, {reg("f", "new").M(0o666), fifo("g")}},
			want:   []string{`f file 0666 0:0 "new"`, "g fifo 0644 0:0"},
		},
		{
			name:   "HardlinkWithinLayer",
			layers: [][]ent{{reg("a", "x").M(0o600).O(5, 5), hard("b", "a"), hard("c", "./a"), hard("d/e", "/a")}},
			want:   []string{`a file 0600 5:5 "x"`, "b file 0600 5:5 =a", "c file 0600 5:5 =a", "d dir 0755 0:0 t=now", "d/e file 0600 5:5 =a"},
		},
		{
			name:    "HardlinkToLowerLayer",
			layers:  [][]ent{{reg("bin/a", "x")}, {hard("bin/b", "bin/a")}},
			want:    []string{"bin dir 0755 0:0 t=now", `bin/a file 0644 0:0 "x"`, "bin/b file 0644 0:0 =bin/a"},
			trees:   map[int][]string{1: {"bin dir 0755 0:0 t=now"}},
			records: map[int]Record{1: {Implicit: []string{".", "bin"}, Links: []Link{{"bin/b", "bin/a"}}}},
		},
		{
			name:    "HardlinkTargetOutside",
			layers:  [][]ent{{hard("h", "../../outside/secret"), hard("h2", "$OUT/secret")}},
			err:     ErrLinkTargetMissing,
			treeOK:  true,
			records: map[int]Record{0: {Implicit: []string{"."}, Links: []Link{{"h", "outside/secret"}, {"h2", strings.TrimPrefix(placeholder, "/") + "/secret"}}}},
		},
		{
			name:   "HardlinkTargetConfinedInside",
			layers: [][]ent{{reg("outside/secret", "inner")}, {hard("h", "../../../outside/secret")}},
			want:   []string{`h file 0644 0:0 "inner"`, "outside dir 0755 0:0 t=now", "outside/secret file 0644 0:0 =h"},
		},
		{
			// s/secret is $OUT/secret inside the rootfs: not there (a tree defers to the layers below).
			name:   "HardlinkThroughSymlink",
			layers: [][]ent{{sym("s", "$OUT"), hard("h", "s/secret")}},
			err:    ErrLinkTargetMissing,
			treeOK: true,
		},
		{
			name:   "HardlinkThroughLowerSymlink",
			layers: [][]ent{{sym("s", "$OUT")}, {hard("h", "s/secret")}},
			err:    ErrLinkTargetMissing,
			treeOK: true,
		},
		{
			name:    "HardlinkThroughSymlinkInside",
			layers:  [][]ent{{dir("usr"), dir("usr/lib"), reg("usr/lib/a", "a"), sym("lib", "usr/lib")}, {hard("lib/b", "lib/a"), hard("c", "lib/a")}},
			want:    []string{`c file 0644 0:0 "a"`, `lib symlink 0:0 -> "usr/lib"`, "usr dir 0755 0:0", "usr/lib dir 0755 0:0", "usr/lib/a file 0644 0:0 =c", "usr/lib/b file 0644 0:0 =c"},
			records: map[int]Record{1: {Implicit: []string{".", "lib"}, Links: []Link{{"lib/b", "lib/a"}, {"c", "lib/a"}}}},
		},
		{name: "HardlinkToDirectory", layers: [][]ent{{dir("d"), hard("h", "d")}}, err: ErrInvalidLink},
		{name: "HardlinkToRoot", layers: [][]ent{{hard("h", "../..")}}, err: ErrInvalidLink},
		{name: "HardlinkToItself", layers: [][]ent{{reg("a", "a")}, {hard("a", "a")}}, err: ErrInvalidLink},
		{
			name:   "HardlinkToSymlinkLinksTheSymlink",
			layers: [][]ent{{sym("s", "$OUT/secret"), hard("h", "s")}, {reg("h", "new")}},
			want:   []string{`h file 0644 0:0 "new"`, `s symlink 0:0 -> "$OUT/secret"`},
		},
		{
			name:   "FileReplacesHardlinkedLower",
			layers: [][]ent{{reg("a", "A"), hard("b", "a")}, {reg("b", "B")}},
			want:   []string{`a file 0644 0:0 "A"`, `b file 0644 0:0 "B"`},
		},
		{
			name:   "HardlinkReplacesExisting",
			layers: [][]ent{{reg("a", "A"), dir("b"), reg("b/x", "x")}, {hard("b", "a")}},
			want:   []string{`a file 0644 0:0 "A"`, "b file 0644 0:0 =a"},
		},
		{
			name:   "HardlinkAfterWhiteoutOfTarget",
			layers: [][]ent{{reg("a", "A")}, {reg(".wh.a", ""), hard("b", "a")}},
			err:    ErrLinkTargetMissing,
		},
		{
			name:   "HardlinkBelowReplacedDir",
			layers: [][]ent{{dir("d"), reg("d/a", "A")}, {reg("d", "file"), dir("d"), hard("h", "d/a")}},
			err:    ErrLinkTargetMissing,
		},
		{
			name:    "HardlinkThenWhiteoutOfTarget",
			layers:  [][]ent{{reg("a", "A")}, {hard("b", "a"), reg(".wh.a", "")}},
			want:    []string{`b file 0644 0:0 "A"`},
			records: map[int]Record{1: {Implicit: []string{"."}, Whiteouts: []string{"a"}, Links: []Link{{"b", "a"}}}},
		},
		{
			name:    "WhiteoutThenHardlinkSameName",
			layers:  [][]ent{{reg("a", "A"), dir("b"), reg("b/x", "x")}, {reg(".wh.b", ""), reg("b/.wh.x", ""), hard("b", "a")}},
			want:    []string{`a file 0644 0:0 "A"`, "b file 0644 0:0 =a"},
			records: map[int]Record{1: {Implicit: []string{"."}, Links: []Link{{"b", "a"}}}},
		},
		{
			name:    "HardlinkInOpaqueDirToLower",
			layers:  [][]ent{{dir("d"), reg("d/a", "A"), reg("d/b", "B")}, {reg("d/.wh..wh..opq", ""), hard("d/c", "d/a")}},
			want:    []string{"d dir 0755 0:0", `d/c file 0644 0:0 "A"`},
			records: map[int]Record{1: {Opaque: []string{"d"}, Implicit: []string{".", "d"}, Links: []Link{{"d/c", "d/a"}}}},
		},
		{
			// A hardlink to the name of a Link of the same layer links the same lower file.
			name:    "HardlinkToSameLayerLink",
			layers:  [][]ent{{reg("a", "A")}, {hard("b", "a"), hard("c", "b"), reg("a", "new")}},
			want:    []string{`a file 0644 0:0 "new"`, `b file 0644 0:0 "A"`, "c file 0644 0:0 =b"},
			records: map[int]Record{1: {Implicit: []string{"."}, Links: []Link{{"b", "a"}, {"c", "a"}}}},
		},
		{
			// Links that a later entry of the layer replaced (at the name, or a parent) are left out.
			name: "HardlinkReplacedLaterSameLayer",
			layers: [][]ent{{reg("a", "A")}, {hard("b", "a"), reg("b", "own"), hard("d/x", "a"), reg("d", "file"),
				hard("e", "a"), hard("e", "a"), hard("f", "a"), reg("f/g", "g")}},
			want: []string{`a file 0644 0:0 "A"`, `b file 0644 0:0 "own"`, `d file 0644 0:0 "file"`, "e file 0644 0:0 =a",
				"f dir 0755 0:0 t=now", `f/g file 0644 0:0 "g"`},
			records: map[int]Record{1: {Implicit: []string{"."}, Opaque: []string{"f"}, Links: []Link{{"e", "a"}}}},
		},
		{
			// A whiteout of a directory, then a hardlink inside it: the directory is opaque and new.
			name:    "WhiteoutThenHardlinkInsideSameLayer",
			layers:  [][]ent{{dir("d").M(0o700), reg("d/old", "o"), reg("x", "x")}, {reg(".wh.d", ""), hard("d/b", "x")}},
			want:    []string{"d dir 0755 0:0 t=now", `d/b file 0644 0:0 "x"`, "x file 0644 0:0 =d/b"},
			trees:   map[int][]string{1: {`d dir 0755 0:0 x:trusted.overlay.opaque="y" t=now`}},
			records: map[int]Record{1: {Opaque: []string{"d"}, Implicit: []string{"."}, Links: []Link{{"d/b", "x"}}}},
		},
		{
			// The layer replaces a lower directory by a file, then names a path below it: the
			// directory is a new one (0755 root:root), opaque and not implicit.
			name:    "DirReplacedByFileThenParentSameLayer",
			layers:  [][]ent{{dir("d").M(0o1777).T(t1), reg("d/a", "a")}, {reg("d", "file"), reg("d/b", "b")}},
			want:    []string{"d dir 0755 0:0 t=now", `d/b file 0644 0:0 "b"`},
			trees:   map[int][]string{1: {`d dir 0755 0:0 x:trusted.overlay.opaque="y" t=now`, `d/b file 0644 0:0 "b"`}},
			records: map[int]Record{1: {Opaque: []string{"d"}, Implicit: []string{"."}}},
		},
		{
			// Inside an opaque directory nothing of the lower layers shows, metadata included: a
			// lower directory the layer only walks through (o/s, to an entry or a hardlink) is new.
			name: "OpaqueDirLowerSubdirsAreNew",
			layers: [][]ent{
				{dir("o").M(0o750), dir("o/s").M(0o700).O(7, 7).T(t1), reg("o/s/old", "old"), dir("o/t").M(0o711).O(8, 8),
					reg("o/t/old", "old"), reg("x", "x")},
				{reg("o/s/new", "new"), hard("o/t/h", "x"), reg("o/.wh..wh..opq", "")},
			},
			want: []string{"o dir 0750 0:0", "o/s dir 0755 0:0 t=now", `o/s/new file 0644 0:0 "new"`,
				"o/t dir 0755 0:0 t=now", `o/t/h file 0644 0:0 "x"`, "x file 0644 0:0 =o/t/h"},
			records: map[int]Record{1: {Opaque: []string{"o"}, Implicit: []string{".", "o", "o/s", "o/t"}, Links: []Link{{"o/t/h", "x"}}}},
		},
		{
			name:   "DirToFile",
			layers: [][]ent{{dir("d"), reg("d/a", "a"), dir("d/sub").M(0o700), reg("d/sub/b", "b")}, {reg("d", "file")}},
			want:   []string{`d file 0644 0:0 "file"`},
		},
		{
			name:   "DirToFileSameLayer",
			layers: [][]ent{{dir("d").M(0o700), reg("d/a", "a"), reg("d", "file")}},
			want:   []string{`d file 0644 0:0 "file"`},
		},
		{
			name:   "FileToDir",
			layers: [][]ent{{reg("d", "file")}, {dir("d").M(0o750), reg("d/a", "a")}},
			want:   []string{"d dir 0750 0:0", `d/a file 0644 0:0 "a"`},
		},
		{
			name:    "FileToDirSameLayerIsOpaque",
			layers:  [][]ent{{dir("d"), reg("d/low", "low")}, {reg("d", "file"), dir("d").M(0o750), reg("d/a", "a")}},
			want:    []string{"d dir 0750 0:0", `d/a file 0644 0:0 "a"`},
			trees:   map[int][]string{1: {`d dir 0750 0:0 x:trusted.overlay.opaque="y"`, `d/a file 0644 0:0 "a"`}},
			records: map[int]Record{1: {Implicit: []string{"."}, Opaque: []string{"d"}}},
		},
		{
			name: "DirToSymlinkUsrMerge",
			layers: [][]ent{
				{dir("lib"), reg("lib/libc.so", "c"), dir("usr"), dir("usr/lib"), reg("usr/lib/libm.so", "m")},
				{sym("lib", "usr/lib"), sym("bin", "usr/bin")},
			},
			want: []string{`bin symlink 0:0 -> "usr/bin"`, `lib symlink 0:0 -> "usr/lib"`, "usr dir 0755 0:0",
				"usr/lib dir 0755 0:0", `usr/lib/libm.so file 0644 0:0 "m"`},
		},
		{
			// As in overlayfs: an upper directory hides a lower symlink; the file does not go
			// to usr/lib through it.
			name: "FileBelowUsrMergeSymlinkFollowsIt",
			layers: [][]ent{
				{dir("usr"), dir("usr/lib"), reg("usr/lib/libm.so", "m"), sym("lib", "usr/lib")},
				{reg("lib/x", "x"), reg("lib/.wh.libm.so", "")},
			},
			want: []string{`lib symlink 0:0 -> "usr/lib"`, "usr dir 0755 0:0",
				"usr/lib dir 0755 0:0", `usr/lib/x file 0644 0:0 "x"`},
		},
		{
			// umoci repack writes a type change as the new symlink plus a whiteout below it.
			name: "WhiteoutBelowSameLayerSymlinkIsMoot",
			layers: [][]ent{
				{dir("var"), dir("var/mail"), reg("var/mail/root", "mail"), dir("var/spool"), dir("var/spool/mail"), reg("var/spool/mail/root", "old")},
				{sym("var/spool/mail", "../mail"), reg("var/spool/mail/.wh.root", ""), reg("var/spool/mail/.wh..wh..opq", "")},
			},
			want: []string{"var dir 0755 0:0", "var/mail dir 0755 0:0", `var/mail/root file 0644 0:0 "mail"`,
				"var/spool dir 0755 0:0", `var/spool/mail symlink 0:0 -> "../mail"`},
		},
		{
			// Docker's aufs driver: .wh..wh.plnk/ files are the targets of the layer's hardlinks;
			// no AUFS metadata reaches the rootfs.
			name: "AUFSMetadata",
			layers: [][]ent{
				{dir("usr"), dir("usr/bin")},
				{dir(".wh..wh.aufs"), reg(".wh..wh.aufs", ""), dir(".wh..wh.orph"), reg(".wh..wh.orph/x", "orphan"), dir(".wh..wh.plnk"),
					reg(".wh..wh.plnk/1234.5678", "shared").M(0o755).O(3, 4), hard("usr/bin/a", ".wh..wh.plnk/1234.5678"),
					hard("usr/bin/b", "/.wh..wh.plnk/1234.5678"), reg("usr/bin/c", "c")},
			},
			want: []string{"usr dir 0755 0:0", `usr/bin/a file 0755 3:4 "shared"`, "usr/bin/b file 0755 3:4 =usr/bin/a", `usr/bin/c file 0644 0:0 "c"`, "usr/bin dir 0755 0:0"},
		},
		{
			name:   "AUFSLinkToMissingPlnk",
			layers: [][]ent{{reg(".wh..wh.plnk/1", "one"), hard("a", ".wh..wh.plnk/2")}},
			err:    ErrLinkTargetMissing,
		},
		{
			name:   "DirEntryOverSymlinkReplacesIt",
			layers: [][]ent{{dir("usr"), dir("usr/lib"), reg("usr/lib/a", "a"), sym("lib", "usr/lib")}, {dir("lib").M(0o700), reg("lib/x", "x")}},
			want:   []string{"lib dir 0700 0:0", `lib/x file 0644 0:0 "x"`, "usr dir 0755 0:0", "usr/lib dir 0755 0:0", `usr/lib/a file 0644 0:0 "a"`},
		},
		{
			name:   "SymlinkToDir",
			layers: [][]ent{{sym("d", "$OUT/dir")}, {dir("d").M(0o700), reg("d/a", "a")}},
			want:   []string{"d dir 0700 0:0", `d/a file 0644 0:0 "a"`},
		},
		{
			name:   "ExistingDirKeptByDirEntry",
			layers: [][]ent{{dir("d"), reg("d/a", "a")}, {dir("d").M(0o700).O(7, 7).T(t1).F(tar.FormatPAX)}},
			want:   []string{"d dir 0700 7:7 t=2011-01-01T00:00:01.0000005Z", `d/a file 0644 0:0 "a"`},
		},
		{
			name:   "DirMetadataTopmostWins",
			layers: [][]ent{{dir("d").M(0o711)}, {dir("d").M(0o700).O(1, 1)}, {reg("d/x", "x")}},
			want:   []string{"d dir 0700 1:1", `d/x file 0644 0:0 "x"`},
		},
		{
			name:   "DirMetadataDroppedWhenReplaced",
			layers: [][]ent{{dir("d").M(0o700), dir("d/e").M(0o700)}, {reg("d", "f")}, {reg("d/e/x", "x")}},
			want:   []string{"d dir 0755 0:0 t=now", "d/e dir 0755 0:0 t=now", `d/e/x file 0644 0:0 "x"`},
		},
		{
			name:    "WhiteoutFile",
			layers:  [][]ent{{reg("a", "a"), reg("b", "b")}, {reg(".wh.a", "")}},
			want:    []string{`b file 0644 0:0 "b"`},
			trees:   map[int][]string{1: {"a char 0000 0:0 0:0 t=now"}},
			records: map[int]Record{1: {Implicit: []string{"."}, Whiteouts: []string{"a"}}},
		},
		{
			name:   "WhiteoutDirSubtree",
			layers: [][]ent{{dir("d"), reg("d/a", "a"), dir("d/s").M(0o500), reg("d/s/b", "b"), reg("k", "k")}, {reg(".wh.d", "")}},
			want:   []string{`k file 0644 0:0 "k"`},
		},
		{
			name:   "WhiteoutSymlinksDanglingOrOut",
			layers: [][]ent{{sym("s", "nowhere"), sym("t", "$OUT/secret"), sym("u", "$OUT/dir")}, {reg(".wh.s", ""), reg(".wh.t", ""), reg(".wh.u", "")}},
			want:   []string{},
		},
		{
			name:    "WhiteoutMissingIsNoop",
			layers:  [][]ent{{reg("a", "a")}, {reg(".wh.b", ""), reg("x/.wh.y", "")}},
			want:    []string{`a file 0644 0:0 "a"`, "x dir 0755 0:0 t=now"},
			records: map[int]Record{1: {Whiteouts: []string{"b", "x/y"}, Implicit: []string{".", "x"}}},
		},
		{
			name:   "WhiteoutThroughSymlink",
			layers: [][]ent{{sym("s", "$OUT"), sym("d", "$OUT/dir")}, {reg("s/.wh.secret", ""), reg("d/.wh..wh..opq", "")}},
			want:   []string{`d symlink 0:0 -> "$OUT/dir"`, `s symlink 0:0 -> "$OUT"`, "$OUT dir 0755 0:0 t=now", "$OUT/dir dir 0755 0:0 t=now"},
		},
		{
			// layer.md: whiteouts "MUST only apply to resources in lower/parent layers". A
			// non-directory the layer already has (an entry or a Link) hides the lower path
			// anyway: its whiteout is moot and records nothing.
			name: "WhiteoutAfterSameLayerFileKeepsIt",
			layers: [][]ent{
				{reg("a", "low a"), dir("s"), reg("s/x", "x"), reg("keep", "k"), reg("gone", "g")},
				{reg("a", "up a"), reg(".wh.a", ""), sym("s", "a"), reg(".wh.s", ""), hard("h", "keep"), reg(".wh.h", ""),
					fifo("p"), reg(".wh.p", ""), reg(".wh.gone", "")},
			},
			want: []string{`a file 0644 0:0 "up a"`, `h file 0644 0:0 "k"`, "keep file 0644 0:0 =h", "p fifo 0644 0:0",
				`s symlink 0:0 -> "a"`},
			trees: map[int][]string{1: {`a file 0644 0:0 "up a"`, "gone char 0000 0:0 0:0 t=now", "p fifo 0644 0:0",
				`s symlink 0:0 -> "a"`}},
			records: map[int]Record{1: {Whiteouts: []string{"gone"}, Implicit: []string{"."}, Links: []Link{{"h", "keep"}}}},
		},
		{
			// A directory the layer already has (an entry, or a parent of entries) keeps the
			// layer's contents, whatever comes after in the tar, and loses the lower ones: the
			// whiteout acts as an opaque marker. An implicit one keeps the lower metadata; a lower
			// directory below it that the layer only walked through (d/sub) is a new one.
			name: "WhiteoutAfterSameLayerDirActsOpaque",
			layers: [][]ent{
				{dir("d").M(0o750), reg("d/old", "o"), dir("d/sub"), reg("d/sub/old", "o"), dir("e"), reg("e/old", "o"),
					reg("f", "lower file"), reg("k", "k")},
				{reg("d/new", "n"), reg("d/sub/new", "n"), reg(".wh.d", ""), reg("d/later", "l"),
					dir("e").M(0o700), reg(".wh.e", ""), reg("f/x", "x"), reg(".wh.f", "")},
			},
			want: []string{"d dir 0750 0:0", `d/later file 0644 0:0 "l"`, `d/new file 0644 0:0 "n"`, "d/sub dir 0755 0:0 t=now",
				`d/sub/new file 0644 0:0 "n"`, "e dir 0700 0:0", "f dir 0755 0:0 t=now", `f/x file 0644 0:0 "x"`,
				`k file 0644 0:0 "k"`},
			trees: map[int][]string{1: {`d dir 0755 0:0 x:trusted.overlay.opaque="y" t=now`, `d/later file 0644 0:0 "l"`,
				`d/new file 0644 0:0 "n"`, "d/sub dir 0755 0:0 t=now", `d/sub/new file 0644 0:0 "n"`,
				`e dir 0700 0:0 x:trusted.overlay.opaque="y"`, `f dir 0755 0:0 x:trusted.overlay.opaque="y" t=now`,
				`f/x file 0644 0:0 "x"`}},
			records: map[int]Record{1: {Opaque: []string{"d", "e", "f"}, Implicit: []string{".", "d", "d/sub", "f"}}},
		},
		{
			// A whiteout of a directory the layer has, then one of its lower children: the
			// child's whiteout is a Whiteout (nothing of the layer's there), the dir is opaque.
			name:    "WhiteoutSameLayerDirThenLowerChild",
			layers:  [][]ent{{dir("d"), reg("d/a", "a"), reg("d/b", "b")}, {reg("d/n", "n"), reg(".wh.d", ""), reg("d/.wh.a", "")}},
			want:    []string{"d dir 0755 0:0", `d/n file 0644 0:0 "n"`},
			records: map[int]Record{1: {Whiteouts: []string{"d/a"}, Opaque: []string{"d"}, Implicit: []string{".", "d"}}},
		},
		{
			name:    "WhiteoutTwiceThenReAdd",
			layers:  [][]ent{{reg("a", "low")}, {reg(".wh.a", ""), reg(".wh.a", ""), reg("a", "up"), reg(".wh.a", "")}},
			want:    []string{`a file 0644 0:0 "up"`},
			records: map[int]Record{1: {Implicit: []string{"."}}},
		},
		{
			name:    "WhiteoutThenFileSameName",
			layers:  [][]ent{{dir("a"), reg("a/x", "x")}, {reg(".wh.a", ""), reg("a", "file")}},
			want:    []string{`a file 0644 0:0 "file"`},
			records: map[int]Record{1: {Implicit: []string{"."}}},
		},
		{
			// Whiteout then contents of the same layer: the directory is opaque (no Whiteout) and
			// new (0755 root:root of its own, not implicit).
			name:    "WhiteoutThenRecreateDir",
			layers:  [][]ent{{dir("d").M(0o700), reg("d/old", "o")}, {reg(".wh.d", ""), reg("d/new", "n")}},
			want:    []string{"d dir 0755 0:0 t=now", `d/new file 0644 0:0 "n"`},
			trees:   map[int][]string{1: {`d dir 0755 0:0 x:trusted.overlay.opaque="y" t=now`, `d/new file 0644 0:0 "n"`}},
			records: map[int]Record{1: {Opaque: []string{"d"}, Implicit: []string{"."}}},
		},
		{
			name: "WhiteoutOpaqueKeepsSameLayer",
			layers: [][]ent{
				{dir("d").M(0o750), reg("d/a", "a"), dir("d/sub"), reg("d/sub/c", "c"), dir("d/gone"), reg("other", "o")},
				{reg("d/x", "x"), reg("d/.wh..wh..opq", ""), reg("d/sub/y", "y"), sym("d/s", "x")},
			},
			want: []string{"d dir 0750 0:0", `d/s symlink 0:0 -> "x"`, "d/sub dir 0755 0:0 t=now", `d/sub/y file 0644 0:0 "y"`,
				`d/x file 0644 0:0 "x"`, `other file 0644 0:0 "o"`},
			trees: map[int][]string{1: {`d dir 0755 0:0 x:trusted.overlay.opaque="y" t=now`, `d/s symlink 0:0 -> "x"`,
				"d/sub dir 0755 0:0 t=now", `d/sub/y file 0644 0:0 "y"`, `d/x file 0644 0:0 "x"`}},
			records: map[int]Record{1: {Opaque: []string{"d"}, Implicit: []string{".", "d", "d/sub"}}},
		},
		{
			name:    "OpaqueRoot",
			layers:  [][]ent{{reg("a", "a"), dir("d"), reg("d/b", "b")}, {reg("n", "n"), reg(".wh..wh..opq", "")}},
			want:    []string{`n file 0644 0:0 "n"`},
			records: map[int]Record{1: {Implicit: []string{"."}, Opaque: []string{"."}}},
		},
		{
			name:   "OpaqueMarkerBeforeDirEntry",
			layers: [][]ent{{dir("d"), reg("d/a", "a")}, {reg("d/.wh..wh..opq", ""), dir("d").M(0o700), reg("d/b", "b")}},
			want:   []string{"d dir 0700 0:0", `d/b file 0644 0:0 "b"`},
		},
		{name: "WhiteoutEmptyName", layers: [][]ent{{reg(".wh.", "")}}, err: ErrInvalidWhiteout},
		{name: "WhiteoutDotDot", layers: [][]ent{{reg("a/.wh..", "")}}, err: ErrInvalidWhiteout},
		{name: "WhiteoutDot", layers: [][]ent{{reg("a/.wh.", "")}}, err: ErrInvalidWhiteout},
		{name: "WhiteoutDotDotDot", layers: [][]ent{{reg(".wh...", "")}}, err: ErrInvalidWhiteout},
		{name: "WhiteoutAufsMetaBelowRoot", layers: [][]ent{{reg("d/.wh..wh.plnk", "")}}, err: ErrInvalidWhiteout},
		{name: "WhiteoutAsDirectory", layers: [][]ent{{reg(".wh.x/y", "")}}, err: ErrInvalidWhiteout},
		{name: "HardlinkToWhiteoutMarker", layers: [][]ent{{reg("a", "")}, {hard("b", ".wh.a")}}, err: ErrInvalidLink},
		{
			name: "Devices",
			layers: [][]ent{{chr("dev/null", 1, 3).M(0o666), blk("dev/sda", 8, 0).M(0o660).O(0, 6),
				fifo("run/fifo").M(0o600).O(1, 1), chr("dev/big", 4095, 1<<20-1)}},
			want: []string{"dev dir 0755 0:0 t=now", "dev/big char 0666 0:0 4095:1048575", "dev/null char 0666 0:0 1:3",
				"dev/sda block 0660 0:6 8:0", "run dir 0755 0:0 t=now", "run/fifo fifo 0600 1:1"},
		},
		{
			name:   "DeviceReplacesFile",
			layers: [][]ent{{reg("null", "x")}, {chr("null", 1, 3)}},
			want:   []string{"null char 0666 0:0 1:3"},
		},
		{
			name: "Xattrs",
			layers: [][]ent{{reg("f", "f").M(0o755).O(1000, 1000).X("user.a", "1").X("security.capability", capNetBind),
				dir("d").M(0o700).X("user.d", "dir"), sym("s", "f").X("trusted.t", "sym"),
				reg("o", "o").X("trusted.overlay.opaque", "y").X("user.overlay.redirect", "/x").X("user.ok", "ok"),
				dir("od").X("trusted.overlay.opaque", "y")}},
			want: []string{`d dir 0700 0:0 x:user.d="dir"`,
				`f file 0755 1000:1000 "f" x:security.capability="` + `\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00` + `" x:user.a="1"`,
				`o file 0644 0:0 "o" x:user.ok="ok"`, "od dir 0755 0:0", `s symlink 0:0 -> "f" x:trusted.t="sym"`},
		},
		{
			name:   "Mtimes",
			layers: [][]ent{{reg("f", "f").T(t1).F(tar.FormatPAX), sym("s", "f").T(t2), dir("d").T(t3), reg("d/x", "x"), fifo("p").T(t2)}},
			want: []string{"d dir 0755 0:0 t=1999-03-03T00:00:03Z", `d/x file 0644 0:0 "x"`,
				`f file 0644 0:0 "f" t=2011-01-01T00:00:01.0000005Z`, "p fifo 0644 0:0 t=2012-02-02T00:00:02Z",
				`s symlink 0:0 -> "f" t=2012-02-02T00:00:02Z`},
		},
		{
			name:   "PaxGlobalHeaderIgnored",
			layers: [][]ent{{rawEnt(testtree.PAX('g', [2]string{"comment", "hi"}, [2]string{"path", "evil"})), reg("a", "a")}},
			want:   []string{`a file 0644 0:0 "a"`},
		},
		{
			name:   "UnknownEntryType",
			layers: [][]ent{{rawEnt(testtree.Header("vol", 'V', 0o644, 0, true, nil))}},
			err:    ErrUnsupportedEntry,
		},
		{
			name:   "LargePAXOwner",
			layers: [][]ent{{reg("big", "b").O(3000000000, 4294967294).F(tar.FormatPAX)}},
			want:   []string{`big file 0644 3000000000:4294967294 "b"`},
		},
		{name: "OwnerOutOfRange", layers: [][]ent{{reg("huge", "h").O(1<<32, 0).F(tar.FormatPAX)}}, err: ErrInvalidHeader},
		{
			name: "LongNames",
			layers: [][]ent{{
				reg(longDir+"/"+strings.Repeat("m", 120), "gnu").F(tar.FormatGNU),
				reg(strings.Repeat("p", 200)+"/file", "pax").F(tar.FormatPAX),
				sym("ls", strings.Repeat("t/", 200)).F(tar.FormatPAX),
				hard("hl", longDir+"/"+strings.Repeat("m", 120)).F(tar.FormatGNU),
				reg("with space", "s"), reg("new\nline", "n").F(tar.FormatPAX), reg("bad\xffbyte", "b").F(tar.FormatPAX),
				reg(deep, "deep").F(tar.FormatPAX),
			}},
			want: longNames,
		},
		{name: "ComponentTooLong", layers: [][]ent{{reg(strings.Repeat("x", 256), "").F(tar.FormatPAX)}}, err: ErrNameTooLong},
	}
}

// placeholder stands for the sentinel directory in expectations; Record paths are compared
// after the same substitution.
const placeholder = "$OUT"

func TestLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestLayers checks owners, devices and trusted xattrs: run it as root (CI does); TestAsNobody covers the rest")
	}
	for _, tc := range layerCases() {
		t.Run(tc.name, func(t *testing.T) { runLayerCase(t, tc, true) })
	}
}

// TestUmaskDoesNotChangeModes: files are created with their final mode when the umask allows
// it; a umask that does not must not show in the result.
func TestUmaskDoesNotChangeModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run as root (CI does)")
	}
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	for _, tc := range layerCases() {
		switch tc.name {
		case "RegularFileMetadata", "SetuidSurvivesChown", "ImplicitParentKeepsLowerMode", "Devices", "Mtimes":
			t.Run(tc.name, func(t *testing.T) { runLayerCase(t, tc, true) })
		}
	}
}

// TestUserXattrNotSupportedRecorded: Linux refuses user.* xattrs on anything but regular files
// and directories, to root too. Such an xattr is recorded with a What that says so (not as
// something root could have applied), and the unpack goes on.
func TestUserXattrNotSupportedRecorded(t *testing.T) {
	uid, gid := os.Geteuid(), os.Getegid()
	ents := []ent{
		reg("f", "f").O(uid, gid).X("user.ok", "1"),
		fifo("p").O(uid, gid).X("user.p", "1"),
		sym("s", "f").O(uid, gid).X("user.s", "1"),
		dir("d").O(uid, gid).X("user.d", "1"),
	}
	want := []Unapplied{
		{"p", "xattr user.p: not supported on a fifo"},
		{"s", "xattr user.s: not supported on a symlink"},
	}
	if uid == 0 {
		ents = append(ents, chr("c", 1, 3).X("user.c", "1"), blk("b", 8, 0).X("user.b", "1"))
		want = append([]Unapplied{
			{"b", "xattr user.b: not supported on a block device"},
			{"c", "xattr user.c: not supported on a char device"},
		}, want...)
	}
	e := newEnv(t)
	layer := tarOf(t, e.out, ents)
	for _, use := range []string{"unpack", "apply"} {
		t.Run(use, func(t *testing.T) {
			target := e.target(t, use)
			rec, err := unpackOrApply(t, use, target, layer)
			must(t, err)
			got := append([]Unapplied(nil), rec.Unapplied...)
			sort.Slice(got, func(i, j int) bool { return got[i].Path < got[j].Path })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Unapplied:\n got %v\nwant %v", got, want)
			}
			lines := strings.Join(listing(t, target, false), "\n")
			for _, good := range []string{`f file 0644 "f" x:user.ok="1"`, `d dir 0755 x:user.d="1"`} {
				if !strings.Contains(lines, good) {
					t.Errorf("no %q in the result:\n%s", good, lines)
				}
			}
		})
	}
}

// chain is symlinks l0 -> l1 -> ... -> l(n-1) -> d, and the directory d: l0 takes n links.
func chain(n int) []ent {
	out := []ent{dir("d")}
	for _, l := range testtree.Chain(n) {
		out = append(out, sym(l.Name, l.Target))
	}
	return out
}

// runLayerCase applies the layers with an Applier, unpacks each as a tree, checks both, and
// checks that assembling the trees (see retar) gives the Applier's rootfs. Every write is
// checked to stay inside its target.
func runLayerCase(t *testing.T, tc layerCase, root bool) {
	ctx := context.Background()
	e := newEnv(t)
	// "$OUT" as a path inside a tree (a confined absolute name) starts without the "/".
	outRel := strings.TrimPrefix(e.out, "/")
	norm := func(lines []string) []string {
		out := make([]string, 0, len(lines))
		hasOut := false
		for _, l := range lines {
			hasOut = hasOut || strings.HasPrefix(l, outRel+" ")
		}
		for _, l := range lines {
			if p, rest, _ := strings.Cut(l, " "); hasOut && strings.HasPrefix(outRel, p+"/") && rest == "dir 0755 0:0 t=now" {
				continue // a parent of "$OUT" inside the target: a symlink to $OUT made it
			}
			l = strings.ReplaceAll(l, e.out, placeholder)
			out = append(out, strings.ReplaceAll(l, outRel, placeholder))
		}
		return out
	}
	layers := make([][]byte, len(tc.layers))
	for i, l := range tc.layers {
		layers[i] = tarOf(t, e.out, l)
	}

	rootfs := e.target(t, "rootfs")
	var applyErr error
	e.confined(t, rootfs, func() { _, applyErr = applyAll(t, rootfs, layers) })
	switch {
	case tc.err != nil && !errors.Is(applyErr, tc.err):
		t.Fatalf("Applier: got error %v, want %v", applyErr, tc.err)
	case tc.err == nil && applyErr != nil:
		t.Fatalf("Applier: %v", applyErr)
	}
	if tc.want != nil && applyErr == nil && root {
		if d := diff(tc.want, norm(listing(t, rootfs, root))); d != "" {
			t.Errorf("Applier rootfs:\n%s", d)
		}
	}
	if tc.root != "" && applyErr == nil && root {
		if got := rootLine(t, rootfs, root); got != tc.root {
			t.Errorf("Applier rootfs root:\n got %s\nwant %s", got, tc.root)
		}
	}

	var regen [][]byte
	treesOK := true
	for i, l := range layers {
		tree := e.target(t, fmt.Sprintf("tree%d", i))
		var rec Record
		var err error
		e.confined(t, tree, func() { rec, err = Unpack(ctx, bytes.NewReader(l), tree) })
		var wantErr error
		if i == len(layers)-1 && !tc.treeOK {
			wantErr = tc.err
		}
		switch {
		case wantErr != nil && !errors.Is(err, wantErr):
			t.Fatalf("Unpack layer %d: got error %v, want %v", i, err, wantErr)
		case wantErr == nil && err != nil:
			t.Fatalf("Unpack layer %d: %v", i, err)
		}
		if err != nil {
			treesOK = false
			continue
		}
		if want, ok := tc.trees[i]; ok && root {
			if d := diff(want, norm(listing(t, tree, root))); d != "" {
				t.Errorf("tree of layer %d:\n%s", i, d)
			}
		}
		if want, ok := tc.records[i]; ok {
			got := Record{Whiteouts: rec.Whiteouts, Opaque: rec.Opaque, Implicit: rec.Implicit, Links: rec.Links}
			for i := range got.Links {
				got.Links[i].Target = strings.ReplaceAll(got.Links[i].Target, outRel, placeholder)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Record of layer %d:\n got %+v\nwant %+v", i, got, want)
			}
		}
		regen = append(regen, retar(t, tree, rec))
	}
	if applyErr != nil || !treesOK {
		return
	}
	assembled := e.target(t, "assembled")
	var err error
	e.confined(t, assembled, func() { _, err = applyAll(t, assembled, regen) })
	if err != nil {
		t.Fatalf("assembling the trees: %v", err)
	}
	whole := func(dir string) []string { return append(listing(t, dir, root), rootLine(t, dir, root)) }
	if d := diff(whole(rootfs), whole(assembled)); d != "" {
		t.Errorf("trees assembled (+) differ from the Applier's rootfs (-):\n%s", d)
	}
}
