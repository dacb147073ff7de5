package e2e

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestFullDisk: a cache or DEST on a full or read-only filesystem fails the pull with what
// happened and where (never as the registry's fault), leaves no partial DEST, and leaves a cache
// that roots check finds clean.
func TestFullDisk(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	noise := make([]byte, 6<<20) // incompressible: 6 MB of blob, 6 MB of tree
	rand.NewChaCha8([32]byte{2}).Read(noise)
	r.Push(t, "big", "v1", registrytest.Image{Layers: []registrytest.Layer{
		{Compression: "gzip", Entries: []reg{{Name: "etc/small", Body: []byte("small")}}},
		{Compression: "gzip", Entries: []reg{{Name: "noise", Body: noise}}},
	}})
	ref := r.Host + "/big:v1"
	tmpfs := func(t *testing.T, size string) string {
		dir := t.TempDir()
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
		return dir
	}
	tests := []struct {
		name   string
		setup  func(t *testing.T) (cache, parent string)
		want   []string
		checks bool // run roots check on the cache afterwards
	}{
		{"CacheFull", func(t *testing.T) (string, string) {
			return filepath.Join(tmpfs(t, "4m"), "cache"), t.TempDir()
		}, []string{"no space left on device", "the cache is on a full or read-only filesystem", "compressed"}, true},
		{"DestFullNoCache", func(t *testing.T) (string, string) {
			return "no", tmpfs(t, "4m")
		}, []string{"no space left on device", "DEST is on a full or read-only filesystem"}, false},
		{"CacheReadOnly", func(t *testing.T) (string, string) {
			dir := tmpfs(t, "16m")
			os.Mkdir(filepath.Join(dir, "cache"), 0o755)
			if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "cache"), t.TempDir()
		}, []string{"read-only file system", "the cache", "read-only)"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, parent := tt.setup(t)
			dest := filepath.Join(parent, "rootfs")
			res := Roots(t, nil, "pull", "--cache", cache, ref, dest)
			for _, w := range tt.want {
				if !strings.Contains(res.Stderr, w) {
					t.Errorf("stderr %q lacks %q", res.Stderr, w)
				}
			}
			for _, bad := range []string{"size mismatch", "digest mismatch"} {
				if strings.Contains(res.Stderr, bad) {
					t.Errorf("stderr %q blames the registry (%s)", res.Stderr, bad)
				}
			}
			AssertCleanFailure(t, res, tt.want[0], dest)
			if tt.checks {
				if res := Roots(t, nil, "check", "--cache", cache); res.Code != 0 {
					t.Errorf("roots check after the failure: exit %d: %s%s", res.Code, res.Stdout, res.Stderr)
				}
				ents, _ := os.ReadDir(filepath.Join(cache, "tmp"))
				for _, e := range ents {
					if !strings.HasSuffix(e.Name(), ".lock") {
						t.Errorf("cache tmp/ kept %s", e.Name())
					}
				}
			}
		})
	}
}
