package e2e

import (
	"archive/tar"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// baseImage is three layers in three compressions that exercise what a pull
// must get right: owners, modes, links, whiteouts, opaque dirs, an implicit
// parent over a sticky dir, and a type change.
func baseImage(format registrytest.Format) registrytest.Image {
	return registrytest.Image{Format: format, Layers: []registrytest.Layer{
		{Compression: "gzip", Entries: []reg{
			{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "etc/passwd", Body: []byte("root:x:0:0::/root:/bin/sh\n")},
			{Name: "etc/owned", Body: []byte("mine"), Uid: 1000, Gid: 1000, Mode: 0o600},
			{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
			{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/bin/", Type: tar.TypeDir, Mode: 0o755},
			{Name: "usr/bin/tool", Body: []byte("#!tool"), Mode: 0o4755},
			{Name: "usr/bin/tool2", Type: tar.TypeLink, Linkname: "usr/bin/tool"},
			{Name: "bin", Type: tar.TypeSymlink, Linkname: "usr/bin"},
			{Name: "var/cache/old/a", Body: []byte("a")},
			{Name: "var/cache/old/b", Body: []byte("b")},
			{Name: "opt/keep/x", Body: []byte("x")},
		}},
		{Compression: "zstd", Entries: []reg{
			{Name: "etc/.wh.owned"},
			{Name: "var/cache/new", Body: []byte("new")},
			{Name: "var/cache/.wh..wh..opq"},
			{Name: "tmp/x", Body: []byte("in tmp")},
		}},
		{Compression: "none", Entries: []reg{
			{Name: "etc/passwd", Body: []byte("root:x:0:0::/root:/bin/bash\n"), Mode: 0o644},
			{Name: "opt/keep", Body: []byte("now a file")},
		}},
	}}
}

// baseWant is the root filesystem baseImage must give.
func baseWant() map[string]entry {
	return map[string]entry{
		"etc":           testtree.Dir(0o755),
		"etc/passwd":    testtree.File(0o644, "root:x:0:0::/root:/bin/bash\n"),
		"tmp":           testtree.Dir(0o1777),
		"tmp/x":         testtree.File(0o644, "in tmp"),
		"usr":           testtree.Dir(0o755),
		"usr/bin":       testtree.Dir(0o755),
		"usr/bin/tool":  testtree.File(0o4755|os.ModeSetuid, "#!tool"),
		"usr/bin/tool2": testtree.File(0o4755|os.ModeSetuid, "#!tool"),
		"bin":           testtree.Symlink("usr/bin"),
		"var":           testtree.Dir(0o755),
		"var/cache":     testtree.Dir(0o755),
		"var/cache/new": testtree.File(0o644, "new"),
		"opt":           testtree.Dir(0o755),
		"opt/keep":      testtree.File(0o644, "now a file"),
	}
}

func TestPullModes(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	for _, format := range []registrytest.Format{registrytest.OCI, registrytest.Docker} {
		r.Push(t, "base", fmtName(format), baseImage(format))
	}
	tests := []struct {
		name   string
		format registrytest.Format
		cache  string // "" = a fresh cache dir
	}{
		{"OCIHardlink", registrytest.OCI, ""},
		{"DockerHardlink", registrytest.Docker, ""},
		{"OCINoCache", registrytest.OCI, "no"},
		{"DockerNoCache", registrytest.Docker, "no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := tt.cache
			if cache == "" {
				cache = t.TempDir()
			}
			dest := filepath.Join(t.TempDir(), "rootfs")
			MustPull(t, nil, "--cache", cache, r.Host+"/base:"+fmtName(tt.format), dest)
			SameTree(t, testtree.Scan(t, dest), fixModes(baseWant()))
			if fi, err := os.Stat(dest); err != nil || fi.Mode() != os.ModeDir|0o755 {
				t.Errorf("DEST itself: %v, %v; want drwxr-xr-x (no layer names the root)", fi.Mode(), err)
			}
			if !SameInode(t, dest+"/usr/bin/tool", dest+"/usr/bin/tool2") {
				t.Error("usr/bin/tool2 is not a hard link of usr/bin/tool")
			}
			AssertNoStaging(t, filepath.Dir(dest))
			if cache != "no" {
				// A second pull from the warm cache gives the same tree.
				dest2 := filepath.Join(t.TempDir(), "again")
				MustPull(t, nil, "--cache", cache, r.Host+"/base:"+fmtName(tt.format), dest2)
				SameTree(t, testtree.Scan(t, dest2), fixModes(baseWant()))
			}
		})
	}
}

func fmtName(f registrytest.Format) string {
	if f == registrytest.Docker {
		return "docker"
	}
	return "oci"
}

// fixModes turns the permission bits written as 0o4755 into Go's mode bits.
func fixModes(m map[string]entry) map[string]entry {
	for p, e := range m {
		perm := e.Mode & 0o777
		raw := uint32(e.Mode)
		if raw&0o4000 != 0 || e.Mode&os.ModeSetuid != 0 {
			perm |= os.ModeSetuid
		}
		if raw&0o2000 != 0 || e.Mode&os.ModeSetgid != 0 {
			perm |= os.ModeSetgid
		}
		if raw&0o1000 != 0 || e.Mode&os.ModeSticky != 0 {
			perm |= os.ModeSticky
		}
		e.Mode = perm
		m[p] = e
	}
	return m
}

// TestPullRunsInChroot pulls an image that carries a static binary built from
// this machine's Go toolchain and runs it under chroot.
func TestPullRunsInChroot(t *testing.T) {
	NeedRoot(t)
	src := filepath.Join(t.TempDir(), "hello.go")
	os.WriteFile(src, []byte(`package main
import ("fmt"; "os")
func main() { b, _ := os.ReadFile("/etc/greeting"); fmt.Printf("%s from %s", b, os.Args[0]) }
`), 0o644)
	bin := filepath.Join(t.TempDir(), "hello")
	build := exec.Command("go", "build", "-o", bin, src)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build static binary: %v\n%s", err, out)
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "hello", "latest", registrytest.Image{Layers: []registrytest.Layer{
		{Compression: "gzip", Entries: []reg{{Name: "bin/hello", Body: body, Mode: 0o755}}},
		{Compression: "zstd", Entries: []reg{{Name: "etc/greeting", Body: []byte("hello")}}},
	}})
	dest := filepath.Join(t.TempDir(), "rootfs")
	MustPull(t, nil, "--cache", t.TempDir(), r.Host+"/hello", dest)
	out, err := exec.Command("chroot", dest, "/bin/hello").CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s /bin/hello: %v\n%s", dest, err, out)
	}
	if string(out) != "hello from /bin/hello" {
		t.Fatalf("chroot ran /bin/hello: got %q", out)
	}
}
