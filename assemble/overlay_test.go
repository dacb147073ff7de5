package assemble_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/internal/disk"
	"github.com/rootsdev/roots/internal/testtree"
)

// TestOverlayEqualsHardlink holds overlay assembly to hardlink assembly on every differential
// case: the trees under their fix-up, mounted with an upper layer, must show the same rootfs,
// entry by entry (type, mode, owner, times, content, xattrs, hardlink groups), root included,
// and mounting must not change the trees. The one image overlayfs cannot show (a real 0:0
// character device) must be refused.
func TestOverlayEqualsHardlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it mounts overlayfs (CI runs as root)")
	}
	for _, tc := range differentialCases {
		if tc.wantErr {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			out := filepath.Join(base, "outside")
			mkSentinel(t, out)
			tars := make([][]byte, len(tc.layers))
			for i, ents := range tc.layers {
				tars[i] = tarOf(t, out, ents)
			}
			trees, err := unpackAll(base, tars)
			if err != nil {
				t.Fatalf("unpack: %v", err)
			}
			before := make([]map[string]testtree.Entry, len(trees))
			for i, tr := range trees {
				before[i] = scan(t, tr.Dir)
			}
			hard := filepath.Join(base, "hard")
			fix := filepath.Join(base, "fixup")
			for _, d := range []string{hard, fix} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := assemble.Hardlink(context.Background(), hard, trees); err != nil {
				t.Fatalf("hardlink: %v", err)
			}
			want := scan(t, hard)
			err = assemble.OverlayFixup(context.Background(), fix, trees)
			if errors.Is(err, assemble.ErrOverlayCannotShow) && hasZeroZeroDevice(want) {
				return // refused, rightly
			}
			if err != nil {
				t.Fatalf("fix-up: %v", err)
			}
			dest := mountAll(t, base, fix, trees)
			if diff := diffScans(want, scan(t, dest)); len(diff) > 0 {
				t.Errorf("overlay differs from hardlink (want = hardlink):\n%s", strings.Join(diff, "\n"))
			}
			for i, tr := range trees {
				if diff := diffScans(before[i], scan(t, tr.Dir)); len(diff) > 0 {
					t.Errorf("tree %d changed:\n%s", i, strings.Join(diff, "\n"))
				}
			}
		})
	}
}

// mountAll mounts fix over trees (top first) at base/mnt, unmounted at the end of the test.
func mountAll(t *testing.T, base, fix string, trees []assemble.Tree) string {
	t.Helper()
	lowers := []string{fix}
	for i := len(trees) - 1; i >= 0; i-- {
		lowers = append(lowers, trees[i].Dir)
	}
	state := filepath.Join(base, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(base, "mnt")
	if err := assemble.MountOverlay(dest, state, lowers); err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dest, unix.MNT_DETACH) })
	return dest
}

// hasZeroZeroDevice reports whether a rootfs holds a 0:0 character device, which overlayfs
// cannot show (it is a whiteout there).
func hasZeroZeroDevice(m map[string]testtree.Entry) bool {
	for _, e := range m {
		if e.Type == "c" && e.Rdev == "0:0" {
			return true
		}
	}
	return false
}

// TestOverlayMountManyLongLayers mounts 300 layers whose paths are each longer than 256 bytes
// (fsconfig's string limit) and together far longer than a page (mount(2)'s option limit),
// through the mount API and through mount(2) with short links; writes go to the upper layer.
func TestOverlayMountManyLongLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it mounts overlayfs (CI runs as root)")
	}
	testtree.MountinfoLock(t, true) // its mountinfo line is ~100 KiB: runc cannot start meanwhile
	base := t.TempDir()
	long := filepath.Join(base, strings.Repeat("l", 250), strings.Repeat("m", 50))
	var lowers []string // top first
	for i := 299; i >= 0; i-- {
		d := filepath.Join(long, fmt.Sprintf("layer-%03d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, fmt.Sprintf("f%03d", i)), []byte(fmt.Sprint(i)), 0o644)
		os.WriteFile(filepath.Join(d, "top"), []byte(fmt.Sprint(i)), 0o644)
		lowers = append(lowers, d)
	}
	mounts := []struct {
		name  string
		mount func(dest, state string) error
	}{
		{"MountAPI", func(dest, state string) error { return assemble.MountOverlay(dest, state, lowers) }},
		{"Legacy", func(dest, state string) error {
			upper, work := filepath.Join(state, "upper"), filepath.Join(state, "work")
			os.Mkdir(upper, 0o755)
			os.Mkdir(work, 0o700)
			if err := os.Mkdir(dest, 0o755); err != nil {
				return err
			}
			return assemble.OvlMountLegacy(dest, filepath.Join(state, "l"), lowers, upper, work)
		}},
	}
	for _, m := range mounts {
		t.Run(m.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			os.Mkdir(state, 0o700)
			dest := filepath.Join(t.TempDir(), "mnt")
			if err := m.mount(dest, state); err != nil {
				t.Fatal(err)
			}
			defer unix.Unmount(dest, unix.MNT_DETACH)
			if ok, err := disk.OverlayMounted(dest); !ok || err != nil {
				t.Fatalf("OverlayMounted: %v, %v", ok, err)
			}
			ents, _ := os.ReadDir(dest)
			if len(ents) != 301 {
				t.Fatalf("%d entries, want 301", len(ents))
			}
			if b, _ := os.ReadFile(filepath.Join(dest, "top")); string(b) != "299" {
				t.Fatalf("top: %q, want the top layer's", b)
			}
			if err := os.WriteFile(filepath.Join(dest, "f000"), []byte("w"), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(lowers[299], "f000")); string(b) != "0" {
				t.Fatalf("a write through the mount changed the lower layer: %q", b)
			}
			if b, _ := os.ReadFile(filepath.Join(state, "upper", "f000")); string(b) != "w" {
				t.Fatalf("upper f000: %q", b)
			}
			if err := assemble.UnmountOverlay(dest); err != nil {
				t.Fatal(err)
			}
			if ok, _ := disk.OverlayMounted(dest); ok {
				t.Fatal("still mounted")
			}
		})
	}
}
