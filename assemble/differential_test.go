package assemble_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/internal/testtree"
)

// The differential test holds assembly to the layer.Record contract by its consequence: for
// any stack of layers, unpacking each as a tree and assembling the trees (Hardlink and Copy)
// gives the same rootfs as applying the tars directly with a layer.Applier.

var (
	d0 = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)          // default mtime
	d1 = time.Date(2005, 6, 7, 8, 9, 10, 123456789, time.UTC) // needs PAX for the nanoseconds
	d2 = time.Date(2010, 11, 12, 13, 14, 15, 987654321, time.UTC)
	// fromTar: an mtime before this came from a tar header; a later one is the time of the
	// test run (a directory that is only a parent keeps whatever time it got).
	fromTar = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
)

// te is one tar entry; the constructors are testtree's. "$OUT" in a name or link target is the
// sentinel directory outside.
type te = testtree.Ent

var (
	reg, dir, sym, hard = testtree.TarReg, testtree.TarDir, testtree.TarSym, testtree.TarHard
	chr, blk            = testtree.TarChr, testtree.TarBlk
)

func fifo(name string) te { return testtree.TarFifo(name).M(0o600) }

// wh deletes p from the layers below; opq hides the lower contents of the directory d.
func wh(p string) te {
	dir, name := filepath.Split(p)
	return reg(dir+".wh."+name, "")
}
func opq(d string) te { return reg(d+"/.wh..wh..opq", "") }

// deep is a path of n components of 200 bytes: far beyond PATH_MAX when n > 20.
func deep(n int, last string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = strings.Repeat(string(rune('a'+i%26)), 200)
	}
	return strings.Join(parts, "/") + "/" + last
}

var capNetRaw = string([]byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

var differentialCases = []struct {
	name    string
	layers  [][]te // bottom to top
	wantErr bool   // every way fails (the Applier, and an Unpack or the assembly)
}{
	{name: "FileReplacesFile", layers: [][]te{
		{reg("a", "1"), reg("keep", "k")},
		{reg("a", "2").M(0o600).O(3, 4)},
	}},
	{name: "WhiteoutFile", layers: [][]te{
		{dir("d"), reg("d/a", "a"), reg("d/b", "b")},
		{wh("d/a")},
	}},
	{name: "WhiteoutDirSubtree", layers: [][]te{
		{dir("d"), dir("d/e").M(0o500), reg("d/e/f", "f").M(0o400), reg("keep", "k")},
		{wh("d")},
	}},
	{name: "WhiteoutOfNothingAndThroughFile", layers: [][]te{
		{reg("f", "f")},
		{wh("nope"), wh("f/x"), wh("missing/dir/y")},
	}},
	{name: "WhiteoutThenReaddFileSameLayer", layers: [][]te{
		{reg("a", "old").M(0o600)},
		{wh("a"), reg("a", "new").M(0o640).T(d1)},
	}},
	{name: "ReaddThenWhiteoutSameLayer", layers: [][]te{
		{reg("a", "old"), reg("b", "b")},
		{reg("a", "new"), wh("a")},
	}},
	{name: "WhiteoutThenReaddDirSameLayer", layers: [][]te{
		{dir("d").M(0o700).O(5, 5).T(d1), reg("d/old", "old")},
		{wh("d"), dir("d").M(0o750).T(d2), reg("d/new", "new")},
	}},
	{name: "WhiteoutDirThenImplicitChildSameLayer", layers: [][]te{
		{dir("d").M(0o700).O(5, 5), reg("d/old", "old")},
		{wh("d"), reg("d/new", "new")},
	}},
	{name: "OpaqueDir", layers: [][]te{
		{dir("d").M(0o750), reg("d/a", "a"), dir("d/sub"), reg("d/sub/b", "b"), reg("other", "o")},
		{dir("d").M(0o700).T(d1), opq("d"), reg("d/c", "c")},
	}},
	{name: "OpaqueMarkerAfterEntries", layers: [][]te{
		{dir("d"), reg("d/a", "a"), dir("d/sub"), reg("d/sub/b", "b")},
		{dir("d"), dir("d/sub"), reg("d/sub/c", "c"), opq("d")},
	}},
	{name: "OpaqueInImplicitDirKeepsItsMetadata", layers: [][]te{
		{dir("tmp").M(0o1777).T(d1), reg("tmp/a", "a")},
		{opq("tmp"), reg("tmp/c", "c")},
	}},
	{name: "OpaqueDirWithImplicitSubdirOfLower", layers: [][]te{
		{dir("o"), dir("o/s").M(0o700).O(7, 7).T(d1), reg("o/s/old", "old")},
		{opq("o"), reg("o/s/x", "x")},
	}},
	{name: "OpaqueDirWithExplicitSubdir", layers: [][]te{
		{dir("o"), dir("o/s").M(0o700).O(7, 7).T(d1).X("user.low", "l"), reg("o/s/old", "old")},
		{opq("o"), dir("o/s").M(0o750).T(d2), reg("o/s/x", "x")},
	}},
	{name: "WhiteoutThenSymlinkSameLayer", layers: [][]te{
		{dir("d").M(0o700), reg("d/x", "x")},
		{wh("d"), sym("d", "elsewhere"), wh("e"), dir("e").M(0o711), reg("e/f", "f")},
	}},
	{name: "OpaqueRoot", layers: [][]te{
		{reg("a", "a"), dir("d"), reg("d/b", "b")},
		{opq("."), reg("c", "c")},
	}},
	{name: "OpaqueRootWithRootEntry", layers: [][]te{
		{dir("./").M(0o751).T(d1), reg("a", "a")},
		{dir("./").M(0o750).O(1, 2).T(d2), opq("."), dir("d"), reg("d/c", "c")},
	}},
	{name: "LinkToLowerFile", layers: [][]te{
		{dir("usr"), dir("usr/bin"), reg("usr/bin/perl", "perl").M(0o755)},
		{hard("usr/bin/perl5.36", "usr/bin/perl")},
	}},
	{name: "LinkThenTargetReplacedSameLayer", layers: [][]te{
		{reg("a", "old").T(d1)},
		{hard("b", "a"), reg("a", "new").T(d2)},
	}},
	{name: "LinkThenTargetWhitedOutSameLayer", layers: [][]te{
		{reg("a", "a")},
		{hard("b", "a"), wh("a")},
	}},
	{name: "LinkThenNameWhitedOutSameLayer", layers: [][]te{
		{reg("a", "a")},
		{hard("b", "a"), wh("b")},
	}},
	{name: "LinkThenNameRewrittenSameLayer", layers: [][]te{
		{reg("a", "a")},
		{hard("b", "a"), reg("b", "own")},
	}},
	{name: "LinkIntoOpaqueDir", layers: [][]te{
		{dir("o"), reg("o/old", "old"), reg("x", "x")},
		{dir("o"), opq("o"), hard("o/b", "x")},
	}},
	{name: "LinkIntoOpaqueDirDeep", layers: [][]te{
		{dir("o"), dir("o/s").M(0o700).O(7, 7).T(d1), reg("o/s/old", "old"), reg("x", "x")},
		{hard("o/s/b", "x"), opq("o")},
	}},
	{name: "LinkToTargetInOpaqueDir", layers: [][]te{
		{dir("o"), reg("o/a", "a"), reg("o/z", "z")},
		{opq("o"), hard("b", "o/a")},
	}},
	{name: "LinkIntoOpaqueRoot", layers: [][]te{
		{reg("x", "x"), reg("y", "y"), dir("d"), reg("d/e", "e")},
		{opq("."), hard("d/z", "x")},
	}},
	{name: "LinkReplacesDir", layers: [][]te{
		{reg("a", "a"), dir("b"), reg("b/old", "old")},
		{hard("b", "a")},
	}},
	{name: "LinkParentIsSymlinkOut", layers: [][]te{
		{sym("d", "$OUT"), reg("x", "x")},
		{hard("d/secret", "x")},
	}},
	{name: "LinkParentIsFile", layers: [][]te{
		{reg("d", "file"), reg("x", "x")},
		{hard("d/b", "x")},
	}},
	{name: "LinkParentsMissing", layers: [][]te{
		{dir("tmp").M(0o1777), reg("x", "x")},
		{hard("new/dir/b", "x"), hard("tmp/c", "x")},
	}},
	{name: "LinkChainAcrossLayers", layers: [][]te{
		{reg("a", "a").M(0o755)},
		{hard("b", "a")},
		{hard("c", "b"), reg("a", "new")},
	}},
	{name: "LinkToLinkSameLayer", layers: [][]te{
		{reg("a", "a").M(0o750)},
		{hard("b", "a"), hard("c", "b"), reg("a", "new")},
	}},
	{name: "LinkNameThenDirSameLayer", layers: [][]te{
		{reg("x", "x"), dir("d").M(0o700).O(3, 3), reg("d/old", "old")},
		{hard("d", "x"), reg("d/y", "y")},
	}},
	{name: "LinkParentReplacedSameLayer", layers: [][]te{
		{dir("d"), reg("d/old", "old"), reg("x", "x")},
		{hard("d/b", "x"), reg("d", "file"), hard("e/f", "x"), wh("e")},
	}},
	{name: "LinksIntoOpaqueRootAndWhiteouts", layers: [][]te{
		{reg("x", "x"), dir("d").M(0o700).O(4, 4), reg("d/e", "e"), dir("w"), reg("w/z", "z")},
		{hard("d/f", "x"), wh("x"), hard("g", "w/z"), wh("w"), opq("."), hard("w/z2", "d/e")},
	}},
	{name: "LinkTargetMissing", wantErr: true, layers: [][]te{
		{reg("a", "a")},
		{hard("b", "nope")},
	}},
	{name: "LinkTargetIsDirectory", wantErr: true, layers: [][]te{
		{dir("d")},
		{hard("b", "d")},
	}},
	{name: "LinkTargetThroughSymlink", wantErr: true, layers: [][]te{
		{sym("lib", "$OUT")},
		{hard("b", "lib/secret")},
	}},
	{name: "WhiteoutDirThenLinkInsideSameLayer", layers: [][]te{
		{dir("d").M(0o700), reg("d/old", "old"), reg("x", "x")},
		{wh("d"), hard("d/b", "x")},
	}},
	{name: "LinkInsideThenDirWhitedOutSameLayer", layers: [][]te{
		{dir("d"), reg("d/old", "old"), reg("x", "x")},
		{hard("d/b", "x"), wh("d")},
	}},
	{name: "SetuidHardlinks", layers: [][]te{
		{dir("bin"), reg("bin/su", "su").M(0o4755), hard("bin/su.same", "bin/su"),
			reg("bin/wall", "wall").M(0o2755).O(0, 5), dir("var"), dir("var/mail").M(0o2775).O(0, 8)},
		{hard("bin/su.lower", "bin/su"), hard("bin/wall.lower", "bin/wall")},
	}},
	{name: "FileDirFileThreeLayers", layers: [][]te{
		{reg("p", "file").T(d1)},
		{dir("p").M(0o700).T(d2), reg("p/q", "q")},
		{reg("p", "again")},
	}},
	{name: "DirFileDirThreeLayers", layers: [][]te{
		{dir("p").M(0o700).O(3, 3).T(d1), reg("p/a", "a")},
		{reg("p", "file")},
		{reg("p/b", "b")},
	}},
	{name: "DirReplacedByFileThenImplicitDirSameLayer", layers: [][]te{
		{dir("d").M(0o1777).T(d1), reg("d/a", "a")},
		{reg("d", "file"), reg("d/b", "b")},
	}},
	{name: "DirReplacedByFileThenDirSameLayer", layers: [][]te{
		{dir("d").M(0o1777).T(d1), reg("d/a", "a")},
		{reg("d", "file"), dir("d").M(0o750).T(d2), reg("d/b", "b")},
	}},
	{name: "WhiteoutThenLinkAtSameName", layers: [][]te{
		{reg("a", "old"), reg("x", "x")},
		{wh("a"), hard("a", "x")},
	}},
	{name: "LinksToSameLowerFile", layers: [][]te{
		{reg("lib/libc.so.6", "libc").M(0o755)},
		{hard("lib/libc.so", "lib/libc.so.6"), hard("usr/lib/libc.so.6", "lib/libc.so.6"), wh("lib/libc.so.6")},
	}},
	{name: "UsrMergeDirToSymlink", layers: [][]te{
		{dir("bin"), reg("bin/sh", "sh").M(0o755), dir("usr"), dir("usr/bin"), reg("usr/bin/env", "env")},
		{sym("bin", "usr/bin"), reg("usr/bin/sh", "sh2").M(0o755)},
		{reg("bin/late", "late")},
	}},
	{name: "LowerSymlinkUpperDir", layers: [][]te{
		{sym("etc", "$OUT"), sym("rel", "../outside")},
		{dir("etc").M(0o711), reg("etc/passwd", "root"), dir("rel"), reg("rel/secret", "mine")},
	}},
	{name: "LowerSymlinkUpperImplicitDir", layers: [][]te{
		{sym("etc", "$OUT")},
		{reg("etc/secret", "mine"), opq("etc"), wh("etc/sub")},
	}},
	{name: "WhiteoutThroughSymlink", layers: [][]te{
		{sym("s", "$OUT"), reg("a", "a")},
		{wh("s/secret"), opq("s/sub"), wh("a")},
	}},
	{name: "ImplicitParentsOverStickyTmp", layers: [][]te{
		{dir("tmp").M(0o1777).T(d1), dir("home"), dir("home/u").M(0o700).O(1000, 1000).T(d2)},
		{reg("tmp/x", "x"), reg("home/u/.profile", "p").O(1000, 1000)},
		{reg("tmp/y/z", "z")},
	}},
	{name: "ReadOnlyDirsWithChildren", layers: [][]te{
		{dir("ro").M(0o500), dir("ro/sub").M(0o500), reg("ro/sub/f", "f").M(0o400), dir("none").M(0)},
		{reg("ro/sub/g", "g"), wh("ro/sub/f"), reg("none/x", "x")},
		{dir("ro/sub").M(0o555).T(d1), opq("none")},
	}},
	{name: "DevicesAndFifos", layers: [][]te{
		{dir("dev"), chr("dev/null", 1, 3), blk("dev/sda", 8, 0).O(0, 6), fifo("run/initctl"), chr("dev/tty", 5, 0)},
		{wh("dev/sda"), reg("dev/tty", "not a tty"), fifo("dev/null").M(0o644)},
	}},
	{name: "CharDeviceZeroZeroIsNoWhiteout", layers: [][]te{
		{reg("a", "a"), chr("z", 0, 0)},
		{chr("a", 0, 0).M(0o600), wh("missing")},
	}},
	{name: "Xattrs", layers: [][]te{
		{
			reg("bin/ping", "ping").M(0o755).X("security.capability", capNetRaw),
			reg("f", "f").X("user.u", "1").X("trusted.t", "2"),
			dir("d").X("user.dir", "d").X("trusted.overlay.opaque", "y"),
			reg("d/in", "in"),
			sym("l", "f").X("trusted.sym", "s"),
		},
		{reg("f", "f2").X("user.other", "3"), reg("d/in2", "in2").X("trusted.overlay.redirect", "/x")},
	}},
	{name: "Mtimes", layers: [][]te{
		{dir("d").T(d1), reg("d/f", "f").T(d1), sym("d/l", "f").T(d2), dir("e").T(d2)},
		{dir("d").T(d2), reg("e/g", "g").T(d1)},
		{reg("d/h", "h").T(d0)},
	}},
	{name: "RootEntryMetadata", layers: [][]te{
		{dir("./").M(0o751).T(d1), reg("a", "a")},
		{dir(".").M(0o700).O(5, 6).T(d2), reg("b", "b")},
		{reg("c", "c")},
	}},
	{name: "HostileNamesConfined", layers: [][]te{
		{reg("../../escape", "1"), reg("/abs/file", "2"), reg("a/../../b", "3"), reg("./c/./d", "4"),
			reg("nl\nname", "5"), reg("bad\xffutf8", "6"), reg("$OUT/secret", "7")},
		{hard("../../link", "/abs/file"), wh("../../escape"), sym("up", "../../../../etc/passwd")},
	}},
	{name: "HostileLinkTargetConfined", layers: [][]te{
		{reg("etc/passwd", "root")},
		{hard("x", "../../../../etc/passwd"), hard("y", "/etc/passwd")},
	}},
	{name: "LongComponentRejected", wantErr: true, layers: [][]te{
		{reg("ok", "ok")},
		{reg(strings.Repeat("n", 256), "x")},
	}},
	{name: "InvalidWhiteoutRejected", wantErr: true, layers: [][]te{
		{reg("ok", "ok")},
		{reg("d/.wh..", "")},
	}},
	{name: "LongPathBeyondPathMax", layers: [][]te{
		{reg(deep(25, "f"), "f"), reg(deep(25, "g"), "g"), reg("x", "x")},
		{wh(deep(25, "f")), hard(deep(25, "h"), "x"), opq(deep(24, "y"))},
	}},
	{name: "HardlinkGroupWithinLayer", layers: [][]te{
		{reg("a", "same").M(0o4755), hard("b", "a"), hard("c/d", "a")},
		{reg("a", "new")},
	}},
	{name: "EntryThenLinkToItSameLayer", layers: [][]te{
		{reg("a", "old")},
		{reg("a", "new"), hard("b", "a")},
	}},
	// In-root resolution: a parent that is a symlink is followed inside the rootfs.
	{name: "UsrMergeLayerWritesBelowLinks", layers: [][]te{
		{dir("usr").M(0o755), dir("usr/bin"), dir("usr/lib").M(0o755), dir("usr/lib/x86_64-linux-gnu").M(0o755).T(d1),
			reg("usr/lib/x86_64-linux-gnu/libc.so.6", "libc").M(0o755), reg("usr/lib/x86_64-linux-gnu/old.so", "old"),
			reg("usr/bin/sh", "sh").M(0o755), sym("lib", "usr/lib"), sym("bin", "usr/bin"), sym("lib64", "/usr/lib64")},
		{reg("lib/x86_64-linux-gnu/libfoo.so", "foo").M(0o755), reg("bin/tool", "tool").M(0o755), wh("lib/x86_64-linux-gnu/old.so"),
			reg("lib64/ld-linux-x86-64.so.2", "ld").M(0o755), hard("bin/tool2", "bin/tool"), hard("lib/libc.so.6", "lib/x86_64-linux-gnu/libc.so.6")},
		{reg("bin/late", "late"), dir("lib/x86_64-linux-gnu/sub").M(0o700).T(d2), reg("lib/x86_64-linux-gnu/sub/f", "f")},
	}},
	{name: "ExplicitDirEntryReplacesSymlink", layers: [][]te{
		{dir("usr"), dir("usr/lib"), reg("usr/lib/a", "a"), sym("lib", "usr/lib")},
		{dir("lib").M(0o711).T(d1), reg("lib/x", "x")},
	}},
	{name: "SymlinkChainAndDotDotClamp", layers: [][]te{
		{sym("a", "b"), sym("b", "c/d"), dir("c"), dir("c/d").M(0o750), sym("up", "../../../../c"), sym("abs", "/c/d/../d")},
		{reg("a/x", "x"), reg("up/y", "y"), reg("abs/z", "z"), wh("a/nothing")},
	}},
	{name: "DanglingSymlinkParentMakesTarget", layers: [][]te{
		{sym("lib", "usr/lib"), sym("opt", "/srv/opt")},
		{reg("lib/x", "x"), reg("opt/app/bin", "bin")},
	}},
	{name: "SameLayerSymlinkThenEntriesBelow", layers: [][]te{
		{dir("usr"), dir("usr/lib").M(0o700), reg("usr/lib/keep", "k")},
		{sym("lib", "usr/lib"), reg("lib/x", "x"), sym("usr/lib/self", "../lib"), reg("usr/lib/self/y", "y")},
	}},
	{name: "SameLayerSymlinkToLowerSymlink", layers: [][]te{
		{dir("usr"), dir("usr/lib"), sym("lib", "usr/lib")},
		{sym("a", "lib"), reg("a/x", "x"), hard("h", "a/x")},
	}},
	{name: "WhiteoutBelowSameLayerSymlinkIsMoot", layers: [][]te{
		{dir("var"), dir("var/mail"), reg("var/mail/root", "mail"), dir("var/spool"), dir("var/spool/mail"), reg("var/spool/mail/root", "spool")},
		{sym("var/spool/mail", "../mail"), wh("var/spool/mail/root"), opq("var/spool/mail")},
	}},
	{name: "WhiteoutBelowSameLayerFileIsMoot", layers: [][]te{
		{dir("d"), reg("d/x", "x")},
		{reg("d", "now a file"), wh("d/x")},
	}},
	{name: "OpaqueThroughSymlink", layers: [][]te{
		{dir("usr"), dir("usr/lib").M(0o750), reg("usr/lib/a", "a"), dir("usr/lib/sub"), reg("usr/lib/sub/b", "b"), sym("lib", "usr/lib")},
		{opq("lib"), reg("lib/c", "c")},
	}},
	{name: "LinksThroughSymlinks", layers: [][]te{
		{dir("usr"), dir("usr/bin"), reg("usr/bin/perl", "perl").M(0o755), sym("bin", "usr/bin"), sym("dst", "usr/share")},
		{hard("dst/perl", "bin/perl"), hard("bin/perl5", "bin/perl")},
	}},
	{name: "SymlinkLoopParent", wantErr: true, layers: [][]te{
		{sym("a", "b"), sym("b", "/a")},
		{reg("a/x", "x")},
	}},
	{name: "SymlinkChainOf41Parent", wantErr: true, layers: [][]te{
		linkChain(41),
		{reg("l0/x", "x")},
	}},
	{name: "SymlinkChainOf40Parent", layers: [][]te{
		linkChain(40),
		{reg("l0/x", "x")},
	}},
	{name: "AUFSMetadata", layers: [][]te{
		{dir("usr"), dir("usr/bin"), reg("usr/bin/old", "old")},
		{reg(".wh..wh.aufs", ""), dir(".wh..wh.orph"), dir(".wh..wh.plnk").M(0o700), reg(".wh..wh.plnk/262.1045", "shared").M(0o4755).O(0, 5),
			hard("usr/bin/a", ".wh..wh.plnk/262.1045"), hard("usr/bin/b", ".wh..wh.plnk/262.1045"), wh("usr/bin/old")},
		{hard("usr/bin/c", "usr/bin/a")},
	}},
	{name: "SameLayerTwice", layers: [][]te{
		{dir("etc"), reg("etc/a", "a")},
		{wh("etc/a"), reg("etc/b", "b")},
		{dir("etc"), reg("etc/a", "a")},
	}},
	// Wide enough that linking hands directories to several walkers at once.
	{name: "WideTreesManyWalkers", layers: wideLayers(48)},
}

// linkChain is symlinks l0 -> l1 -> ... -> d and the directory d: l0 takes n links to resolve.
func linkChain(n int) []te {
	out := []te{dir("d")}
	for _, l := range testtree.Chain(n) {
		out = append(out, sym(l.Name, l.Target))
	}
	return out
}

// wideLayers is n directories (each with a subdirectory, files, a symlink, a read-only child
// and a name of one shared inode) in a base layer, and above it layers that delete, replace, hide, extend and link
// into them, so that walkers running in parallel meet every kind of change.
func wideLayers(n int) [][]te {
	base := []te{reg("shared", "one inode, a name in every directory")}
	var mid, top []te
	for i := range n {
		d := fmt.Sprintf("d%02d", i)
		base = append(base, dir(d).M(0o750).O(i, i).T(d1), dir(d+"/sub").T(d2), sym(d+"/ln", "f0"), dir(d+"/ro").M(0o500))
		for j := range 6 {
			base = append(base, reg(fmt.Sprintf("%s/f%d", d, j), d).T(d1), reg(fmt.Sprintf("%s/sub/g%d", d, j), d))
		}
		base = append(base, reg(d+"/ro/r", "ro"), hard(d+"/sub/same", "shared"))
		switch i % 6 {
		case 0:
			mid = append(mid, wh(d))
		case 1:
			mid = append(mid, reg(d, "was a dir"))
		case 2:
			mid = append(mid, opq(d), reg(d+"/new", "n"))
		case 3:
			mid = append(mid, dir(d+"/f1"), reg(d+"/f1/inside", "x"), wh(d+"/sub/g2"))
		case 4:
			mid = append(mid, reg(d+"/sub/g3", "changed").M(0o600), dir(d).M(0o700).T(d2))
		case 5:
			top = append(top, hard(d+"/sub/linked", d+"/f4"), hard(fmt.Sprintf("x%02d", i), d+"/sub/g5"))
		}
	}
	return [][]te{base, mid, top}
}

func TestDifferentialAssemblyEqualsApplier(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: layers hold devices, owners and trusted.* xattrs (CI runs as root)")
	}
	for _, tc := range differentialCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			out := filepath.Join(base, "outside")
			mkSentinel(t, out)
			before := scan(t, out)
			tars := make([][]byte, len(tc.layers))
			for i, ents := range tc.layers {
				tars[i] = tarOf(t, out, ents)
			}

			applied := filepath.Join(base, "applied")
			applyErr := applyAll(t, applied, tars)
			trees, unpackErr := unpackAll(base, tars)
			dests := map[string]error{}
			for _, m := range []struct {
				name string
				fn   func(context.Context, string, []assemble.Tree) error
			}{{"Hardlink", assemble.Hardlink}, {"Copy", assemble.Copy}} {
				dest := filepath.Join(base, strings.ToLower(m.name))
				if err := os.Mkdir(dest, 0o700); err != nil {
					t.Fatal(err)
				}
				err := unpackErr
				if err == nil {
					err = m.fn(context.Background(), dest, trees)
				}
				dests[m.name] = err
			}
			streamed := filepath.Join(base, "streamed")
			followed, err := streamAll(base, streamed, tars, trees, unpackErr)
			dests["Streamed"] = err

			if diff := diffScans(before, scan(t, out)); len(diff) > 0 {
				t.Errorf("the sentinel directory outside changed:\n%s", strings.Join(diff, "\n"))
			}
			if tc.wantErr {
				if applyErr == nil {
					t.Errorf("Applier succeeded, want an error")
				}
				for name, err := range dests {
					if err == nil {
						t.Errorf("Unpack and %s succeeded, want an error", name)
					}
				}
				return
			}
			if applyErr != nil {
				t.Fatalf("Applier: %v", applyErr)
			}
			want := scan(t, applied)
			if first := tc.layers[0]; err == nil && !followed && streamable(first) {
				t.Errorf("Streamed: Add assembled the first tree again instead of finishing the stream")
			}
			for _, name := range []string{"Hardlink", "Copy", "Streamed"} {
				if err := dests[name]; err != nil {
					t.Errorf("Unpack + %s: %v", name, err)
					continue
				}
				if diff := diffScans(want, scan(t, filepath.Join(base, strings.ToLower(name)))); len(diff) > 0 {
					t.Errorf("Unpack + %s differs from the Applier (want = Applier):\n%s", name, strings.Join(diff, "\n"))
				}
			}
		})
	}
}

// streamAll is Hardlink with the first tree unpacked again under the eyes of the assembly's
// Stream (what roots pull does for the bottom layer), and reports whether Add finished what
// the stream linked.
func streamAll(base, dest string, tars [][]byte, trees []assemble.Tree, err error) (followed bool, _ error) {
	if err != nil {
		return false, err
	}
	if err := os.Mkdir(dest, 0o700); err != nil {
		return false, err
	}
	asm, err := assemble.NewHardlink(dest)
	if err != nil {
		return false, err
	}
	defer asm.Close()
	st := asm.Stream()
	dir := filepath.Join(base, "trees", "streamed")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	rec, err := layer.UnpackObserved(context.Background(), bytes.NewReader(tars[0]), dir, st)
	if err != nil {
		return false, err
	}
	for i, t := range trees {
		if i == 0 {
			t = treeOf(dir, rec)
		}
		if err := asm.Add(context.Background(), t); err != nil {
			return false, err
		}
	}
	return assemble.Followed(st), asm.Finish(context.Background())
}

// streamable reports whether the stream must carry a first layer to the end: it has a
// non-directory, and no whiteout or opaque marker, hardlink to a name it does not have (a
// Link) or raw block, which leave the tree to Add.
func streamable(ents []te) bool {
	names := map[string]bool{}
	files := false
	for _, e := range ents {
		switch {
		case e.Raw != nil, strings.Contains(e.Name, ".wh."), e.Type == tar.TypeLink && !names[strings.TrimPrefix(e.Link, "/")]:
			return false
		}
		names[strings.TrimSuffix(e.Name, "/")] = true
		files = files || e.Type != tar.TypeDir
	}
	return files
}

// mkSentinel makes the directory that no layer may touch.
func mkSentinel(t *testing.T, out string) {
	t.Helper()
	for _, err := range []error{
		os.MkdirAll(filepath.Join(out, "sub"), 0o755),
		os.WriteFile(filepath.Join(out, "secret"), []byte("secret"), 0o644),
		os.WriteFile(filepath.Join(out, "sub", "passwd"), []byte("root"), 0o644),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// tarOf builds an uncompressed layer, every header PAX.
func tarOf(t *testing.T, out string, ents []te) []byte {
	t.Helper()
	pax := make([]te, len(ents))
	for i, e := range ents {
		pax[i] = e.F(tar.FormatPAX)
	}
	return testtree.Layer(t, out, d0, pax)
}

// applyAll applies the layers onto dir with a layer.Applier (roots pull --cache=no).
func applyAll(t *testing.T, dir string, tars [][]byte) error {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	a, err := layer.NewApplier(dir)
	if err != nil {
		return err
	}
	defer a.Close()
	for i, b := range tars {
		if err := a.Apply(context.Background(), bytes.NewReader(b)); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	_, err = a.Finish()
	return err
}

// unpackAll unpacks every layer as a tree of its own, as the cache does.
func unpackAll(base string, tars [][]byte) ([]assemble.Tree, error) {
	trees := make([]assemble.Tree, len(tars))
	for i, b := range tars {
		dir := filepath.Join(base, "trees", strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		rec, err := layer.Unpack(context.Background(), bytes.NewReader(b), dir)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		trees[i] = treeOf(dir, rec)
	}
	return trees, nil
}

// treeOf is what cmd/roots hands assembly for a cached tree.
func treeOf(dir string, rec layer.Record) assemble.Tree {
	return assemble.Tree{Dir: dir, Record: rec}
}

// scan reads every entry below root, "." included, overlayfs bookkeeping (trusted.overlay.*)
// aside: a tree keeps its opaque markers there, and assembly must not copy them.
func scan(t *testing.T, root string) map[string]testtree.Entry {
	t.Helper()
	return testtree.Scan(t, root, testtree.WithRoot(), testtree.SkipXattrs("trusted.overlay."))
}

// diffScans lists how got differs from want. A directory's mtime is compared when one side
// has a time from a tar header; two run-time mtimes are those of directories made only as parents.
func diffScans(want, got map[string]testtree.Entry) []string {
	return testtree.Diff(want, got, testtree.DirMtimesFrom(fromTar.Add(time.Nanosecond)))
}
