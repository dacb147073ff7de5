package testtree

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestScan(t *testing.T) {
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	tests := []struct {
		name string
		make func(t *testing.T, dir string)
		opts []Option
		want map[string]Entry // the aspects of Image, mtimes aside
	}{
		{"Empty", func(*testing.T, string) {}, nil, map[string]Entry{}},
		{"RootIncluded", func(*testing.T, string) {}, []Option{WithRoot()}, map[string]Entry{".": Dir(0o700)}},
		{"FileDirSymlink", func(t *testing.T, dir string) {
			must(t, os.Mkdir(filepath.Join(dir, "d"), 0o750))
			must(t, os.WriteFile(filepath.Join(dir, "d/f"), []byte("body"), 0o640))
			must(t, os.Symlink("../outside", filepath.Join(dir, "l")))
		}, nil, map[string]Entry{"d": Dir(0o750), "d/f": File(0o640, "body"), "l": Symlink("../outside")}},
		{"SymlinkToDirNotFollowed", func(t *testing.T, dir string) {
			must(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
			must(t, os.WriteFile(filepath.Join(dir, "d/f"), nil, 0o644))
			must(t, os.Symlink("d", filepath.Join(dir, "l")))
		}, nil, map[string]Entry{"d": Dir(0o755), "d/f": File(0o644, ""), "l": Symlink("d")}},
		{"SpecialBitsOwnersDevices", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "s"), []byte("s"), 0o644))
			must(t, os.Lchown(filepath.Join(dir, "s"), 7, 8))
			must(t, unix.Chmod(filepath.Join(dir, "s"), 0o4755))
			must(t, unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR, int(unix.Mkdev(1, 3))))
			must(t, unix.Chmod(filepath.Join(dir, "null"), 0o666))
			must(t, unix.Mkfifo(filepath.Join(dir, "p"), 0o600))
		}, nil, map[string]Entry{
			"s":    {Type: "f", Mode: OctalMode(0o4755), UID: 7, GID: 8, Size: 1, Hash: HashBytes([]byte("s"))},
			"null": {Type: "c", Mode: 0o666, Rdev: "1:3"},
			"p":    {Type: "p", Mode: 0o600},
		}},
		{"HardlinksAndXattrs", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644))
			must(t, os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")))
			must(t, unix.Lsetxattr(filepath.Join(dir, "a"), "user.k", []byte("v"), 0))
			must(t, unix.Lsetxattr(filepath.Join(dir, "a"), "trusted.overlay.opaque", []byte("y"), 0))
		}, []Option{SkipXattrs("trusted.overlay.")}, map[string]Entry{
			"a": {Type: "f", Mode: 0o644, Size: 1, Hash: HashBytes([]byte("x")), Xattrs: `user.k="v"`, Hardlinks: "a|b"},
			"b": {Type: "f", Mode: 0o644, Size: 1, Hash: HashBytes([]byte("x")), Xattrs: `user.k="v"`, Hardlinks: "a|b"},
		}},
		{"Skip", func(t *testing.T, dir string) {
			must(t, os.MkdirAll(filepath.Join(dir, "cache/deep"), 0o755))
			must(t, os.WriteFile(filepath.Join(dir, "kept"), nil, 0o644))
		}, []Option{Skip(func(rel string) bool { return rel == "cache" })}, map[string]Entry{"kept": File(0o644, "")}},
		{"SparseBigFile", func(t *testing.T, dir string) {
			f, err := os.Create(filepath.Join(dir, "big"))
			must(t, err)
			_, err = f.WriteAt([]byte("tail"), 1<<30-4)
			must(t, err)
			must(t, f.Close())
		}, nil, map[string]Entry{"big": Sparse(0o644, 1<<30, Frag{1<<30 - 4, "tail"})}},
		{"LongPath", func(t *testing.T, dir string) {
			// Made through descriptors: the whole path is longer than PATH_MAX.
			fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			must(t, err)
			for range 20 {
				name := strings.Repeat("n", 250)
				must(t, unix.Mkdirat(fd, name, 0o755))
				next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
				unix.Close(fd)
				must(t, err)
				fd = next
			}
			unix.Close(fd)
		}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Fatal("needs root (owners, devices, trusted.* xattrs); CI runs as root")
			}
			dir := t.TempDir()
			must(t, os.Chmod(dir, 0o700))
			tc.make(t, dir)
			got := Scan(t, dir, tc.opts...)
			if tc.want == nil { // LongPath: the walk gets there, past PATH_MAX
				if len(got) != 20 {
					t.Fatalf("scanned %d entries, want 20", len(got))
				}
				return
			}
			for p, e := range got {
				if e.Mtime == 0 || e.Ino == 0 || e.Nlink == 0 {
					t.Errorf("%s: no mtime, inode or link count: %+v", p, e)
				}
			}
			if diffs := Diff(tc.want, got, Only(Type, Mode, Owner, Size, Content, Target, Device, Xattrs, Hardlinks)); len(diffs) > 0 {
				t.Errorf("scan differs:\n%s", strings.Join(diffs, "\n"))
			}
			if tc.name == "FileDirSymlink" {
				must(t, os.Chtimes(filepath.Join(dir, "d/f"), mtime, mtime))
				if got := Stat(t, filepath.Join(dir, "d/f")); got.Mtime != mtime.UnixNano() || got.Hash != HashBytes([]byte("body")) {
					t.Errorf("Stat = %v, want mtime %v and the content's hash", got, mtime)
				}
			}
		})
	}
}

func TestHashBytesMatchesSparse(t *testing.T) {
	for _, size := range []int64{0, 10, BigFile - 1, BigFile, BigFile + 3} {
		b := make([]byte, size)
		frags := []Frag{}
		if size > 4 {
			copy(b[2:], "ab\x00c")
			frags = append(frags, Frag{2, "ab\x00c"})
		}
		if got, want := Sparse(0o644, size, frags...).Hash, HashBytes(b); got != want {
			t.Errorf("size %d: Sparse hash %s, HashBytes %s", size, got, want)
		}
	}
}
