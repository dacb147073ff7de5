package mountinfo

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:             "/plain",
		`/with\040space`:     "/with space",
		`/tab\011and\134bs`:  "/tab\tand\\bs",
		`/trailing\04`:       `/trailing\04`,
		`/not\999octal\0401`: "/not\\999octal 1",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBelow mounts a tmpfs below a directory whose name needs escaping and finds it.
func TestBelow(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it mounts a tmpfs (CI runs as root)")
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "a dir", "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Below(dir); err != nil || len(got) != 0 {
		t.Fatalf("Below before mounting: %v, %v; want none", got, err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	for _, d := range []string{dir, filepath.Dir(mnt), mnt} {
		got, err := Below(d)
		if err != nil || !slices.Equal(got, []string{mnt}) {
			t.Errorf("Below(%q) = %q, %v; want [%q]", d, got, err, mnt)
		}
	}
	if got, _ := Below(dir + "/a"); len(got) != 0 {
		t.Errorf("Below(%q) = %q: a name prefix is no parent", dir+"/a", got)
	}
}
