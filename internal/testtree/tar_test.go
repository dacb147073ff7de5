package testtree

import (
	"archive/tar"
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/fetch/registrytest"
)

func TestTarAddDefaults(t *testing.T) {
	tests := []struct {
		name string
		h    tar.Header
		want tar.Header
	}{
		{"File", tar.Header{Name: "f"}, tar.Header{Typeflag: tar.TypeReg, Mode: 0o644}},
		{"Dir", tar.Header{Name: "d/", Typeflag: tar.TypeDir}, tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}},
		{"Symlink", tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "f"}, tar.Header{Typeflag: tar.TypeSymlink, Mode: 0o777}},
		{"ZeroMode", tar.Header{Name: "z", Mode: ZeroMode}, tar.Header{Typeflag: tar.TypeReg, Mode: 0}},
		{"Given", tar.Header{Name: "g", Mode: 0o4711}, tar.Header{Typeflag: tar.TypeReg, Mode: 0o4711}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewTar(t).Add(tc.h, "").Bytes()
			tr := tar.NewReader(strings.NewReader(string(b)))
			h, err := tr.Next()
			must(t, err)
			if h.Typeflag != tc.want.Typeflag || h.Mode != tc.want.Mode || !h.ModTime.Equal(registrytest.EntryTime) {
				t.Errorf("header %c %o %v, want %c %o %v", h.Typeflag, h.Mode, h.ModTime, tc.want.Typeflag, tc.want.Mode, registrytest.EntryTime)
			}
		})
	}
}

func TestChain(t *testing.T) {
	tests := []struct {
		n    int
		want []Link
	}{
		{0, []Link{}},
		{1, []Link{{"l0", "d"}}},
		{3, []Link{{"l0", "l1"}, {"l1", "l2"}, {"l2", "d"}}},
	}
	for _, tc := range tests {
		got := Chain(tc.n)
		if len(got) != len(tc.want) {
			t.Fatalf("Chain(%d) = %v, want %v", tc.n, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("Chain(%d) = %v, want %v", tc.n, got, tc.want)
			}
		}
	}
}

func TestLayer(t *testing.T) {
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	late := time.Date(2005, 6, 7, 8, 9, 10, 123456789, time.UTC)
	tests := []struct {
		name string
		ent  Ent
		want tar.Header // the fields checked
		body string
	}{
		{"Reg", TarReg("f", "body"), tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: mtime, Size: 4}, "body"},
		{"ZeroMode", TarDir("d").M(0), tar.Header{Name: "d", Typeflag: tar.TypeDir, ModTime: mtime}, ""},
		{"OutsideAndOwner", TarSym("$OUT/l", "$OUT/t").O(7, 8).T(late).F(tar.FormatPAX),
			tar.Header{Name: "/out/l", Linkname: "/out/t", Typeflag: tar.TypeSymlink, Mode: 0o777, Uid: 7, Gid: 8, ModTime: late}, ""},
		{"Xattrs", TarReg("x", "").X("user.a", "1").X("user.a", "2"),
			tar.Header{Name: "x", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: mtime, PAXRecords: map[string]string{"SCHILY.xattr.user.a": "2"}}, ""},
		{"Device", TarChr("null", 1, 3), tar.Header{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, ModTime: mtime, Devmajor: 1, Devminor: 3}, ""},
		{"Raw", TarRaw(Header("raw", tar.TypeReg, 0o600, 0, false, nil)),
			tar.Header{Name: "raw", Typeflag: tar.TypeReg, Mode: 0o600, ModTime: registrytest.EntryTime}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := tar.NewReader(bytes.NewReader(Layer(t, "/out", mtime, []Ent{tc.ent})))
			h, err := tr.Next()
			must(t, err)
			body, err := io.ReadAll(tr)
			must(t, err)
			w := tc.want
			if h.Name != w.Name || h.Linkname != w.Linkname || h.Typeflag != w.Typeflag || h.Mode != w.Mode ||
				h.Uid != w.Uid || h.Gid != w.Gid || !h.ModTime.Equal(w.ModTime) || h.Size != w.Size ||
				h.Devmajor != w.Devmajor || h.Devminor != w.Devminor || string(body) != tc.body {
				t.Errorf("header %+v body %q, want %+v body %q", h, body, w, tc.body)
			}
			for k, v := range w.PAXRecords {
				if h.PAXRecords[k] != v {
					t.Errorf("PAX record %s = %q, want %q", k, h.PAXRecords[k], v)
				}
			}
			if _, err := tr.Next(); err != io.EOF {
				t.Errorf("more than one entry: %v", err)
			}
		})
	}
}

func TestHeaderOf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (owners, devices); CI runs as root")
	}
	dir := t.TempDir()
	mtime := time.Date(2005, 6, 7, 8, 9, 10, 123456789, time.UTC)
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("body"), 0o600))
	must(t, unix.Lsetxattr(filepath.Join(dir, "f"), "user.k", []byte("v"), 0))
	must(t, unix.Lsetxattr(filepath.Join(dir, "f"), "trusted.overlay.x", []byte("y"), 0))
	must(t, os.Chtimes(filepath.Join(dir, "f"), mtime, mtime))
	must(t, os.Symlink("f", filepath.Join(dir, "l")))
	must(t, unix.Mknod(filepath.Join(dir, "c"), unix.S_IFCHR|0o600, int(unix.Mkdev(4, 5))))
	must(t, os.Lchown(filepath.Join(dir, "c"), 3, 4))
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	must(t, err)
	defer l.Close()
	tests := []struct {
		name string
		ok   bool
		want tar.Header
	}{
		{"f", true, tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o600, Size: 4, ModTime: mtime,
			PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}}},
		{"l", true, tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "f", Mode: 0o777}},
		{"c", true, tar.Header{Name: "c", Typeflag: tar.TypeChar, Mode: 0o600, Uid: 3, Gid: 4, Devmajor: 4, Devminor: 5}},
		{"s", false, tar.Header{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, ok := HeaderOf(t, filepath.Join(dir, tc.name), tc.name, "trusted.overlay.")
			w := tc.want
			if ok != tc.ok || !ok {
				if ok != tc.ok {
					t.Errorf("ok = %v, want %v", ok, tc.ok)
				}
				return
			}
			if h.Name != w.Name || h.Typeflag != w.Typeflag || h.Linkname != w.Linkname || h.Mode != w.Mode || h.Size != w.Size ||
				h.Uid != w.Uid || h.Gid != w.Gid || h.Devmajor != w.Devmajor || h.Devminor != w.Devminor ||
				(!w.ModTime.IsZero() && !h.ModTime.Equal(w.ModTime)) || len(h.PAXRecords) != len(w.PAXRecords) {
				t.Errorf("HeaderOf = %+v, want %+v", h, w)
			}
			for k, v := range w.PAXRecords {
				if h.PAXRecords[k] != v {
					t.Errorf("PAX %s = %q, want %q", k, h.PAXRecords[k], v)
				}
			}
		})
	}
}
