package attack

// TestAttacks pushes hostile layers to a real registry and pulls them with the
// built binary, with the cache (hardlink assembly) and without it
// (--cache=no). Every pull either fails cleanly or gives a confined tree that
// is checked exactly, and nothing outside DEST and the cache may change: a
// sentinel directory beside DEST and an absolute ("/tmp"-style) target
// directory are scanned before and after every pull (content, mode, owner,
// times, inode, link count, xattrs, existence). The harness is in harness_test.go.

import (
	"archive/tar"
	"bytes"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/cmd/roots/e2e"
	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

type testCase struct {
	name string
	// layers builds the image's layers (pushed with registrytest), or push
	// pushes the image itself.
	layers func(e env) []registrytest.Layer
	push   func(t testing.TB, r *registrytest.Registry, repo string, e env) registrytest.Pushed
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
	want   func(e env) rootfs
	check  func(t *testing.T, dest string, e env)
	limit  time.Duration // per pull; default 60s
}

func cases() []testCase {
	const pwned = "pwned"
	return []testCase{
		// Names.
		{name: "DotDotName", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("../outside/secret", pwned), registrytest.File("../../escape", "x"), registrytest.File("../../../../../../../../../x", "y"))}
		}, want: func(e env) rootfs {
			return rootfs{}.f("outside/secret", 0o644, pwned).f("escape", 0o644, "x").f("x", 0o644, "y")
		}},
		{name: "AbsoluteName", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File(e.Out+"/secret", pwned), registrytest.File(e.Abs+"/file", pwned), registrytest.File("/rootfile", "r"))}
		}, want: func(e env) rootfs {
			return rootfs{}.f(e.rel(e.Out)+"/secret", 0o644, pwned).f(e.rel(e.Abs)+"/file", 0o644, pwned).f("rootfile", 0o644, "r")
		}},
		{name: "DotDotInMiddle", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("a/../../outside/secret", pwned), registrytest.File("a/b/../../../x", "x"), registrytest.File("c/./d/../../../../outside/dir/inner", pwned))}
		}, want: func(e env) rootfs {
			return rootfs{}.f("outside/secret", 0o644, pwned).f("x", 0o644, "x").f("outside/dir/inner", 0o644, pwned)
		}},
		{name: "GNULongNameDotDot", layers: func(e env) []registrytest.Layer {
			name := strings.Repeat("../", 100) + "outside/pwned"
			return []registrytest.Layer{registrytest.RawGzipLayer(testtree.NewTar(must()).Add(tar.Header{Name: name, Format: tar.FormatGNU}, pwned).Bytes())}
		}, want: func(e env) rootfs { return rootfs{}.f("outside/pwned", 0o644, pwned) }},
		{name: "NulInName", layers: func(e env) []registrytest.Layer {
			b := testtree.Header("nul\x00/../../outside/pwned", tar.TypeReg, 0o644, 5, false, nil)
			b = append(b, testtree.Pad([]byte(pwned))...)
			return []registrytest.Layer{registrytest.RawGzipLayer(append(b, make([]byte, 1024)...))}
		}, want: func(e env) rootfs { return rootfs{}.f("nul", 0o644, pwned) }},
		{name: "NulInPaxPath", layers: func(e env) []registrytest.Layer {
			b := testtree.PAX('x', [2]string{"path", "ok\x00/../../outside/pwned"})
			b = append(b, testtree.Header("ok", tar.TypeReg, 0o644, 5, false, nil)...)
			b = append(b, testtree.Pad([]byte(pwned))...)
			return []registrytest.Layer{registrytest.RawGzipLayer(append(b, make([]byte, 1024)...))}
		}, fail: "invalid tar header"},
		{name: "LongNameOverflow", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("a/"+strings.Repeat("x", 256), "x"))}
		}, fail: "longer than 255 bytes"},
		{name: "RootEntryModes", layers: func(e env) []registrytest.Layer {
			// Entries for the root itself, in any spelling: a directory's
			// metadata replaces the root's, the topmost winning (layer.md:
			// dir meets dir); any other type is ignored. Nothing is written
			// through "..", and DEST stays a plain directory.
			return []registrytest.Layer{
				registrytest.GzipLayer(reg{Name: "./", Type: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1000}, registrytest.File("a", "a")),
				registrytest.GzipLayer(reg{Name: "/", Type: tar.TypeDir, Mode: 0o000}, reg{Name: "..", Type: tar.TypeSymlink, Linkname: e.Out},
					reg{Name: ".", Body: []byte("a file at the root")}, reg{Name: "../", Type: tar.TypeDir, Mode: 0o777}, registrytest.File("b", "b")),
			}
		}, want: func(e env) rootfs { return rootfs{}.f("a", 0o644, "a").f("b", 0o644, "b") },
			check: func(t *testing.T, dest string, e env) {
				// "../", the top layer's last entry for the root, has 0777 root:root.
				if s := testtree.Stat(t, dest); s.Type != "d" || s.Mode != 0o777 || s.UID != 0 || s.GID != 0 || s.Xattrs != "" {
					t.Errorf("DEST itself: %v; want a plain 0777 root:root directory", s)
				}
			}},

		// Symlinked parents.
		{name: "SymlinkParentUpAndOut", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("up", "../outside"), registrytest.File("up/secret", pwned),
				registrytest.Dir("deep/", 0o755), registrytest.Symlink("deep/up", "../../outside"), registrytest.File("deep/up/dir/inner", pwned))}
		}, want: func(e env) rootfs {
			// Followed inside DEST as if it were "/": ".." stops at DEST's root.
			return rootfs{}.l("up", "../outside").f("outside/secret", 0o644, pwned).d("deep", 0o755).
				l("deep/up", "../../outside").f("outside/dir/inner", 0o644, pwned)
		}},
		{name: "SymlinkParentAbsolute", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("abs", e.Abs), registrytest.File("abs/file", pwned), registrytest.File("abs/dir/new", pwned))}
		}, want: func(e env) rootfs {
			// An absolute link starts at DEST's root.
			return rootfs{}.l("abs", e.Abs).f(e.rel(e.Abs)+"/file", 0o644, pwned).f(e.rel(e.Abs)+"/dir/new", 0o644, pwned)
		}},
		{name: "SymlinkParentToSlash", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("root", "/")), registrytest.GzipLayer(registrytest.File("root"+e.Abs+"/file", pwned))}
		}, want: func(e env) rootfs { return rootfs{}.l("root", "/").f(e.rel(e.Abs)+"/file", 0o644, pwned) }},
		{name: "SymlinkParentFromLowerLayer", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(registrytest.Symlink("up", "../outside"), registrytest.Symlink("abs", e.Abs), registrytest.Symlink("secret", "../outside/secret")),
				registrytest.GzipLayer(registrytest.File("up/secret", pwned), registrytest.File("abs/dir/inner", pwned)),
			}
		}, want: func(e env) rootfs {
			return rootfs{}.l("up", "../outside").f("outside/secret", 0o644, pwned).l("abs", e.Abs).
				f(e.rel(e.Abs)+"/dir/inner", 0o644, pwned).l("secret", "../outside/secret")
		}},
		{name: "SymlinkChainOut", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(registrytest.Symlink("a", "b"), registrytest.Symlink("b", "c"), registrytest.Symlink("c", "../outside"), registrytest.Symlink("d", "a/dir")),
				registrytest.GzipLayer(registrytest.File("a/secret", pwned), registrytest.File("d/inner", pwned)),
			}
		}, want: func(e env) rootfs {
			return rootfs{}.l("a", "b").l("b", "c").l("c", "../outside").l("d", "a/dir").
				f("outside/secret", 0o644, pwned).f("outside/dir/inner", 0o644, pwned)
		}},
		{name: "SymlinkLoopParent", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(registrytest.Symlink("loop", "loop"), registrytest.Symlink("l1", "l2"), registrytest.Symlink("l2", "l1")),
				registrytest.GzipLayer(registrytest.File("l1/f", "y")),
			}
		}, treeOK: true, fail: "too many levels of symbolic links"},
		{name: "SymlinkLoopParentSameLayer", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("loop", "loop"), registrytest.File("loop/f", "x"))}
		}, fail: "too many levels of symbolic links"},
		{name: "SymlinkDotParent", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("dot", ".")), registrytest.GzipLayer(registrytest.File("dot/dot/f", "z"))}
		}, want: func(e env) rootfs { return rootfs{}.l("dot", ".").f("f", 0o644, "z") }},
		{name: "SymlinkIntoCache", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(registrytest.Symlink("c", e.Cache), registrytest.Symlink("b", e.Cache+"/blobs/sha256")),
				registrytest.GzipLayer(registrytest.File("c/blobs/sha256/x", pwned), registrytest.File("c/.wh.roots.lock", ""), registrytest.File("b/.wh..wh..opq", "")),
			}
		}, want: func(e env) rootfs {
			// The links lead to the cache's path inside DEST: the cache itself is never touched.
			c := e.rel(e.Cache)
			return rootfs{}.l("c", e.Cache).l("b", e.Cache+"/blobs/sha256").f(c+"/blobs/sha256/x", 0o644, pwned)
		}},

		// Hardlinks.
		{name: "HardlinkTargetOutside", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("a", "a")), registrytest.GzipLayer(registrytest.Hardlink("h", e.Out+"/secret"))}
		}, treeOK: true, fail: "hardlink target"},
		{name: "HardlinkTargetDotDot", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("outside/secret", "inside")), registrytest.GzipLayer(registrytest.Hardlink("h", "../../outside/secret"))}
		}, want: func(e env) rootfs {
			return rootfs{}.f("outside/secret", 0o644, "inside").f("h", 0o644, "inside")
		}, check: func(t *testing.T, dest string, e env) {
			if !e2e.SameInode(t, dest+"/h", dest+"/outside/secret") {
				t.Error("h is not a hardlink of outside/secret")
			}
		}},
		{name: "HardlinkTargetDotDotMissing", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Hardlink("h", "../outside/secret"))}
		}, treeOK: true, fail: "hardlink target"},
		{name: "HardlinkTargetThroughSymlink", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", "../outside")), registrytest.GzipLayer(registrytest.Hardlink("h", "s/secret"))}
		}, treeOK: true, fail: "hardlink target"},
		{name: "HardlinkTargetThroughSymlinkSameLayer", layers: func(e env) []registrytest.Layer {
			// s/secret is DEST/<Out>/secret, which no layer has; the tree defers to the layers below.
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", e.Out), registrytest.Hardlink("h", "s/secret"))}
		}, treeOK: true, fail: "hardlink target"},
		{name: "HardlinkToDirectory", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Dir("d/", 0o755), registrytest.Hardlink("h", "d"))}
		}, fail: "hardlink"},
		{name: "HardlinkToLowerDirectory", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Dir("d/", 0o755)), registrytest.GzipLayer(registrytest.Hardlink("h", "d"))}
		}, treeOK: true, fail: "hardlink"},
		{name: "HardlinkToRoot", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Hardlink("h", "../"))}
		}, fail: "hardlink"},
		{name: "HardlinkToSymlinkOut", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(registrytest.Symlink("s", "../outside/secret"), registrytest.Hardlink("h", "s")),
				registrytest.GzipLayer(registrytest.Hardlink("h2", "s")),
				registrytest.GzipLayer(registrytest.File("h", pwned)),
			}
		}, want: func(e env) rootfs {
			return rootfs{}.l("s", "../outside/secret").l("h2", "../outside/secret").f("h", 0o644, pwned)
		}, check: func(t *testing.T, dest string, e env) {
			if !e2e.SameInode(t, dest+"/s", dest+"/h2") {
				t.Error("h2 is not a hardlink of the symlink s")
			}
		}},
		{name: "OverwriteHardlinkedLowerFile", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("f", "orig")), registrytest.GzipLayer(registrytest.Hardlink("h", "f")), registrytest.GzipLayer(registrytest.File("h", "new"), registrytest.File("f2", "x"))}
		}, want: func(e env) rootfs {
			return rootfs{}.f("f", 0o644, "orig").f("h", 0o644, "new").f("f2", 0o644, "x")
		}},
		{name: "SetuidFileThroughHardlinkOut", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{
				registrytest.GzipLayer(registrytest.Symlink("sl", "../outside/secret"), registrytest.Symlink("sa", e.Abs+"/file")),
				registrytest.GzipLayer(reg{Name: "bin/su", Body: []byte("su"), Mode: 0o4755}, registrytest.Hardlink("sl", "bin/su"), registrytest.Hardlink("sa", "bin/su")),
			}
		}, want: func(e env) rootfs {
			su := testtree.File(testtree.OctalMode(0o4755), "su")
			return rootfs{}.add("bin/su", su).add("sl", su).add("sa", su)
		}, check: func(t *testing.T, dest string, e env) {
			if !e2e.SameInode(t, dest+"/bin/su", dest+"/sl") || !e2e.SameInode(t, dest+"/bin/su", dest+"/sa") {
				t.Error("sl and sa are not hardlinks of bin/su")
			}
		}},

		// Whiteouts and opaque directories.
		{name: "WhiteoutDotDot", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("keep", "k")),
				registrytest.GzipLayer(registrytest.File("../.wh.outside", ""), registrytest.File("a/../../.wh.parent", ""), registrytest.File("../../.wh.abs", ""), registrytest.File("../.wh.outside-link", ""))}
		}, want: func(e env) rootfs { return rootfs{}.f("keep", 0o644, "k") }},
		{name: "WhiteoutDotDotName", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("d/keep", "k")), registrytest.GzipLayer(registrytest.File("d/.wh..", ""))}
		}, fail: "invalid whiteout"},
		{name: "WhiteoutAbsolute", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("victim", "v"), registrytest.File("keep", "k")),
				registrytest.GzipLayer(registrytest.File("/.wh.victim", ""), registrytest.File(e.Out+"/.wh.secret", ""), registrytest.File(e.Abs+"/.wh.dir", ""))}
		}, want: func(e env) rootfs {
			return rootfs{}.f("keep", 0o644, "k").d(e.rel(e.Out), 0o755).d(e.rel(e.Abs), 0o755)
		}},
		{name: "WhiteoutThroughSymlink", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", "../outside"), registrytest.Symlink("t", e.Abs)),
				registrytest.GzipLayer(registrytest.File("s/.wh.secret", ""), registrytest.File("s/.wh.dir", ""), registrytest.File("t/.wh.file", ""), registrytest.File("t/.wh.dir", ""))}
		}, want: func(e env) rootfs {
			return rootfs{}.l("s", "../outside").l("t", e.Abs).d("outside", 0o755).d(e.rel(e.Abs), 0o755)
		}},
		{name: "WhiteoutEmptyName", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("keep", "k")), registrytest.GzipLayer(registrytest.File(".wh.", ""))}
		}, fail: "invalid whiteout"},
		{name: "WhiteoutWithSlash", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("keep", "k")), registrytest.GzipLayer(registrytest.File(".wh.outside/secret", ""))}
		}, fail: "invalid whiteout"},
		{name: "OpaqueThroughSymlink", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", "../outside"), registrytest.Symlink("t", e.Abs)),
				registrytest.GzipLayer(registrytest.File("s/.wh..wh..opq", ""), registrytest.File("t/.wh..wh..opq", ""))}
		}, want: func(e env) rootfs {
			return rootfs{}.l("s", "../outside").l("t", e.Abs).d("outside", 0o755).d(e.rel(e.Abs), 0o755)
		}},
		{name: "OpaqueRootAbsolute", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("a", "a"), registrytest.File("d/b", "b"), registrytest.Symlink("s", "../outside")),
				registrytest.GzipLayer(registrytest.File("/.wh..wh..opq", ""), registrytest.File("../../.wh..wh..opq", ""), registrytest.File("new", "n"))}
		}, want: func(e env) rootfs { return rootfs{}.f("new", 0o644, "n") }},

		// Types and metadata over lower symlinks.
		{name: "DirOverSymlinkToOutside", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", "../outside"), registrytest.Symlink("t", e.Abs+"/dir")),
				registrytest.GzipLayer(reg{Name: "s/", Type: tar.TypeDir, Mode: 0o700, Uid: 7, Gid: 7}, registrytest.File("s/new", "n"), registrytest.Dir("t/", 0o750))}
		}, want: func(e env) rootfs {
			s := testtree.Dir(0o700)
			s.UID, s.GID = 7, 7
			return rootfs{}.add("s", s).f("s/new", 0o644, "n").d("t", 0o750)
		}},
		{name: "FileOverSymlinkToOutside", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", "../outside/secret"), registrytest.Symlink("t", e.Abs+"/file"), registrytest.Symlink("u", "../outside/dir")),
				registrytest.GzipLayer(reg{Name: "s", Body: []byte(pwned), Mode: 0o600}, registrytest.File("t", "pwned2"), registrytest.File("u", "pwned3"))}
		}, want: func(e env) rootfs {
			return rootfs{}.f("s", 0o600, pwned).f("t", 0o644, "pwned2").f("u", 0o644, "pwned3")
		}},
		{name: "ChmodThroughSymlink", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", "../outside"), registrytest.Symlink("t", "../outside/mode644"), registrytest.Symlink("u", e.Abs)),
				registrytest.GzipLayer(registrytest.Dir("s/", 0o777), registrytest.Dir("u/", 0o1777), reg{Name: "t", Type: tar.TypeSymlink, Linkname: "../outside/mode644", Mode: 0o4777})}
		}, want: func(e env) rootfs {
			return rootfs{}.d("s", 0o777).add("u", testtree.Dir(testtree.OctalMode(0o1777))).l("t", "../outside/mode644")
		}},
		{name: "ChownThroughSymlink", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", "../outside"), registrytest.Symlink("t", "../outside/secret")),
				registrytest.GzipLayer(reg{Name: "s/", Type: tar.TypeDir, Uid: 1234, Gid: 1234},
					reg{Name: "t", Type: tar.TypeSymlink, Linkname: "../outside/secret", Uid: 4321, Gid: 4321})}
		}, want: func(e env) rootfs {
			s, l := testtree.Dir(0o755), testtree.Symlink("../outside/secret")
			s.UID, s.GID, l.UID, l.GID = 1234, 1234, 4321, 4321
			return rootfs{}.add("s", s).add("t", l)
		}},
		{name: "XattrThroughSymlink", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", "../outside"), registrytest.Symlink("t", "../outside/secret")),
				registrytest.GzipLayer(reg{Name: "s/", Type: tar.TypeDir, Xattrs: map[string]string{"user.pwned": "1"}},
					reg{Name: "t", Type: tar.TypeSymlink, Linkname: "../outside/secret", Xattrs: map[string]string{"trusted.pwned": "1"}})}
		}, want: func(e env) rootfs { return rootfs{}.d("s", 0o755).l("t", "../outside/secret") },
			check: func(t *testing.T, dest string, e env) {
				for p, want := range map[string]string{"s": `user.pwned="1"`, "t": `trusted.pwned="1"`} {
					if got := testtree.Stat(t, dest+"/"+p).Xattrs; got != want {
						t.Errorf("xattrs of %s: %q; want %s", p, got, want)
					}
				}
			}},
		{name: "DeviceNode", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", "../outside/secret"),
				reg{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
				reg{Name: "dev/loop0", Type: tar.TypeBlock, Mode: 0o660, Devmajor: 7, Devminor: 0},
				reg{Name: "../outside/dev", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}),
				registrytest.GzipLayer(reg{Name: "s", Type: tar.TypeChar, Mode: 0o600, Devmajor: 1, Devminor: 5})}
		}, want: func(e env) rootfs {
			return rootfs{}.add("dev/null", testtree.Entry{Type: "c", Mode: 0o666}).add("dev/loop0", testtree.Entry{Type: "b", Mode: 0o660}).
				add("outside/dev", testtree.Entry{Type: "c", Mode: 0o666}).add("s", testtree.Entry{Type: "c", Mode: 0o600})
		}},
		{name: "FifoOverSymlink", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Symlink("s", "../outside/secret"), registrytest.Symlink("d", "../outside"), registrytest.Symlink("a", e.Abs+"/file")),
				registrytest.GzipLayer(reg{Name: "s", Type: tar.TypeFifo, Mode: 0o600}, reg{Name: "d/fifo", Type: tar.TypeFifo}, reg{Name: "a", Type: tar.TypeFifo})}
		}, want: func(e env) rootfs {
			return rootfs{}.add("s", testtree.Entry{Type: "p", Mode: 0o600}).l("d", "../outside").add("outside/fifo", testtree.Entry{Type: "p", Mode: 0o644}).add("a", testtree.Entry{Type: "p", Mode: 0o644})
		}},
		{name: "DuplicateEntries", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("f", "one"), reg{Name: "f", Body: []byte("two"), Mode: 0o600},
				registrytest.Dir("d/", 0o700), reg{Name: "d/", Type: tar.TypeDir, Mode: 0o755, Uid: 5}, registrytest.Symlink("s", "a"), registrytest.Symlink("s", "b"),
				registrytest.Hardlink("h", "f"), registrytest.Hardlink("h", "f"))}
		}, want: func(e env) rootfs {
			d := testtree.Dir(0o755)
			d.UID = 5
			return rootfs{}.f("f", 0o600, "two").f("h", 0o600, "two").add("d", d).l("s", "b")
		}},
		{name: "DirectoryThenFileSameName", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.Dir("x/", 0o700), registrytest.File("x/child", "c"), registrytest.File("x", "file"),
				registrytest.File("y", "file"), registrytest.Dir("y/", 0o711), registrytest.File("y/c", "c"))}
		}, want: func(e env) rootfs { return rootfs{}.f("x", 0o644, "file").d("y", 0o711).f("y/c", 0o644, "c") }},
		{name: "ManyLayersDeep", layers: func(e env) []registrytest.Layer {
			var ls []registrytest.Layer
			for i := 0; i < 40; i++ {
				ents := []reg{registrytest.File(strings.Repeat("a/", i+1)+"f", strconv.Itoa(i)), registrytest.File("w"+strconv.Itoa(i), "w")}
				if i > 0 {
					ents = append(ents, registrytest.File(".wh.w"+strconv.Itoa(i-1), ""))
				}
				if i%2 == 0 {
					ents = append(ents, registrytest.Symlink("d", "../outside"))
				} else {
					ents = append(ents, registrytest.File("d/secret", strconv.Itoa(i)))
				}
				ls = append(ls, registrytest.GzipLayer(ents...))
			}
			return ls
		}, want: func(e env) rootfs {
			w := rootfs{}.f("w39", 0o644, "w").l("d", "../outside").f("outside/secret", 0o644, "39")
			for i := 0; i < 40; i++ {
				w.f(strings.Repeat("a/", i+1)+"f", 0o644, strconv.Itoa(i))
			}
			return w
		}},

		// Malformed tars and lying blobs.
		{name: "UidWrapsToRoot", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.RawGzipLayer(testtree.NewTar(must()).Add(tar.Header{Name: "f", Uid: 1 << 32, Gid: 1 << 32, Format: tar.FormatPAX, Mode: 0o4755}, "x").Bytes())}
		}, fail: "invalid tar header field"},
		{name: "UnknownEntryType", layers: func(e env) []registrytest.Layer {
			b := testtree.Header("odd", 'Z', 0o644, 0, false, nil)
			return []registrytest.Layer{registrytest.RawGzipLayer(append(b, make([]byte, 1024)...))}
		}, fail: "unsupported tar entry type"},
		{name: "SymlinkTargetTooLong", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.RawGzipLayer(testtree.NewTar(must()).Add(tar.Header{Name: "s", Typeflag: tar.TypeSymlink,
				Linkname: strings.Repeat("../", 2000) + "outside", Format: tar.FormatPAX}, "").Bytes())}
		}, fail: "s: "},
		{name: "HugeSparseHeader", limit: 8 * time.Second, orFail: "huge", layers: func(e env) []registrytest.Layer {
			// 1 TiB declared, 4 bytes of data at its end.
			raw := testtree.NewTar(must()).Raw(testtree.PAXSparse("huge", 1<<40, testtree.Frag{Off: 1<<40 - 4, Data: "tail"})).Bytes()
			return []registrytest.Layer{registrytest.RawGzipLayer(raw)}
		}, want: func(e env) rootfs {
			return rootfs{}.add("huge", testtree.Sparse(0o644, 1<<40, testtree.Frag{Off: 1<<40 - 4, Data: "tail"}))
		}, check: func(t *testing.T, dest string, e env) {
			if s := testtree.Stat(t, dest+"/huge"); s.Blocks*512 > 1<<20 {
				t.Errorf("huge takes %d bytes on disk; want holes", s.Blocks*512)
			}
		}},
		{name: "TruncatedTar", layers: func(e env) []registrytest.Layer {
			raw := testtree.NewTar(must()).Add(tar.Header{Name: "big"}, strings.Repeat("x", 10000)).Bytes()
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("ok", "ok")), registrytest.RawGzipLayer(raw[:512+100])}
		}, fail: "unexpected EOF"},
		{name: "GarbageAfterTar", layers: func(e env) []registrytest.Layer {
			raw := testtree.NewTar(must()).Add(tar.Header{Name: "f"}, "f").Bytes()
			garbage := make([]byte, 4096)
			rnd := rand.New(rand.NewPCG(1, 2))
			for i := range garbage {
				garbage[i] = byte(rnd.Uint32())
			}
			return []registrytest.Layer{registrytest.RawGzipLayer(append(raw, garbage...))}
		}, want: func(e env) rootfs { return rootfs{}.f("f", 0o644, "f") }},
		{name: "NotATar", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{{Raw: bytes.Repeat([]byte("not a tar\n"), 200), Compression: registrytest.Uncompressed}}
		}, fail: "invalid tar header"},
		{name: "DiffIDMismatch", push: func(t testing.TB, r *registrytest.Registry, repo string, e env) registrytest.Pushed {
			good := registrytest.CompressBlob(t, registrytest.TarBytes([]reg{registrytest.File("a", "a")}), registrytest.Gzip)
			bad := registrytest.CompressBlob(t, registrytest.TarBytes([]reg{registrytest.File("b", "b")}), registrytest.Zstd)
			lie := digest.FromString("the config lies")
			return r.PushBlobs(t, repo, "latest", []registrytest.Blob{good, bad}, []digest.Digest{good.DiffID, lie})
		}, fail: "diff id"},
		{name: "BlobDigestMismatch", layers: func(e env) []registrytest.Layer {
			return []registrytest.Layer{registrytest.GzipLayer(registrytest.File("a", "a")), registrytest.GzipLayer(registrytest.File("b", strings.Repeat("b", 5000)))}
		}, fault: func(p registrytest.Pushed) registrytest.Fault {
			bad := p.Layers[len(p.Layers)-1].Digest.String()
			return registrytest.Fault{Kind: registrytest.WrongBytes, Bytes: 20,
				Match: func(req *http.Request) bool { return strings.HasSuffix(req.URL.Path, bad) }}
		}, fail: "digest mismatch"},
		{name: "BlobSizeLies", push: func(t testing.TB, r *registrytest.Registry, repo string, e env) registrytest.Pushed {
			good := registrytest.CompressBlob(t, registrytest.TarBytes([]reg{registrytest.File("a", "a")}), registrytest.Gzip)
			bad := registrytest.CompressBlob(t, registrytest.TarBytes([]reg{registrytest.File("b", "b")}), registrytest.Gzip)
			bad.Size = int64(len(bad.Blob)) - 10
			return r.PushBlobs(t, repo, "latest", []registrytest.Blob{good, bad}, nil)
		}, fail: "descriptor says"},
		{name: "MediaTypeLies", push: func(t testing.TB, r *registrytest.Registry, repo string, e env) registrytest.Pushed {
			good := registrytest.CompressBlob(t, registrytest.TarBytes([]reg{registrytest.File("a", "a")}), registrytest.Gzip)
			bad := registrytest.CompressBlob(t, registrytest.TarBytes([]reg{registrytest.File("b", "b")}), registrytest.Zstd)
			bad.MediaType = ocispec.MediaTypeImageLayerGzip
			return r.PushBlobs(t, repo, "latest", []registrytest.Blob{good, bad}, nil)
		}, fail: "compression does not match"},
		{name: "MediaTypeUnknown", push: func(t testing.TB, r *registrytest.Registry, repo string, e env) registrytest.Pushed {
			good := registrytest.CompressBlob(t, registrytest.TarBytes([]reg{registrytest.File("a", "a")}), registrytest.Gzip)
			bad := registrytest.CompressBlob(t, registrytest.TarBytes([]reg{registrytest.File("b", "b")}), registrytest.Gzip)
			bad.MediaType = "application/vnd.oci.image.layer.v1.tar+bzip2"
			return r.PushBlobs(t, repo, "latest", []registrytest.Blob{good, bad}, nil)
		}, fail: "unsupported layer media type"},
		{name: "ZipBomb", layers: func(e env) []registrytest.Layer {
			// 128 MiB of zeros in about 130 KiB of gzip.
			raw := testtree.NewTar(must()).Add(tar.Header{Name: "zeros"}, string(make([]byte, 128<<20))).Bytes()
			return []registrytest.Layer{registrytest.RawGzipLayer(raw)}
		}, want: func(e env) rootfs { return rootfs{}.add("zeros", testtree.Sparse(0o644, 128<<20)) },
			check: func(t *testing.T, dest string, e env) {
				if s := testtree.Stat(t, dest+"/zeros"); s.Blocks*512 > 1<<20 {
					t.Errorf("128 MiB of zeros take %d bytes on disk; want holes", s.Blocks*512)
				}
			}},
	}
}

func TestAttacks(t *testing.T) {
	e2e.NeedRoot(t)
	since := time.Now()
	r := registrytest.Start(t, registrytest.Config{})
	root := t.TempDir()
	cases := cases()
	if len(cases) < 35 {
		t.Fatalf("only %d attack cases", len(cases))
	}
	for _, tc := range cases {
		e := newEnv(t, filepath.Join(root, tc.name))
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
			runCase(t, tc, e, host+"/"+repo+":latest", p, since)
		})
	}
	t.Run("ForceOverSymlinkDest", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, filepath.Join(root, "ForceOverSymlinkDest"))
		r.Push(t, "attack/force", "latest", registrytest.Image{Layers: []registrytest.Layer{registrytest.GzipLayer(registrytest.File("secret", "pwned"), registrytest.File(".wh.dir", ""))}})
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
			res, _ := pull(t, time.Minute, "--cache", cache, "--force", r.Host+"/attack/force", dest)
			e2e.Unchanged(t, before, e.scan(t, dest))
			t.Logf("%s: exit %d %s", mode, res.Code, strings.TrimSpace(res.Stderr))
			if res.Code == 0 {
				e2e.SameTree(t, testtree.Scan(t, dest), rootfs{}.f("secret", 0o644, "pwned"))
			} else if res.Code != 1 || strings.Count(res.Stderr, "\n") != 1 {
				t.Errorf("%s: exit %d, %q", mode, res.Code, res.Stderr)
			}
		}
	})
}
