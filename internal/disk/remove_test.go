package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/internal/testtree"
)

// removeAllEnv makes the test binary a small RemoveAll tool, run without privileges by
// TestRemoveAll's unprivileged case.
const removeAllEnv = "ROOTS_DISK_TEST_REMOVEALL"

func TestMain(m *testing.M) {
	if p := os.Getenv(removeAllEnv); p != "" {
		if err := RemoveAll(p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestRemoveAll(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name   string
		uid    int  // owner of the tree and of the remover
		asUser bool // run RemoveAll as uid in a child process
		target func(t *testing.T, dir, out string) string
	}{
		{
			name:   "HostileTreeAsRoot",
			target: func(t *testing.T, dir, out string) string { testtree.Hostile(t, dir, out, 0); return dir },
		},
		{
			name: "HostileTreeUnprivileged", uid: 65534, asUser: true,
			target: func(t *testing.T, dir, out string) string { testtree.Hostile(t, dir, out, 65534); return dir },
		},
		{
			name: "SymlinkToDirRemovesOnlyTheLink",
			target: func(t *testing.T, dir, out string) string {
				must(t, os.Symlink(out, dir))
				return dir
			},
		},
		{
			name:   "MissingPathIsNoError",
			target: func(t *testing.T, dir, out string) string { return dir },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A world-traversable base, so that an unprivileged child can reach its tree.
			base, err := os.MkdirTemp("", "roots-assemble-remove-")
			must(t, err)
			t.Cleanup(func() { RemoveAll(base) })
			must(t, os.Chmod(base, 0o755))
			work := filepath.Join(base, "work")
			out := filepath.Join(base, "outside")
			for _, d := range []string{work, out} {
				must(t, os.Mkdir(d, 0o755))
				must(t, os.Chown(d, tc.uid, tc.uid))
			}
			must(t, os.WriteFile(filepath.Join(out, "secret"), []byte("secret"), 0o644))
			must(t, os.Chown(filepath.Join(out, "secret"), tc.uid, tc.uid))
			target := tc.target(t, filepath.Join(work, "tree"), out)

			if tc.asUser {
				runRemoveAllAs(t, base, target, tc.uid)
			} else {
				must(t, RemoveAll(target))
			}
			if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still there: %v", target, err)
			}
			testtree.OutsideIntact(t, out)
		})
	}
}

// runRemoveAllAs runs RemoveAll(target) in a copy of the test binary as uid.
func runRemoveAllAs(t *testing.T, base, target string, uid int) {
	t.Helper()
	exe, err := os.Executable()
	must(t, err)
	bin := filepath.Join(base, "remover")
	src, err := os.Open(exe)
	must(t, err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	must(t, err)
	_, err = io.Copy(dst, src)
	must(t, err)
	must(t, dst.Close())
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), removeAllEnv+"="+target)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("RemoveAll as uid %d: %v\n%s", uid, err, out)
	}
}

// TestRemoveAllStopsAtMounts: RemoveAll never enters another mount, a tmpfs or a bind mount
// of the same filesystem alike: what the mount holds stays, and the error says where.
func TestRemoveAllStopsAtMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it mounts (CI runs as root)")
	}
	for _, kind := range []string{"tmpfs", "bind"} {
		t.Run(kind, func(t *testing.T) {
			base := t.TempDir()
			tree := filepath.Join(base, "tree")
			mnt := filepath.Join(tree, "a", "dev")
			must(t, os.MkdirAll(mnt, 0o755))
			must(t, os.WriteFile(filepath.Join(tree, "a", "f"), []byte("f"), 0o644))
			switch kind {
			case "tmpfs":
				must(t, unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"))
			case "bind":
				src := filepath.Join(base, "src")
				must(t, os.Mkdir(src, 0o755))
				must(t, unix.Mount(src, mnt, "", unix.MS_BIND, ""))
			}
			t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
			must(t, os.WriteFile(filepath.Join(mnt, "keep"), []byte("keep"), 0o644))
			err := RemoveAll(tree)
			if !errors.Is(err, ErrMountPoint) {
				t.Fatalf("RemoveAll: %v, want ErrMountPoint", err)
			}
			if b, err := os.ReadFile(filepath.Join(mnt, "keep")); err != nil || string(b) != "keep" {
				t.Errorf("the mount's file: %q, %v", b, err)
			}
			must(t, unix.Unmount(mnt, 0))
			if err := RemoveAll(tree); err != nil {
				t.Fatalf("RemoveAll after unmounting: %v", err)
			}
		})
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (owners, mounts); CI runs as root")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
