// Package testtree builds and reads the trees that roots' tests need: layer tars, hostile
// directories, and scans of a tree to compare with another. It is imported by tests only.
package testtree

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Hostile fills dir with what a hostile image can leave in a rootfs: directories their owner
// cannot read, enter or write, symlinks out of the tree, unreadable files, fifos. Everything is
// owned by uid.
func Hostile(t testing.TB, dir, out string, uid int) {
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

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Outside makes the directory out beside a tree, holding the file "secret" (content "secret"),
// for OutsideIntact to check after the test; it returns out.
func Outside(t testing.TB, out string) string {
	t.Helper()
	must(t, os.Mkdir(out, 0o755))
	must(t, os.WriteFile(filepath.Join(out, "secret"), []byte("secret"), 0o644))
	return out
}

// OutsideIntact checks that the directory out, which a hostile tree's symlinks point at, still
// holds only the file "secret" with its content "secret".
func OutsideIntact(t testing.TB, out string) {
	t.Helper()
	ents, err := os.ReadDir(out)
	must(t, err)
	if len(ents) != 1 || ents[0].Name() != "secret" {
		t.Errorf("outside directory changed: %v", ents)
	}
	b, err := os.ReadFile(filepath.Join(out, "secret"))
	must(t, err)
	if string(b) != "secret" {
		t.Errorf("outside secret changed: %q", b)
	}
}
