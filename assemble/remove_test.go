package assemble

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
)

// removeAllEnv makes the test binary a small RemoveAll tool, run without privileges by
// TestRemoveAll's unprivileged case.
const removeAllEnv = "ROOTS_ASSEMBLE_TEST_REMOVEALL"

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

// makeHostile fills dir with what a hostile image can leave in a rootfs: directories their owner
// cannot read, enter or write, symlinks out of the tree, unreadable files, fifos. Everything is
// owned by uid.
func makeHostile(t *testing.T, dir, out string, uid int) {
	t.Helper()
	for _, d := range []string{"locked/inner", "readonly/sub", "noexec", "deep/a/b/c"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	for _, f := range []string{"locked/f", "locked/inner/g", "readonly/h", "readonly/sub/i", "noexec/j", "deep/a/b/c/k", "file0000"} {
		must(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644))
	}
	must(t, os.Symlink(out, filepath.Join(dir, "escape")))
	must(t, os.Symlink("/", filepath.Join(dir, "root")))
	must(t, os.Symlink(out, filepath.Join(dir, "readonly/sub/escape")))
	must(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	}))
	// Deepest first, so that making a parent unreadable does not stop the chmod of its children.
	for _, pm := range []struct {
		p    string
		mode uint32
	}{
		{"file0000", 0}, {"locked/inner", 0}, {"locked", 0}, {"readonly/sub", 0o500}, {"readonly", 0o500},
		{"noexec", 0o600}, {"deep/a/b/c", 0o555}, {"deep/a", 0o100}, {".", 0o500},
	} {
		must(t, unix.Chmod(filepath.Join(dir, pm.p), pm.mode))
	}
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
			target: func(t *testing.T, dir, out string) string { makeHostile(t, dir, out, 0); return dir },
		},
		{
			name: "HostileTreeUnprivileged", uid: 65534, asUser: true,
			target: func(t *testing.T, dir, out string) string { makeHostile(t, dir, out, 65534); return dir },
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
			outsideIntact(t, env{out: out})
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
