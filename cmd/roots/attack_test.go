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

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

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

func atkF(name, body string) reg { return reg{Name: name, Body: []byte(body)} }

func atkD(name string, mode int64) reg { return reg{Name: name, Type: tar.TypeDir, Mode: mode} }

func atkS(name, to string) reg { return reg{Name: name, Type: tar.TypeSymlink, Linkname: to} }

func atkH(name, to string) reg { return reg{Name: name, Type: tar.TypeLink, Linkname: to} }

func atkWh(name string) reg { return reg{Name: name} }

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
			return []registrytest.Layer{atkRaw(testtree.NewTar(atkMust()).Add(tar.Header{Name: name, Format: tar.FormatGNU}, pwned).Bytes())}
		}, want: func(e atkEnv) atkTree { return atkTree{}.f("outside/pwned", 0o644, pwned) }},
		{name: "NulInName", layers: func(e atkEnv) []registrytest.Layer {
			b := testtree.Header("nul\x00/../../outside/pwned", tar.TypeReg, 0o644, 5, false, nil)
			b = append(b, testtree.Pad([]byte(pwned))...)
			return []registrytest.Layer{atkRaw(append(b, make([]byte, 1024)...))}
		}, want: func(e atkEnv) atkTree { return atkTree{}.f("nul", 0o644, pwned) }},
		{name: "NulInPaxPath", layers: func(e atkEnv) []registrytest.Layer {
			b := testtree.PAX('x', [2]string{"path", "ok\x00/../../outside/pwned"})
			b = append(b, testtree.Header("ok", tar.TypeReg, 0o644, 5, false, nil)...)
			b = append(b, testtree.Pad([]byte(pwned))...)
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
				if s := testtree.Stat(t, dest); s.Type != "d" || s.Mode != 0o777 || s.UID != 0 || s.GID != 0 || s.Xattrs != "" {
					t.Errorf("DEST itself: %v; want a plain 0777 root:root directory", s)
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
			su := file(testtree.OctalMode(0o4755), "su")
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
			return atkTree{}.d("s", 0o777).add("u", dir(testtree.OctalMode(0o1777))).l("t", "../outside/mode644")
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
					if got := testtree.Stat(t, dest+"/"+p).Xattrs; got != want {
						t.Errorf("xattrs of %s: %q; want %s", p, got, want)
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
			return []registrytest.Layer{atkRaw(testtree.NewTar(atkMust()).Add(tar.Header{Name: "f", Uid: 1 << 32, Gid: 1 << 32, Format: tar.FormatPAX, Mode: 0o4755}, "x").Bytes())}
		}, fail: "invalid tar header field"},
		{name: "UnknownEntryType", layers: func(e atkEnv) []registrytest.Layer {
			b := testtree.Header("odd", 'Z', 0o644, 0, false, nil)
			return []registrytest.Layer{atkRaw(append(b, make([]byte, 1024)...))}
		}, fail: "unsupported tar entry type"},
		{name: "SymlinkTargetTooLong", layers: func(e atkEnv) []registrytest.Layer {
			return []registrytest.Layer{atkRaw(testtree.NewTar(atkMust()).Add(tar.Header{Name: "s", Typeflag: tar.TypeSymlink,
				Linkname: strings.Repeat("../", 2000) + "outside", Format: tar.FormatPAX}, "").Bytes())}
		}, fail: "s: "},
		{name: "HugeSparseHeader", limit: 8 * time.Second, orFail: "huge", layers: func(e atkEnv) []registrytest.Layer {
			// 1 TiB declared, 4 bytes of data at its end.
			raw := testtree.NewTar(atkMust()).Raw(testtree.PAXSparse("huge", 1<<40, testtree.Frag{Off: 1<<40 - 4, Data: "tail"})).Bytes()
			return []registrytest.Layer{atkRaw(raw)}
		}, want: func(e atkEnv) atkTree {
			return atkTree{}.add("huge", testtree.Sparse(0o644, 1<<40, testtree.Frag{Off: 1<<40 - 4, Data: "tail"}))
		}, check: func(t *testing.T, dest string, e atkEnv) {
			if s := testtree.Stat(t, dest+"/huge"); s.Blocks*512 > 1<<20 {
				t.Errorf("huge takes %d bytes on disk; want holes", s.Blocks*512)
			}
		}},
		{name: "TruncatedTar", layers: func(e atkEnv) []registrytest.Layer {
			raw := testtree.NewTar(atkMust()).Add(tar.Header{Name: "big"}, strings.Repeat("x", 10000)).Bytes()
			return []registrytest.Layer{atkL(atkF("ok", "ok")), atkRaw(raw[:512+100])}
		}, fail: "unexpected EOF"},
		{name: "GarbageAfterTar", layers: func(e atkEnv) []registrytest.Layer {
			raw := testtree.NewTar(atkMust()).Add(tar.Header{Name: "f"}, "f").Bytes()
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
			raw := testtree.NewTar(atkMust()).Add(tar.Header{Name: "zeros"}, string(make([]byte, 128<<20))).Bytes()
			return []registrytest.Layer{atkRaw(raw)}
		}, want: func(e atkEnv) atkTree { return atkTree{}.add("zeros", testtree.Sparse(0o644, 128<<20)) },
			check: func(t *testing.T, dest string, e atkEnv) {
				if s := testtree.Stat(t, dest+"/zeros"); s.Blocks*512 > 1<<20 {
					t.Errorf("128 MiB of zeros take %d bytes on disk; want holes", s.Blocks*512)
				}
			}},
	}
}

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
				sameTree(t, testtree.Scan(t, dest), atkTree{}.f("secret", 0o644, "pwned"))
			} else if res.code != 1 || strings.Count(res.stderr, "\n") != 1 {
				t.Errorf("%s: exit %d, %q", mode, res.code, res.stderr)
			}
		}
	})
}
