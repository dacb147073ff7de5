package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestCacheTrust: roots uses only a cache of the invoking user's that nobody else can write
// (as ssh's StrictModes), and never takes a symlink in trees/ for a layer, in any mode; roots
// check reports and repairs one.
func TestCacheTrust(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "img", "v1", registrytest.Image{Layers: []registrytest.Layer{
		{Entries: []reg{{Name: "etc/passwd", Body: []byte("root:x:0:0::/root:/bin/sh\n")}}},
	}})
	ref := r.Host + "/img:v1"

	t.Run("AnotherUsersCache", func(t *testing.T) {
		work := t.TempDir()
		os.Chmod(filepath.Dir(work), 0o755)
		os.Chmod(work, 0o777)
		cache := filepath.Join(work, "cache")
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", Bin(), "pull", "--cache", cache, ref, filepath.Join(work, "nobodys"))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pull as nobody: %v: %s", err, out)
		}
		dest := filepath.Join(t.TempDir(), "rootfs")
		res := Roots(t, nil, "pull", "--cache", cache, ref, dest)
		AssertCleanFailure(t, res, "belongs to uid 65534", dest)
		if !strings.Contains(res.Stderr, "--cache DIR") {
			t.Errorf("no fix in %q", res.Stderr)
		}
	})

	t.Run("WritableByOthers", func(t *testing.T) {
		cache := t.TempDir()
		os.Chmod(cache, 0o777)
		dest := filepath.Join(t.TempDir(), "rootfs")
		AssertCleanFailure(t, Roots(t, nil, "pull", "--cache", cache, ref, dest), "chmod go-w", dest)
		os.Chmod(cache, 0o755)
		MustPull(t, nil, "--cache", cache, ref, dest)
	})

	t.Run("FreshCacheUnderUmask002", func(t *testing.T) {
		cache := filepath.Join(t.TempDir(), "new", "cache")
		dest := filepath.Join(t.TempDir(), "rootfs")
		cmd := exec.Command("sh", "-c", `umask 002 && exec "$0" "$@"`, Bin(), "pull", "--cache", cache, ref, dest)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("a cache roots made itself is not trusted: %v: %s", err, out)
		}
	})

	for _, mode := range []string{"hardlink", "copy", "overlay"} {
		t.Run("SymlinkedTree/"+mode, func(t *testing.T) {
			cache := t.TempDir()
			MustPull(t, nil, "--cache", cache, ref, filepath.Join(t.TempDir(), "first"))
			trees, _ := filepath.Glob(filepath.Join(cache, "trees", "sha256", "*[0-9a-f]"))
			if len(trees) != 1 {
				t.Fatalf("trees: %v", trees)
			}
			host := t.TempDir()
			os.WriteFile(filepath.Join(host, "host-secret"), []byte("of the host"), 0o600)
			if err := os.RemoveAll(trees[0]); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(host, trees[0]); err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(t.TempDir(), "rootfs")
			if mode == "overlay" {
				umountAll(t, dest)
			}
			res := Roots(t, nil, "pull", "--cache", cache, "--mode", mode, ref, dest)
			if res.Code != 0 || !strings.Contains(res.Stderr, "was not as roots left it") {
				t.Fatalf("pull over a symlinked tree: exit %d, stderr %q; want a warning and success", res.Code, res.Stderr)
			}
			if _, err := os.Lstat(filepath.Join(dest, "host-secret")); err == nil {
				t.Fatal("a symlink in trees/ became a layer: the host's directory shows in DEST")
			}
			if b, err := os.ReadFile(filepath.Join(dest, "etc", "passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
				t.Fatalf("etc/passwd: %q, %v", b, err)
			}
			if mode == "overlay" {
				if res := Roots(t, nil, "umount", dest); res.Code != 0 {
					t.Fatalf("umount: %s", res.Stderr)
				}
			}
			if fi, err := os.Lstat(trees[0]); err != nil || !fi.IsDir() {
				t.Errorf("the pull left trees/ with %v, %v; want the tree made again", fi, err)
			}
			if b, err := os.ReadFile(filepath.Join(host, "host-secret")); err != nil || string(b) != "of the host" {
				t.Errorf("the host's directory changed: %q, %v", b, err)
			}
			// roots check finds and repairs a symlink too.
			os.RemoveAll(trees[0])
			os.Symlink(host, trees[0])
			res = Roots(t, nil, "check", "--cache", cache)
			if !strings.Contains(res.Stdout+res.Stderr, "symlink") {
				t.Errorf("roots check did not report the symlinked tree: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
			}
			if fi, err := os.Lstat(trees[0]); err != nil || !fi.IsDir() {
				t.Errorf("roots check left trees/ with %v, %v", fi, err)
			}
		})
	}
}
