package disk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadDir: every entry but "." and "..", with its type, however small the buffer.
func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	want := []Dirent{{"a", unix.DT_REG}, {"d", unix.DT_DIR}, {"l", unix.DT_LNK}}
	for i := range 300 { // more than one getdents call with a small buffer
		want = append(want, Dirent{Name: filepath.Base(filepath.Join(dir, "f"+string(rune('a'+i%26))+string(rune('a'+i/26)))), Type: unix.DT_REG})
	}
	for _, e := range want {
		p := filepath.Join(dir, e.Name)
		switch e.Type {
		case unix.DT_DIR:
			must(t, os.Mkdir(p, 0o755))
		case unix.DT_LNK:
			must(t, os.Symlink("nowhere", p))
		default:
			must(t, os.WriteFile(p, nil, 0o644))
		}
	}
	fd, err := OpenDir(unix.AT_FDCWD, dir)
	must(t, err)
	defer unix.Close(fd)
	for _, size := range []int{512, BufSize} {
		unix.Seek(fd, 0, 0)
		got, err := ReadDir(fd, make([]byte, size))
		must(t, err)
		cmp := func(a, b Dirent) int {
			if a.Name < b.Name {
				return -1
			}
			if a.Name > b.Name {
				return 1
			}
			return 0
		}
		slices.SortFunc(got, cmp)
		w := slices.Clone(want)
		slices.SortFunc(w, cmp)
		if !slices.Equal(got, w) {
			t.Errorf("buffer %d: %d entries, want %d", size, len(got), len(w))
		}
	}
	if _, err := OpenDir(unix.AT_FDCWD, filepath.Join(dir, "l")); err != unix.ELOOP && err != unix.ENOTDIR {
		t.Errorf("OpenDir of a symlink: %v, want ELOOP", err)
	}
}

// TestIsWhiteout: a 0/0 character device is a whiteout; no other file is.
func TestIsWhiteout(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		make func(p string) error
		want bool
	}{
		{"Whiteout", func(p string) error { return unix.Mknod(p, unix.S_IFCHR|0o600, 0) }, true},
		{"Null", func(p string) error { return unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))) }, false},
		{"Block00", func(p string) error { return unix.Mknod(p, unix.S_IFBLK|0o600, 0) }, false},
		{"File", func(p string) error { return os.WriteFile(p, nil, 0o644) }, false},
		{"Fifo", func(p string) error { return unix.Mkfifo(p, 0o600) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			must(t, tt.make(p))
			var st unix.Stat_t
			must(t, unix.Lstat(p, &st))
			if got := IsWhiteout(&st); got != tt.want {
				t.Errorf("IsWhiteout = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestOverlayMounted: only the root of an overlay mount is one; a directory inside it, a
// tmpfs, a plain or missing directory are not.
func TestOverlayMounted(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	for _, d := range []string{"lower/sub", "upper", "work", "merged", "tmpfs", "plain"} {
		must(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	opts := "lowerdir=" + filepath.Join(base, "lower") + ",upperdir=" + filepath.Join(base, "upper") + ",workdir=" + filepath.Join(base, "work")
	must(t, unix.Mount("overlay", filepath.Join(base, "merged"), "overlay", 0, opts))
	t.Cleanup(func() { unix.Unmount(filepath.Join(base, "merged"), unix.MNT_DETACH) })
	must(t, unix.Mount("tmpfs", filepath.Join(base, "tmpfs"), "tmpfs", 0, ""))
	t.Cleanup(func() { unix.Unmount(filepath.Join(base, "tmpfs"), unix.MNT_DETACH) })
	tests := []struct {
		path string
		want bool
	}{
		{"merged", true}, {"merged/sub", false}, {"tmpfs", false}, {"plain", false}, {"missing", false}, {"plain/missing/deeper", false},
	}
	for _, tt := range tests {
		got, err := OverlayMounted(filepath.Join(base, tt.path))
		if err != nil || got != tt.want {
			t.Errorf("OverlayMounted(%s) = %v, %v; want %v", tt.path, got, err, tt.want)
		}
	}
}

// TestSync: SyncDir and Syncfs take a directory and name it when it is missing.
func TestSync(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []func(string) error{SyncDir, Syncfs} {
		must(t, f(dir))
		if err := f(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing directory: %v", err)
		}
	}
}
