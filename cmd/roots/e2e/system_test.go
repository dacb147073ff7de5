//go:build system

package e2e

// System test (make test-system): a real Debian root filesystem, made by
// debootstrap, pushed as an image and pulled by roots, must run under chroot
// and be the same tree, file by file. It needs root, the Debian packages
// debootstrap and libcap2-bin, and the Debian archive (on the first run of a
// week); .ci/run provides all three.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

const (
	debootstrapSuite  = "bookworm"
	debootstrapMirror = "http://deb.debian.org/debian"
	// debootstrapCache holds the debootstrap tree between runs, one per ISO week
	// (debootstrap-bookworm-minbase-amd64-2025w47/): a week's runs reuse it, the
	// first run of a new week builds a fresh one from the archive and removes the
	// old. Delete the directory to force a rebuild.
	debootstrapCache = "/var/cache/roots-test"
)

// debootstrapIncludes are added to minbase so that the tree carries a file
// capability: minbase itself has none (getcap -r finds nothing), while
// iputils-ping's postinst gives /usr/bin/ping cap_net_raw=ep with setcap from
// libcap2-bin.
var debootstrapIncludes = []string{"iputils-ping", "libcap2-bin"}

// TestSystemDebootstrap pulls a debootstrap'd Debian bookworm as a three-layer
// image (usr/; etc/ and var/; the rest), gzip and zstd, with both hardlink
// assembly and --cache=no, and checks that the result runs apt-get and passes
// dpkg --verify under chroot and is the debootstrap tree file by file: type,
// mode, owner, size, content, link target, device numbers, xattrs (so
// security.capability), mtime and hardlink groups.
func TestSystemDebootstrap(t *testing.T) {
	NeedRoot(t)
	for _, tool := range []string{"debootstrap", "getcap", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (.ci/run installs debootstrap and libcap2-bin): %v", tool, err)
		}
	}
	start := time.Now()
	tree := debootstrapTree(t)
	t.Logf("debootstrap tree %s ready in %v", tree, time.Since(start).Round(time.Millisecond))

	wantCaps := getcaps(t, tree)
	if !strings.Contains(wantCaps, "usr/bin/ping cap_net_raw=ep") {
		t.Fatalf("getcap -r %s: no cap_net_raw on usr/bin/ping, so the capability check would prove nothing:\n%s", tree, wantCaps)
	}
	want := testtree.Scan(t, tree, testtree.WithRoot())

	start = time.Now()
	layers, skipped := treeLayers(t, tree)
	r := registrytest.Start(t, registrytest.Config{})
	pushed := r.Push(t, "debian", debootstrapSuite, registrytest.Image{Layers: layers})
	var size int64
	for _, l := range pushed.Layers {
		size += l.Size
	}
	t.Logf("image of %d entries in 3 layers (%d MB compressed) built and pushed in %v",
		len(want), size>>20, time.Since(start).Round(time.Millisecond))

	excused := []testtree.DiffOption{
		// No layer names "./" (as in images docker and buildkit make): the root's
		// mtime is the time the destination was made.
		testtree.Excuse(".", testtree.Mtime),
	}
	for _, p := range skipped {
		// A socket cannot be put in a tar; nothing else is skipped.
		excused = append(excused, testtree.Excuse(p, testtree.Exists))
	}
	// Both sides are this one debootstrap tree, so nothing that debootstrap
	// leaves varying between runs (logs, caches, timestamps) can differ.
	ref := r.Host + "/debian:" + debootstrapSuite
	for _, mode := range []struct{ name, cache string }{{"hardlink", t.TempDir()}, {"nocache", "no"}} {
		t.Run(mode.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "rootfs")
			start := time.Now()
			MustPull(t, nil, "--cache", mode.cache, ref, dest)
			t.Logf("roots pull (%s): %v", mode.name, time.Since(start).Round(time.Millisecond))

			if diffs := testtree.Diff(want, testtree.Scan(t, dest, testtree.WithRoot()), excused...); len(diffs) > 0 {
				if len(diffs) > 50 {
					diffs = append(diffs[:50], fmt.Sprintf("... and %d more", len(diffs)-50))
				}
				t.Errorf("pulled tree differs from the debootstrap tree:\n%s", strings.Join(diffs, "\n"))
			}
			if got := getcaps(t, dest); got != wantCaps {
				t.Errorf("getcap -r: got\n%s\nwant\n%s", got, wantCaps)
			}
			if out, code := chroot(t, dest, "apt-get", "--version"); code != 0 || !strings.HasPrefix(out, "apt ") {
				t.Errorf("chroot apt-get --version: exit %d:\n%s", code, out)
			}
			if out, code := chroot(t, dest, "dpkg", "--verify"); code != 0 || out != "" {
				t.Errorf("chroot dpkg --verify: exit %d, want 0 and no output:\n%s", code, out)
			}
		})
	}
}

// TestSystemMergedUsrLayer puts a layer on the debootstrap rootfs (merged /usr:
// bin -> usr/bin, lib -> usr/lib) that writes bin/... and lib/... without naming
// their parents, as Bazel rules_pkg, ko or crane append do, and runs what it
// added under chroot in every mode: the links stay, the files land in usr/, and
// the system's own programs still find their libraries.
func TestSystemMergedUsrLayer(t *testing.T) {
	NeedRoot(t)
	tree := debootstrapTree(t)
	for _, l := range []string{"bin", "lib", "sbin"} {
		if to, err := os.Readlink(filepath.Join(tree, l)); err != nil || to != "usr/"+l {
			t.Fatalf("the debootstrap tree's /%s is not a link to usr/%s (%q, %v): no merged /usr to test", l, l, to, err)
		}
	}
	libcs, _ := filepath.Glob(filepath.Join(tree, "usr/lib/*-linux-gnu/libc.so.6"))
	if len(libcs) != 1 {
		t.Fatalf("no single usr/lib/*-linux-gnu/libc.so.6 in %s: %v", tree, libcs)
	}
	triplet := filepath.Base(filepath.Dir(libcs[0]))
	read := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(tree, rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	added := []reg{
		{Name: "bin/roots-true", Body: read("usr/bin/true"), Mode: 0o755},
		{Name: "lib/" + triplet + "/roots-test/libc.so.6", Body: read("usr/lib/" + triplet + "/libc.so.6"), Mode: 0o755},
		{Name: "sbin/roots-hello", Body: []byte("#!/bin/sh\necho hello from \"$0\"\n"), Mode: 0o755},
	}
	layers, _ := treeLayers(t, tree)
	layers = append(layers, registrytest.Layer{Entries: added, Compression: registrytest.Gzip})
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "debian-plus", debootstrapSuite, registrytest.Image{Layers: layers})
	ref := r.Host + "/debian-plus:" + debootstrapSuite

	for _, m := range layerModes {
		t.Run(m.name, func(t *testing.T) {
			cache := "no"
			if !m.noCache {
				cache = t.TempDir()
			}
			dest := filepath.Join(t.TempDir(), "rootfs")
			if m.overlay {
				umountAll(t, dest)
			}
			MustPull(t, nil, append(append([]string{"--cache", cache}, m.args...), ref, dest)...)
			for _, l := range []string{"bin", "lib", "sbin"} {
				if to, err := os.Readlink(filepath.Join(dest, l)); err != nil || to != "usr/"+l {
					t.Errorf("/%s: %q, %v; want the link to usr/%s kept", l, to, err, l)
				}
			}
			for _, p := range []string{"usr/bin/roots-true", "usr/lib/" + triplet + "/roots-test/libc.so.6", "usr/sbin/roots-hello"} {
				if fi, err := os.Lstat(filepath.Join(dest, p)); err != nil || !fi.Mode().IsRegular() {
					t.Errorf("%s: %v, %v; want the layer's file there", p, fi, err)
				}
			}
			if out, code := chroot(t, dest, "/bin/roots-true"); code != 0 {
				t.Errorf("chroot /bin/roots-true: exit %d:\n%s", code, out)
			}
			if out, code := chroot(t, dest, "/usr/bin/env", "LD_LIBRARY_PATH=/lib/"+triplet+"/roots-test", "/bin/roots-true"); code != 0 {
				t.Errorf("chroot /bin/roots-true with the added libc: exit %d:\n%s", code, out)
			}
			if out, code := chroot(t, dest, "/sbin/roots-hello"); code != 0 || out != "hello from /sbin/roots-hello\n" {
				t.Errorf("chroot /sbin/roots-hello: exit %d: %q", code, out)
			}
			if out, code := chroot(t, dest, "apt-get", "--version"); code != 0 || !strings.HasPrefix(out, "apt ") {
				t.Errorf("chroot apt-get --version: exit %d:\n%s", code, out)
			}
			if m.overlay {
				if res := Roots(t, nil, "umount", dest); res.Code != 0 {
					t.Errorf("umount: exit %d: %s", res.Code, res.Stderr)
				}
			}
		})
	}
}

// chroot runs a command in dest with a minimal environment and returns its
// combined output and exit code. Neither apt-get --version nor dpkg --verify
// needs /proc, so nothing is mounted.
func chroot(t *testing.T, dest string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("chroot", append([]string{dest}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("chroot %s %v: %v", dest, args, err)
	}
	return string(out), 0
}

// getcaps is getcap -r dir with paths relative to dir, sorted.
func getcaps(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("getcap", "-r", dir).Output()
	if err != nil {
		t.Fatalf("getcap -r %s: %v", dir, err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, strings.TrimPrefix(l, dir+"/"))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// debootstrapTree returns this ISO week's cached debootstrap tree, building it
// (and removing older weeks') if it is missing. If debootstrap fails and an
// older tree is cached, that one is used: the archive being unreachable is not
// a fault of roots.
func debootstrapTree(t *testing.T) string {
	t.Helper()
	if err := os.MkdirAll(debootstrapCache, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(debootstrapCache, "debootstrap.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", lock.Name(), err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)

	prefix := fmt.Sprintf("debootstrap-%s-minbase-%s-", debootstrapSuite, runtime.GOARCH)
	year, week := time.Now().ISOWeek()
	tree := filepath.Join(debootstrapCache, fmt.Sprintf("%s%dw%02d", prefix, year, week))
	if _, err := os.Stat(filepath.Join(tree, "usr", "bin", "apt-get")); err == nil {
		return tree
	}
	older, _ := filepath.Glob(filepath.Join(debootstrapCache, prefix+"*"))

	tmp, err := os.MkdirTemp(debootstrapCache, ".debootstrap-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // a root directory's mode, not MkdirTemp's 0700
		t.Fatal(err)
	}
	args := []string{"--variant=minbase", "--include=" + strings.Join(debootstrapIncludes, ","),
		debootstrapSuite, tmp, debootstrapMirror}
	cmd := exec.Command("debootstrap", args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	err = cmd.Run()
	if err != nil {
		unmountUnder(t, tmp) // debootstrap mounts proc and sys in the target
		os.RemoveAll(tmp)
		if len(older) > 0 {
			sort.Strings(older)
			t.Logf("debootstrap %v failed (%v); using the cached %s\n%s", args, err, older[len(older)-1], lastLines(log.String(), 20))
			return older[len(older)-1]
		}
		t.Fatalf("debootstrap %v: %v\n%s", args, err, lastLines(log.String(), 40))
	}
	t.Logf("debootstrap took %v", time.Since(start).Round(time.Second))
	if err := os.Rename(tmp, tree); err != nil {
		t.Fatal(err)
	}
	for _, old := range older {
		if old != tree {
			unmountUnder(t, old)
			os.RemoveAll(old)
		}
	}
	return tree
}

// unmountUnder detaches every mount at or below dir, deepest first, so that
// removing dir cannot reach into /proc or /sys.
func unmountUnder(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", p, err)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// treeLayers writes tree as three layers, bottom first: usr/; etc/ and var/;
// everything else. Entries keep their owner, mode, mtime (to the nanosecond,
// in PAX), xattrs (SCHILY.xattr), device numbers and hardlinks; a hardlink
// names the first path of its inode, which is always in the same or a lower
// layer. Sockets, which tar cannot hold, are returned as skipped.
func treeLayers(t *testing.T, tree string) ([]registrytest.Layer, []string) {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(tree, p); rel != "." {
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	layerOf := func(rel string) int {
		top, _, _ := strings.Cut(rel, "/")
		switch top {
		case "usr":
			return 0
		case "etc", "var":
			return 1
		}
		return 2
	}
	first := map[[2]uint64]string{}
	var skipped []string
	var layers []registrytest.Layer
	for i, compression := range []registrytest.Compression{registrytest.Gzip, registrytest.Zstd, registrytest.Gzip} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, rel := range paths {
			if layerOf(rel) != i {
				continue
			}
			if !writeTreeEntry(t, tw, tree, rel, first) {
				skipped = append(skipped, rel)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		layers = append(layers, registrytest.Layer{Raw: buf.Bytes(), Compression: compression})
	}
	return layers, skipped
}

// writeTreeEntry writes tree/rel to tw; it returns false for a socket, which
// it skips.
func writeTreeEntry(t *testing.T, tw *tar.Writer, tree, rel string, first map[[2]uint64]string) bool {
	t.Helper()
	p := filepath.Join(tree, rel)
	h, ok := testtree.HeaderOf(t, p, rel)
	if !ok {
		return false
	}
	switch h.Typeflag {
	case tar.TypeReg:
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		k := [2]uint64{st.Dev, st.Ino}
		if target, ok := first[k]; ok {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, target, 0
		} else if st.Nlink > 1 {
			first[k] = rel
		}
	case tar.TypeDir:
		h.Name = rel + "/"
	}
	if err := tw.WriteHeader(&h); err != nil {
		t.Fatalf("tar %s: %v", rel, err)
	}
	if h.Typeflag == tar.TypeReg {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.Copy(tw, f); err != nil {
			t.Fatalf("tar %s: %v", rel, err)
		}
	}
	return true
}

// TestSystemContainersWrite starts hardlink destinations of the debootstrap image the way users
// do next (systemd-nspawn, which rewrites etc/resolv.conf in place; runc on a bundle; a chroot
// that edits etc/) and checks that the cache stays clean (roots check repairs nothing) and that
// another destination of the same image is untouched.
func TestSystemContainersWrite(t *testing.T) {
	NeedRoot(t)
	for _, tool := range []string{"systemd-nspawn", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (.ci/run installs systemd-container and runc): %v", tool, err)
		}
	}
	tree := debootstrapTree(t)
	layers, _ := treeLayers(t, tree)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "debian", debootstrapSuite, registrytest.Image{Layers: layers})
	ref := r.Host + "/debian:" + debootstrapSuite
	cache := t.TempDir()
	other := filepath.Join(t.TempDir(), "other")
	MustPull(t, nil, "--cache", cache, ref, other)
	before := testtree.Scan(t, other, testtree.WithRoot())

	run := func(t *testing.T, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	starts := []struct {
		name  string
		start func(t *testing.T, dest string)
	}{
		{"nspawn", func(t *testing.T, dest string) {
			run(t, "systemd-nspawn", "--register=no", "--keep-unit", "-q", "-D", dest, "/bin/true")
		}},
		{"runc", func(t *testing.T, dest string) {
			testtree.MountinfoLock(t, false) // not beside a mount whose mountinfo line runc 1.1 cannot read
			bundle := filepath.Dir(dest)
			run(t, "runc", "spec", "--bundle", bundle)
			b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			cfg := strings.Replace(string(b), `"terminal": true`, `"terminal": false`, 1)
			cfg = strings.Replace(cfg, `"sh"`, `"/bin/sh", "-c", "echo nameserver 192.0.2.1 >> /etc/resolv.conf; echo roots-test > /etc/hostname"`, 1)
			cfg = strings.Replace(cfg, `"readonly": true`, `"readonly": false`, 1)
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, "runc", "run", "--bundle", bundle, "roots-test-"+strings.ReplaceAll(filepath.Base(filepath.Dir(bundle)), "/", ""))
		}},
		{"chroot", func(t *testing.T, dest string) {
			run(t, "chroot", dest, "/bin/sh", "-c", "echo 127.0.1.1 roots-test >> /etc/hosts && echo x > /etc/machine-id && sed -i s/root/ROOT/ /etc/passwd")
		}},
	}
	for _, s := range starts {
		t.Run(s.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "rootfs")
			MustPull(t, nil, "--cache", cache, ref, dest)
			s.start(t, dest)
			res := Roots(t, nil, "check", "--cache", cache)
			if res.Code != 0 || !strings.Contains(res.Stdout, " 0 repaired") {
				t.Errorf("roots check after %s: exit %d: %s%s", s.name, res.Code, res.Stdout, res.Stderr)
			}
			if diffs := testtree.Diff(before, testtree.Scan(t, other, testtree.WithRoot())); len(diffs) > 0 {
				t.Errorf("another destination of the image changed:\n%s", strings.Join(diffs, "\n"))
			}
		})
	}
}
