package assemble

import (
	"context"
	"errors"
	caslayer "github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/internal/testtree"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// env is what a case's extra check can look at.
type env struct {
	dest, out string
	trees     []Tree
	mode      string
}

// outsideIntact checks that the directory symlinks point at still holds only its secret.
func outsideIntact(t *testing.T, e env) { t.Helper(); testtree.OutsideIntact(t, e.out) }

var assembleCases = []struct {
	name    string
	layers  []layer // bottom to top
	want    []ent   // the whole destination but "." (0755 unless listed)
	wantErr error
	check   func(t *testing.T, e env)
}{
	{
		name: "WhiteoutFile",
		layers: []layer{
			{ents: []ent{file("a/x", 0o644, "x"), file("a/y", 0o644, "y")}},
			{ents: []ent{wh("a/x")}},
		},
		want: []ent{dir("a", 0o755).at(tImplicit), file("a/y", 0o644, "y")},
	},
	{
		name: "WhiteoutDirSubtree",
		layers: []layer{
			{ents: []ent{dir("d", 0o755), dir("d/e", 0o500), file("d/e/f", 0o644, "f"), file("keep", 0o600, "k")}},
			{ents: []ent{wh("d")}},
		},
		want: []ent{file("keep", 0o600, "k")},
	},
	{
		name: "WhiteoutDanglingSymlink",
		layers: []layer{
			{ents: []ent{symlink("x", "/nonexistent"), symlink("y", "$OUT")}},
			{ents: []ent{wh("x"), wh("y")}},
		},
		check: outsideIntact,
	},
	{
		name: "WhiteoutThroughSymlink",
		layers: []layer{
			{ents: []ent{symlink("a", "../outside"), symlink("abs", "/srv/data")}},
			{ents: []ent{wh("a/secret"), wh("abs/secret")}},
		},
		// The links are followed inside the destination: ../outside is outside/ there, which has
		// no secret; the one outside survives. The layer's implicit dirs lead there too.
		want: []ent{symlink("a", "../outside"), symlink("abs", "/srv/data"),
			{path: "outside", kind: kDir, mode: 0o755, anyTime: true},
			{path: "srv", kind: kDir, mode: 0o755, anyTime: true}, {path: "srv/data", kind: kDir, mode: 0o755, anyTime: true}},
		check: outsideIntact,
	},
	{
		name: "WhiteoutThroughUsrMergeSymlink",
		layers: []layer{
			{ents: []ent{dir("usr", 0o755), dir("usr/lib", 0o755), file("usr/lib/a", 0o644, "a"), file("usr/lib/b", 0o644, "b"), symlink("lib", "usr/lib")}},
			{ents: []ent{wh("lib/a"), file("lib/c", 0o644, "c")}},
		},
		want: []ent{symlink("lib", "usr/lib"), dir("usr", 0o755), dir("usr/lib", 0o755),
			file("usr/lib/b", 0o644, "b"), file("usr/lib/c", 0o644, "c")},
	},
	{
		name: "WhiteoutListedWithoutDevice",
		layers: []layer{
			{ents: []ent{file("x", 0o644, "x"), file("y", 0o644, "y")}},
			{ents: []ent{file("z", 0o644, "z")}, whiteouts: []string{"x"}},
		},
		want: []ent{file("y", 0o644, "y"), file("z", 0o644, "z")},
	},
	{
		name: "WhiteoutReaddedInSameLayer",
		layers: []layer{
			{ents: []ent{dir("x", 0o700), file("x/old", 0o644, "old")}},
			{ents: []ent{dir("x", 0o755), file("x/new", 0o644, "new")}, whiteouts: []string{"x"}},
		},
		want: []ent{dir("x", 0o755), file("x/new", 0o644, "new")},
	},
	{
		name: "WhiteoutMissingIsNoop",
		layers: []layer{
			{ents: []ent{file("a", 0o644, "a")}},
			{ents: []ent{wh("nothing"), wh("deep/er/still")}},
		},
		want: []ent{file("a", 0o644, "a"), dir("deep", 0o755).at(tImplicit), dir("deep/er", 0o755).at(tImplicit)},
	},
	{
		name: "OpaqueKeepsSameLayer",
		layers: []layer{
			{ents: []ent{dir("d", 0o755), file("d/old", 0o644, "old"), dir("d/sub", 0o755), file("d/sub/deep", 0o644, "deep"), file("other", 0o644, "o")}},
			{ents: []ent{dir("d", 0o750), file("d/new", 0o644, "new")}, opaque: []string{"d"}},
		},
		// No trusted.overlay.opaque in the destination: want lists no xattrs.
		want: []ent{dir("d", 0o750), file("d/new", 0o644, "new"), file("other", 0o644, "o")},
	},
	{
		name: "OpaqueImplicitKeepsLowerMetadata",
		layers: []layer{
			{ents: []ent{dir("d", 0o700).at(t1), file("d/old", 0o644, "old")}},
			{ents: []ent{file("d/new", 0o644, "new")}, opaque: []string{"d"}},
		},
		want: []ent{dir("d", 0o700).at(t1), file("d/new", 0o644, "new")},
	},
	{
		name: "FileToDir",
		layers: []layer{
			{ents: []ent{file("x", 0o644, "file")}},
			{ents: []ent{dir("x", 0o711), file("x/y", 0o644, "y")}},
		},
		want: []ent{dir("x", 0o711), file("x/y", 0o644, "y")},
	},
	{
		name: "DirToFile",
		layers: []layer{
			{ents: []ent{dir("x", 0o755), dir("x/y", 0o555), file("x/y/z", 0o644, "z")}},
			{ents: []ent{file("x", 0o600, "now a file")}},
		},
		want: []ent{file("x", 0o600, "now a file")},
	},
	{
		name: "SymlinkToDirNeverFollowed",
		layers: []layer{
			{ents: []ent{symlink("etc", "$OUT")}},
			{ents: []ent{dir("etc", 0o755), file("etc/passwd", 0o644, "root:x:0:0")}},
		},
		want:  []ent{dir("etc", 0o755), file("etc/passwd", 0o644, "root:x:0:0")},
		check: outsideIntact,
	},
	{
		name: "SymlinkToImplicitDirFollowedInside",
		layers: []layer{
			{ents: []ent{symlink("etc", "../../outside"), symlink("lib", "usr/lib"), dir("usr", 0o755), dir("usr/lib", 0o700)}},
			{ents: []ent{file("etc/secret", 0o644, "overwritten?"), file("lib/x/y", 0o644, "y")}},
		},
		want: []ent{symlink("etc", "../../outside"), {path: "outside", kind: kDir, mode: 0o755, anyTime: true},
			file("outside/secret", 0o644, "overwritten?"), symlink("lib", "usr/lib"), dir("usr", 0o755), dir("usr/lib", 0o700),
			{path: "usr/lib/x", kind: kDir, mode: 0o755, anyTime: true}, file("usr/lib/x/y", 0o644, "y")},
		check: outsideIntact,
	},
	{
		name: "SymlinkLoopRefused",
		layers: []layer{
			{ents: []ent{symlink("a", "b"), symlink("b", "/a")}},
			{ents: []ent{file("a/x", 0o644, "x")}},
		},
		wantErr: ErrSymlinkLoop,
	},
	{
		name: "ExplicitDirReplacesSymlink",
		layers: []layer{
			{ents: []ent{symlink("lib", "usr/lib"), dir("usr", 0o755), dir("usr/lib", 0o755)}},
			{ents: []ent{dir("lib", 0o711), file("lib/x", 0o644, "x")}},
		},
		want: []ent{dir("lib", 0o711), file("lib/x", 0o644, "x"), dir("usr", 0o755), dir("usr/lib", 0o755)},
	},
	{
		name: "DirToSymlinkUsrMerge",
		layers: []layer{
			{ents: []ent{dir("bin", 0o755), file("bin/sh", 0o755, "sh"), dir("usr", 0o755), dir("usr/bin", 0o755), file("usr/bin/ls", 0o755, "ls")}},
			{ents: []ent{symlink("bin", "usr/bin"), file("usr/bin/sh", 0o755, "merged sh")}},
		},
		want: []ent{symlink("bin", "usr/bin"), dir("usr", 0o755), dir("usr/bin", 0o755),
			file("usr/bin/ls", 0o755, "ls"), file("usr/bin/sh", 0o755, "merged sh")},
	},
	{
		name: "ImplicitDirKeepsLowerMode",
		layers: []layer{
			{ents: []ent{dir("tmp", 0o1777).at(t1)}},
			{ents: []ent{file("tmp/x", 0o644, "x")}},
		},
		want: []ent{dir("tmp", 0o1777).at(t1), file("tmp/x", 0o644, "x")},
	},
	{
		name: "ImplicitNewDirTakesTreeMetadata",
		layers: []layer{
			{ents: []ent{file("a", 0o644, "a")}},
			{ents: []ent{file("new/f", 0o644, "f")}},
		},
		want: []ent{file("a", 0o644, "a"), dir("new", 0o755).at(tImplicit), file("new/f", 0o644, "f")},
	},
	{
		name: "ImplicitAfterWhiteoutTakesTreeMetadata",
		layers: []layer{
			{ents: []ent{dir("d", 0o700).at(t1)}},
			{ents: []ent{wh("d")}},
			{ents: []ent{file("d/f", 0o644, "f")}},
		},
		want: []ent{dir("d", 0o755).at(tImplicit), file("d/f", 0o644, "f")},
	},
	{
		name: "ExplicitDirOverridesLower",
		layers: []layer{
			{ents: []ent{dir("etc", 0o700).own(1, 1).xattr("user.lower", "1"), file("etc/a", 0o644, "a")}},
			{ents: []ent{dir("etc", 0o2755).own(5, 6).xattr("user.upper", "2").at(t1)}},
		},
		want: []ent{dir("etc", 0o2755).own(5, 6).xattr("user.upper", "2").at(t1), file("etc/a", 0o644, "a")},
	},
	{
		name: "DirMetadataLast",
		layers: []layer{
			{ents: []ent{dir("ro", 0o500).at(t1), file("ro/f", 0o644, "f"), dir("ro/sub", 0o500), file("ro/sub/g", 0o400, "g")}},
			{ents: []ent{file("ro/h", 0o644, "h"), file("ro/sub/i", 0o644, "i")}},
		},
		want: []ent{dir("ro", 0o500).at(t1), file("ro/f", 0o644, "f"), file("ro/h", 0o644, "h"),
			dir("ro/sub", 0o500), file("ro/sub/g", 0o400, "g"), file("ro/sub/i", 0o644, "i")},
	},
	{
		// A tree whose root is not implicit (its layer had an entry for "./") gives the
		// destination's root its metadata, the topmost such tree winning.
		name: "RootMetadataFromTopmostTree",
		layers: []layer{
			{ents: []ent{dir(".", 0o751).at(t1).xattr("user.low", "l"), file("a", 0o644, "a")}},
			{ents: []ent{dir(".", 0o700).own(5, 6).xattr("user.root", "r"), file("b", 0o644, "b")}},
			{ents: []ent{file("c", 0o644, "c")}},
		},
		want: []ent{dir(".", 0o700).own(5, 6).xattr("user.root", "r"), file("a", 0o644, "a"), file("b", 0o644, "b"),
			file("c", 0o644, "c")},
	},
	{
		// Without a root entry in any layer, the root is 0755 and keeps its owner and times.
		name: "RootWithoutEntryIs0755",
		layers: []layer{
			{ents: []ent{file("a", 0o644, "a")}},
			{ents: []ent{file("b", 0o644, "b")}, opaque: []string{"."}},
		},
		want: []ent{file("b", 0o644, "b")},
	},
	{
		name:   "HardlinkSharesInode",
		layers: []layer{{ents: []ent{file("bin/busybox", 0o755, "bb")}}},
		want:   []ent{dir("bin", 0o755).at(tImplicit), file("bin/busybox", 0o755, "bb")},
		check: func(t *testing.T, e env) {
			var tree, dest unix.Stat_t
			must(t, unix.Lstat(filepath.Join(e.trees[0].Dir, "bin/busybox"), &tree))
			must(t, unix.Lstat(filepath.Join(e.dest, "bin/busybox"), &dest))
			if shared := tree.Ino == dest.Ino && tree.Dev == dest.Dev; shared != (e.mode == "Hardlink") {
				t.Errorf("%s: destination shares the tree's inode: %v", e.mode, shared)
			}
		},
	},
	{
		name:   "HardlinkGroupWithinLayer",
		layers: []layer{{ents: []ent{file("a", 0o644, "same"), hardlink("b", "a"), hardlink("sub/c", "a")}}},
		want: []ent{file("a", 0o644, "same"), hardlink("b", "a"), dir("sub", 0o755).at(tImplicit),
			hardlink("sub/c", "a")},
	},
	{
		name: "LinkToLowerLayer",
		layers: []layer{
			{ents: []ent{file("usr/bin/perl", 0o755, "perl")}},
			{ents: []ent{idir("usr/bin")}, links: []Link{{Name: "usr/bin/perl5.36", Target: "usr/bin/perl"}}},
		},
		want: []ent{dir("usr", 0o755).at(tImplicit), dir("usr/bin", 0o755).at(tImplicit),
			file("usr/bin/perl", 0o755, "perl"), hardlink("usr/bin/perl5.36", "usr/bin/perl")},
	},
	{
		name: "LinkReplacesExisting",
		layers: []layer{
			{ents: []ent{file("a", 0o644, "a"), dir("b", 0o755), file("b/old", 0o644, "old")}},
			{links: []Link{{Name: "b", Target: "a"}}},
		},
		want: []ent{file("a", 0o644, "a"), hardlink("b", "a")},
	},
	{
		// Links come first, while their targets still hold the lower layers' files.
		name: "LinksBeforeEntries",
		layers: []layer{
			{ents: []ent{file("a", 0o644, "old")}},
			{ents: []ent{file("a", 0o600, "new").at(t1)}, links: []Link{{Name: "b", Target: "a"}}},
		},
		want: []ent{file("a", 0o600, "new").at(t1), file("b", 0o644, "old")},
	},
	{
		// Inside an opaque directory nothing of the lower layers shows, metadata included: the
		// directory on the way to a Link is a new one (0755 root:root), not the lower o/s.
		name: "LinkInOpaqueDirMakesNewParents",
		layers: []layer{
			{ents: []ent{dir("o", 0o755), file("o/old", 0o644, "old"), dir("o/s", 0o700).own(7, 7),
				file("o/s/old", 0o644, "old"), file("x", 0o644, "x")}},
			{ents: []ent{idir("o/s")}, opaque: []string{"o"}, links: []Link{{Name: "o/s/b", Target: "x"}}},
		},
		want: []ent{dir("o", 0o755), dir("o/s", 0o755).at(tImplicit), hardlink("o/s/b", "x"), file("x", 0o644, "x")},
	},
	{
		// A Link keeps the lower file its target named, whatever the layer deletes or replaces.
		name: "LinkTargetWhitedOutAndOpaqueSameLayer",
		layers: []layer{
			{ents: []ent{dir("o", 0o755), file("o/a", 0o644, "a"), file("x", 0o644, "x")}},
			{ents: []ent{file("x", 0o600, "new x")}, whiteouts: []string{"o"},
				links: []Link{{Name: "b", Target: "o/a"}, {Name: "c", Target: "x"}}},
		},
		want: []ent{file("b", 0o644, "a"), file("c", 0o644, "x"), file("x", 0o600, "new x")},
	},
	{
		// The private directory that holds Links between their two steps never shows, even
		// when the layer makes the root opaque.
		name: "LinksWithOpaqueRoot",
		layers: []layer{
			{ents: []ent{file("x", 0o644, "x"), dir("d", 0o700), file("d/y", 0o644, "y")}},
			{opaque: []string{"."}, links: []Link{{Name: "d/x", Target: "x"}, {Name: "y", Target: "d/y"}}},
		},
		want: []ent{{path: "d", kind: kDir, mode: 0o755, anyTime: true}, file("d/x", 0o644, "x"), file("y", 0o644, "y")},
	},
	{
		name: "LinkParentSymlinkFollowedInside",
		layers: []layer{
			{ents: []ent{symlink("d", "../outside"), file("x", 0o644, "x")}},
			{links: []Link{{Name: "d/secret", Target: "x"}}},
		},
		want: []ent{symlink("d", "../outside"), {path: "outside", kind: kDir, mode: 0o755, anyTime: true},
			hardlink("outside/secret", "x"), file("x", 0o644, "x")},
		check: outsideIntact,
	},
	{
		name: "LinkToItselfIsNoop",
		layers: []layer{
			{ents: []ent{file("a", 0o644, "a")}},
			{links: []Link{{Name: "a", Target: "a"}}},
		},
		want: []ent{file("a", 0o644, "a")},
	},
	{
		name: "LinkTargetThroughSymlinkRefused",
		layers: []layer{
			{ents: []ent{symlink("lib", "$OUT")}},
			{links: []Link{{Name: "x", Target: "lib/secret"}}},
		},
		wantErr: caslayer.ErrLinkTargetMissing,
		check:   outsideIntact,
	},
	{
		name:    "LinkTargetMissing",
		layers:  []layer{{links: []Link{{Name: "x", Target: "nope"}}}},
		wantErr: caslayer.ErrLinkTargetMissing,
	},
	{
		name: "LinkToDirectoryRefused",
		layers: []layer{
			{ents: []ent{dir("d", 0o755)}},
			{links: []Link{{Name: "x", Target: "d"}}},
		},
		wantErr: caslayer.ErrInvalidLink,
	},
	{
		name: "OwnersModesXattrs",
		layers: []layer{{ents: []ent{
			file("bin/su", 0o4755, "su").xattr("trusted.t", "1").xattr("user.u", "2"),
			file("bin/ping", 0o755, "ping").xattr("security.capability", string(capNetRaw)),
			dir("home/u", 0o700).own(1000, 1001).xattr("user.d", "dir"),
			file("home/u/f", 0o640, "f").own(1000, 1001),
			symlink("home/u/l", "f").own(1000, 1001).xattr("trusted.s", "sym"),
		}}},
		want: []ent{
			dir("bin", 0o755).at(tImplicit), dir("home", 0o755).at(tImplicit),
			file("bin/su", 0o4755, "su").xattr("trusted.t", "1").xattr("user.u", "2"),
			file("bin/ping", 0o755, "ping").xattr("security.capability", string(capNetRaw)),
			dir("home/u", 0o700).own(1000, 1001).xattr("user.d", "dir"),
			file("home/u/f", 0o640, "f").own(1000, 1001),
			symlink("home/u/l", "f").own(1000, 1001).xattr("trusted.s", "sym"),
		},
	},
	{
		name: "DevicesAndFifos",
		layers: []layer{{ents: []ent{
			chr("dev/null", 0o666, 1, 3).own(0, 5), fifo("run/initctl", 0o600), idir("empty"),
		}}},
		want: []ent{
			dir("dev", 0o755).at(tImplicit), dir("run", 0o755).at(tImplicit), dir("empty", 0o755).at(tImplicit),
			chr("dev/null", 0o666, 1, 3).own(0, 5), fifo("run/initctl", 0o600),
		},
	},
	{
		name:    "WhiteoutClimbingOutRejected",
		layers:  []layer{{whiteouts: []string{"../x"}}},
		wantErr: ErrUnsafePath,
	},
	{
		name:    "AbsoluteLinkRejected",
		layers:  []layer{{links: []Link{{Name: "x", Target: "/etc/passwd"}}}},
		wantErr: ErrUnsafePath,
	},
	{
		name:    "UncleanOpaqueRejected",
		layers:  []layer{{opaque: []string{"a//b"}}},
		wantErr: ErrUnsafePath,
	},
}

// capNetRaw is a version 2 security.capability value granting cap_net_raw (permitted, effective).
var capNetRaw = []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// assemblyModes are the ways every case is assembled: the result must be the same, only inode
// sharing differs.
var assemblyModes = []struct {
	name      string
	fn        func(context.Context, string, []Tree) error
	crossDev  bool // the destination is on another file system (a tmpfs): links fail with EXDEV
	sharesIno bool
}{
	{name: "Hardlink", fn: Hardlink, sharesIno: true},
	{name: "Copy", fn: Copy},
	{name: "HardlinkCrossDevice", fn: Hardlink, crossDev: true},
}

func TestAssemble(t *testing.T) {
	requireRoot(t)
	for _, m := range assemblyModes {
		t.Run(m.name, func(t *testing.T) {
			for _, tc := range assembleCases {
				t.Run(tc.name, func(t *testing.T) {
					base := t.TempDir()
					out := testtree.Outside(t, filepath.Join(base, "outside"))
					var trees []Tree
					for i, l := range tc.layers {
						trees = append(trees, buildTree(t, filepath.Join(base, "trees", strconv.Itoa(i)), l, out))
					}
					destParent := base
					if m.crossDev {
						destParent = mountTmpfs(t)
					}
					dest := filepath.Join(destParent, "dest")
					must(t, os.Mkdir(dest, 0o700))

					err := m.fn(context.Background(), dest, trees)
					e := env{dest: dest, out: out, trees: trees, mode: m.name}
					if tc.wantErr != nil {
						if !errors.Is(err, tc.wantErr) {
							t.Fatalf("error %v, want %v", err, tc.wantErr)
						}
						if tc.check != nil {
							tc.check(t, e)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					snap := snapshot(t, dest)
					compare(t, snap, tc.want)
					inodes := treeInodes(t, trees)
					for p, g := range snap {
						if g.kind == kDir {
							continue
						}
						_, shared := inodes[[2]uint64{g.dev, g.ino}]
						want := m.sharesIno && !(g.kind == kFile && (p == "etc" || strings.HasPrefix(p, "etc/")))
						if shared != want {
							t.Errorf("%s: shares an inode with a tree: %v, want %v (files below etc/ are copied)", p, shared, want)
						}
					}
					if tc.check != nil {
						tc.check(t, e)
					}
				})
			}
		})
	}
}

func TestAssembleCancelled(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	tree := buildTree(t, filepath.Join(base, "tree"), layer{ents: []ent{file("a/b", 0o644, "b")}}, "")
	dest := filepath.Join(base, "dest")
	must(t, os.Mkdir(dest, 0o700))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, fn := range []func(context.Context, string, []Tree) error{Hardlink, Copy} {
		if err := fn(ctx, dest, []Tree{tree}); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	}
}

// TestHardlinkTooManyLinks fills an inode up to ext4's 65000 links: linking it into the
// destination fails with EMLINK, so the file is copied, and its second name in the same layer
// becomes a link of that copy.
func TestHardlinkTooManyLinks(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	var sfs unix.Statfs_t
	must(t, unix.Statfs(base, &sfs))
	if sfs.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("needs ext4's 65000-link limit; %s is file system type %#x", base, sfs.Type)
	}
	tree := buildTree(t, filepath.Join(base, "tree"), layer{ents: []ent{file("f", 0o644, "full"), hardlink("g", "f")}}, "")
	spare := filepath.Join(base, "spare")
	must(t, os.Mkdir(spare, 0o755))
	src := filepath.Join(tree.Dir, "f")
	for i := 0; ; i++ {
		err := os.Link(src, filepath.Join(spare, strconv.Itoa(i)))
		if errors.Is(err, unix.EMLINK) {
			break
		}
		must(t, err)
	}
	dest := filepath.Join(base, "dest")
	must(t, os.Mkdir(dest, 0o700))
	must(t, Hardlink(context.Background(), dest, []Tree{tree}))

	var tf, df, dg unix.Stat_t
	must(t, unix.Lstat(src, &tf))
	must(t, unix.Lstat(filepath.Join(dest, "f"), &df))
	must(t, unix.Lstat(filepath.Join(dest, "g"), &dg))
	if df.Ino == tf.Ino {
		t.Errorf("f was linked despite EMLINK")
	}
	if dg.Ino != df.Ino {
		t.Errorf("g (inode %d) is not a link of the copy f (inode %d)", dg.Ino, df.Ino)
	}
	compare(t, snapshot(t, dest), []ent{file("f", 0o644, "full"), hardlink("g", "f")})
}

// TestCopyKeepsHoles: a copy of a sparse file copies its data only, not the zeros of its holes.
func TestCopyKeepsHoles(t *testing.T) {
	requireRoot(t)
	const size = 1 << 40
	base := t.TempDir()
	tree := buildTree(t, filepath.Join(base, "tree"), layer{ents: []ent{file("big", 0o644, "")}}, "")
	f, err := os.OpenFile(filepath.Join(tree.Dir, "big"), os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt([]byte("head"), 0)
	must(t, err)
	_, err = f.WriteAt([]byte("middle"), size/2)
	must(t, err)
	must(t, f.Truncate(size))
	must(t, f.Close())
	for _, m := range []struct {
		name string
		fn   func(context.Context, string, []Tree) error
		dir  string
	}{{"Copy", Copy, base}, {"HardlinkCrossDevice", Hardlink, mountTmpfs(t)}} {
		dest := filepath.Join(m.dir, "dest-"+m.name)
		must(t, os.Mkdir(dest, 0o700))
		must(t, m.fn(context.Background(), dest, []Tree{tree}))
		var st unix.Stat_t
		must(t, unix.Stat(filepath.Join(dest, "big"), &st))
		if st.Size != size || st.Blocks*512 > 1<<20 {
			t.Errorf("%s: size %d, %d bytes on disk; want %d, holes", m.name, st.Size, st.Blocks*512, int64(size))
		}
		g, err := os.Open(filepath.Join(dest, "big"))
		must(t, err)
		for off, want := range map[int64]string{0: "head", size / 2: "middle", size - 2: "\x00\x00"} {
			b := make([]byte, len(want))
			if _, err := g.ReadAt(b, off); err != nil || string(b) != want {
				t.Errorf("%s: at %d: %q, %v; want %q", m.name, off, b, err, want)
			}
		}
		g.Close()
	}
}
