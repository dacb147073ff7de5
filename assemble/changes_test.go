package assemble_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/internal/testtree"
)

// changesBase is the base image of the Changes tests: one entry for each change changeDest makes.
var changesBase = []te{
	dir("."),
	reg("keep", "keep"),
	reg("mod", "old"),
	reg("del", "x"),
	dir("d"), reg("d/a", "a"), reg("d/b", "b"),
	dir("rmdir"), reg("rmdir/x", "x"), dir("rmdir/sub"), reg("rmdir/sub/y", "y"),
	dir("emptied"), reg("emptied/1", "1"), reg("emptied/2", "2"),
	dir("one"), reg("one/1", "1"), reg("one/keep", "k"),
	dir("single"), reg("single/only", "o"),
	sym("lnk", "keep"),
	chr("dev", 1, 3),
	fifo("fifo"),
	reg("chmod", "c"), reg("chown", "c"), reg("touch", "t"), reg("xattr", "x"), reg("cap", "c"),
	reg("f2d", "f"),
	dir("d2s"), reg("d2s/in", "i"),
	reg("h1", "h"),
	reg("same", "same"),
}

// changesWant is what Changes finds after changeDest; "same" only with Checksum.
var changesWant = []string{
	"write .", "write added", "write cap", "write chmod", "write chown", "write d2s", "delete del",
	"write dev", "opaque emptied", "write f2d", "write f2d/inner", "write fifo", "write h1",
	"write h1b", "write lnk", "write mod", "write newdev", "write newdir", "write newdir/f",
	"write newdir/sub", "write newdir/sub/g", "write newfifo", "write newlnk", "write nh1",
	"write nh2", "write one", "delete one/1", "delete rmdir", "write same", "write single",
	"delete single/only", "write touch", "write xattr",
}

// changeDest makes in dest one change of every kind. A file that is changed is first given an
// inode of its own, as an editor writing a new file and renaming it does: a hardlinked dest
// shares its inodes with base.
func changeDest(t *testing.T, dest string) {
	t.Helper()
	p := func(name string) string { return filepath.Join(dest, name) }
	own := func(name string) {
		t.Helper()
		run(t, "cp", "-a", p(name), p(name)+".new")
		ok(t, os.Rename(p(name)+".new", p(name)))
	}
	own("mod")
	ok(t, os.WriteFile(p("mod"), []byte("new content"), 0o644))
	ok(t, os.Remove(p("del")))
	ok(t, os.WriteFile(p("added"), []byte("added"), 0o644))
	ok(t, os.MkdirAll(p("newdir/sub"), 0o755))
	ok(t, os.WriteFile(p("newdir/f"), []byte("f"), 0o644))
	ok(t, os.WriteFile(p("newdir/sub/g"), []byte("g"), 0o644))
	ok(t, os.Symlink("/nowhere", p("newlnk")))
	ok(t, unix.Mknod(p("newdev"), unix.S_IFCHR|0o600, int(unix.Mkdev(4, 1))))
	ok(t, unix.Mkfifo(p("newfifo"), 0o600))
	ok(t, os.WriteFile(p("nh1"), []byte("pair"), 0o644))
	ok(t, os.Link(p("nh1"), p("nh2")))
	ok(t, os.RemoveAll(p("rmdir")))
	ok(t, os.Remove(p("emptied/1")))
	ok(t, os.Remove(p("emptied/2")))
	ok(t, os.Remove(p("one/1")))
	ok(t, os.Remove(p("single/only")))
	ok(t, os.Remove(p("lnk")))
	ok(t, os.Symlink("mod", p("lnk")))
	ok(t, os.Remove(p("dev")))
	ok(t, unix.Mknod(p("dev"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))))
	own("fifo")
	ok(t, os.Chmod(p("fifo"), 0o644))
	own("chmod")
	ok(t, os.Chmod(p("chmod"), 0o4700))
	own("chown")
	ok(t, os.Lchown(p("chown"), 1000, 1000))
	own("touch")
	ok(t, unix.UtimesNanoAt(unix.AT_FDCWD, p("touch"), []unix.Timespec{unix.NsecToTimespec(d1.UnixNano()), unix.NsecToTimespec(d1.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW))
	own("xattr")
	ok(t, unix.Lsetxattr(p("xattr"), "user.new", []byte("v"), 0))
	own("cap")
	ok(t, unix.Lsetxattr(p("cap"), "security.capability", []byte(capNetRaw), 0))
	ok(t, os.Remove(p("f2d")))
	ok(t, os.Mkdir(p("f2d"), 0o700))
	ok(t, os.WriteFile(p("f2d/inner"), []byte("inner"), 0o644))
	ok(t, os.RemoveAll(p("d2s")))
	ok(t, os.Symlink("keep", p("d2s")))
	ok(t, os.Link(p("h1"), p("h1b")))
	// Same size, same mtime, other content: only Checksum sees it.
	var st unix.Stat_t
	ok(t, unix.Lstat(p("same"), &st))
	own("same")
	ok(t, os.WriteFile(p("same"), []byte("SAME"), 0o644))
	ok(t, unix.UtimesNano(p("same"), []unix.Timespec{st.Atim, st.Mtim}))
	// Excluded.
	ok(t, os.Mkdir(p(".git"), 0o755))
	ok(t, os.WriteFile(p(".git/config"), []byte("[core]"), 0o644))
}

// changesSetup makes base from changesBase and dest as a copy of it (hardlinked: cp -al, as a
// hardlink assembly of the same trees shares the inodes), changed by changeDest.
func changesSetup(t *testing.T, hardlinked bool) (base, dest string) {
	t.Helper()
	tmp := t.TempDir()
	base, dest = filepath.Join(tmp, "base"), filepath.Join(tmp, "dest")
	ok(t, applyAll(t, base, [][]byte{tarOf(t, "", changesBase)}))
	if hardlinked {
		run(t, "cp", "-al", base, dest)
	} else {
		run(t, "cp", "-a", base, dest)
	}
	changeDest(t, dest)
	return base, dest
}

// TestChanges: every kind of change is found, as the fewest entries, in Export's order; and
// the layer Export makes of them, applied onto a copy of base, gives dest back.
func TestChanges(t *testing.T) {
	rootOnly(t)
	for _, hardlinked := range []bool{false, true} {
		for _, checksum := range []bool{false, true} {
			t.Run(fmt.Sprintf("Hardlinked=%v/Checksum=%v", hardlinked, checksum), func(t *testing.T) {
				base, dest := changesSetup(t, hardlinked)
				opts := assemble.ChangeOptions{Hardlinked: hardlinked, Checksum: checksum, Exclude: []string{".git"}}
				changes, err := assemble.Changes(context.Background(), dest, base, opts)
				ok(t, err)
				var want []string
				for _, c := range changesWant {
					if c != "write same" || checksum {
						want = append(want, c)
					}
				}
				if got := changeStrings(changes); !reflect.DeepEqual(got, want) {
					t.Errorf("changes:\n got %q\nwant %q", got, want)
				}
				if !checksum {
					return
				}
				// The round trip.
				var b bytes.Buffer
				_, err = layer.Export(context.Background(), &b, dest, changes)
				ok(t, err)
				rt := filepath.Join(filepath.Dir(base), "roundtrip")
				run(t, "cp", "-a", base, rt)
				applyOnto(t, rt, b.Bytes())
				d := testtree.Diff(scan(t, dest), scan(t, rt), testtree.Excuse(".git", testtree.Exists), testtree.Excuse(".git/config", testtree.Exists))
				for _, l := range d {
					t.Error(l)
				}
			})
		}
	}
}

// TestChangesHardlinkedSharedWrite: a write through an inode that dest shares with base changes
// both, so Hardlinked does not see it (the caller checks the trees' fingerprints).
func TestChangesHardlinkedSharedWrite(t *testing.T) {
	rootOnly(t)
	tmp := t.TempDir()
	base, dest := filepath.Join(tmp, "base"), filepath.Join(tmp, "dest")
	ok(t, applyAll(t, base, [][]byte{tarOf(t, "", changesBase)}))
	run(t, "cp", "-al", base, dest)
	f, err := os.OpenFile(filepath.Join(dest, "keep"), os.O_WRONLY|os.O_APPEND, 0)
	ok(t, err)
	_, err = f.WriteString(" more")
	ok(t, err)
	ok(t, f.Close())
	changes, err := assemble.Changes(context.Background(), dest, base, assemble.ChangeOptions{Hardlinked: true})
	ok(t, err)
	if len(changes) != 0 {
		t.Errorf("changes %q, want none", changeStrings(changes))
	}
}

// changesChildEnv makes the test binary run Changes alone (under strace, see
// TestChangesOpensOnlyDirectories): "DEST|BASE|MODE".
const changesChildEnv = "ROOTS_ASSEMBLE_TEST_CHANGES"

// TestChangesOpensOnlyDirectories counts the files that Changes opens, with strace: none but
// directories, in a hardlinked dest of many files with a few changes; and with Checksum every
// unchanged file of a copied dest, twice (which shows that the count sees opens at all).
func TestChangesOpensOnlyDirectories(t *testing.T) {
	if args := os.Getenv(changesChildEnv); args != "" {
		a := strings.Split(args, "|")
		opts := assemble.ChangeOptions{Hardlinked: a[2] == "hardlinked", Checksum: a[2] == "checksum"}
		changes, err := assemble.Changes(context.Background(), a[0], a[1], opts)
		ok(t, err)
		fmt.Printf("%d changes\n", len(changes))
		return
	}
	rootOnly(t)
	if _, err := exec.LookPath("strace"); err != nil {
		t.Fatal("this test needs strace")
	}
	ents := []te{dir(".")}
	for i := range 200 {
		ents = append(ents, reg(fmt.Sprintf("f%03d", i), "data"))
	}
	tests := []struct {
		name       string
		copyFlags  string
		mode       string
		wantOpens  int
		wantChange int
	}{
		{"Hardlinked", "-al", "hardlinked", 0, 4}, // ".", a new file, a deleted one, a replaced one
		{"Checksum", "-a", "checksum", 2 * 198, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			base, dest := filepath.Join(tmp, "base"), filepath.Join(tmp, "dest")
			ok(t, applyAll(t, base, [][]byte{tarOf(t, "", ents)}))
			run(t, "cp", tt.copyFlags, base, dest)
			ok(t, os.WriteFile(filepath.Join(dest, "new"), []byte("new"), 0o644))
			ok(t, os.Remove(filepath.Join(dest, "f000")))
			ok(t, os.Remove(filepath.Join(dest, "f001")))
			ok(t, os.WriteFile(filepath.Join(dest, "f001"), []byte("replaced"), 0o644))
			log := filepath.Join(tmp, "strace.log")
			cmd := exec.Command("strace", "-f", "-qq", "-y", "-e", "trace=open,openat,openat2", "-o", log,
				os.Args[0], "-test.run=^TestChangesOpensOnlyDirectories$", "-test.count=1")
			cmd.Env = append(os.Environ(), changesChildEnv+"="+dest+"|"+base+"|"+tt.mode)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if want := fmt.Sprintf("%d changes", tt.wantChange); !strings.Contains(string(out), want) {
				t.Errorf("child says %q, want %q", out, want)
			}
			trace, err := os.ReadFile(log)
			ok(t, err)
			var opens []string
			for _, l := range strings.Split(string(trace), "\n") {
				// Only opens that returned a descriptor of a file, read from the result (strace -y
				// names it): an open that a signal interrupts (the Go runtime's preemption, under
				// load) shows as ERESTARTSYS and again, and one split between threads as
				// "<unfinished ...>" and "<... openat resumed>".
				if m := openedFile.FindStringSubmatch(l); m != nil && strings.HasPrefix(m[1], tmp) {
					opens = append(opens, l)
				}
			}
			if len(opens) != tt.wantOpens {
				t.Errorf("%d files opened, want %d:\n%s", len(opens), tt.wantOpens, strings.Join(opens[:min(len(opens), 10)], "\n"))
			}
		})
	}
}

// openedFile matches an open's result as strace -y shows it, when it is one of the files of
// TestChangesOpensOnlyDirectories.
var openedFile = regexp.MustCompile(`= [0-9]+<(/[^>]*/(?:f[0-9]{3}|new))>`)

// TestChangesMountBelow: a mount below dest fails, naming it.
func TestChangesMountBelow(t *testing.T) {
	rootOnly(t)
	tmp := t.TempDir()
	base, dest := filepath.Join(tmp, "base"), filepath.Join(tmp, "dest")
	ok(t, applyAll(t, base, [][]byte{tarOf(t, "", []te{dir("."), dir("proc")})}))
	run(t, "cp", "-a", base, dest)
	ok(t, unix.Mount("tmpfs", filepath.Join(dest, "proc"), "tmpfs", 0, "mode=0755"))
	defer unix.Unmount(filepath.Join(dest, "proc"), unix.MNT_DETACH)
	_, err := assemble.Changes(context.Background(), dest, base, assemble.ChangeOptions{})
	if !errors.Is(err, assemble.ErrMountPoint) || !strings.Contains(err.Error(), "proc") {
		t.Fatalf("Changes: %v, want ErrMountPoint naming proc", err)
	}
}

// TestOverlayChanges: the changes made through an overlay mount, read from its upper directory
// alone and exported, applied onto a copy of the lower tree, give what the mount showed.
func TestOverlayChanges(t *testing.T) {
	rootOnly(t)
	tmp := t.TempDir()
	base := filepath.Join(tmp, "base")
	ok(t, applyAll(t, base, [][]byte{tarOf(t, "", []te{
		dir("."), reg("keep", "k"), reg("mod", "old"), reg("del", "x"), reg("chmod", "c").X("user.a", "1"),
		dir("gone"), reg("gone/x", "x"), dir("redo"), reg("redo/old", "o"), dir("sub"), reg("sub/f", "f"),
	})}))
	upper, work, merged := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{upper, work, merged} {
		ok(t, os.Mkdir(d, 0o755))
	}
	ok(t, unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+base+",upperdir="+upper+",workdir="+work))
	mounted := true
	defer func() {
		if mounted {
			unix.Unmount(merged, unix.MNT_DETACH)
		}
	}()
	p := func(name string) string { return filepath.Join(merged, name) }
	ok(t, os.WriteFile(p("mod"), []byte("new content"), 0o644))
	ok(t, os.WriteFile(p("added"), []byte("added"), 0o644))
	ok(t, os.Remove(p("del")))
	ok(t, os.Chmod(p("chmod"), 0o600))
	ok(t, os.RemoveAll(p("gone")))
	ok(t, os.RemoveAll(p("redo")))
	ok(t, os.Mkdir(p("redo"), 0o700))
	ok(t, os.WriteFile(p("redo/new"), []byte("n"), 0o644))
	ok(t, os.WriteFile(p("sub/g"), []byte("g"), 0o644))
	ok(t, os.Symlink("keep", p("lnk")))
	want := scan(t, merged)
	ok(t, unix.Unmount(merged, 0))
	mounted = false

	changes, err := assemble.OverlayChanges(context.Background(), upper)
	ok(t, err)
	kinds := map[string]string{}
	for _, c := range changes {
		kinds[c.Path] = c.Kind.String()
	}
	for n, k := range map[string]string{".": "write", "mod": "write", "added": "write", "del": "delete", "chmod": "write",
		"gone": "delete", "redo": "opaque", "redo/new": "write", "sub": "write", "sub/g": "write", "lnk": "write"} {
		if kinds[n] != k {
			t.Errorf("%s: %q, want %q", n, kinds[n], k)
		}
	}
	for _, n := range []string{"keep", "sub/f", "redo/old"} {
		if k, found := kinds[n]; found {
			t.Errorf("%s: %q, want no change", n, k)
		}
	}
	var b bytes.Buffer
	_, err = layer.Export(context.Background(), &b, upper, changes)
	ok(t, err)
	rt := filepath.Join(tmp, "roundtrip")
	run(t, "cp", "-a", base, rt)
	applyOnto(t, rt, b.Bytes())
	for _, l := range testtree.Diff(want, scan(t, rt)) {
		t.Error(l)
	}
}

// TestOverlayChangesRefusesMetacopy: a metadata-only copy-up keeps its data in the lower
// layer, which OverlayChanges does not read: it fails rather than export an empty file.
func TestOverlayChangesRefusesMetacopy(t *testing.T) {
	rootOnly(t)
	tmp := t.TempDir()
	base := filepath.Join(tmp, "base")
	ok(t, applyAll(t, base, [][]byte{tarOf(t, "", []te{dir("."), reg("f", "data")})}))
	upper, work, merged := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{upper, work, merged} {
		ok(t, os.Mkdir(d, 0o755))
	}
	opts := "lowerdir=" + base + ",upperdir=" + upper + ",workdir=" + work + ",redirect_dir=on,metacopy=on"
	ok(t, unix.Mount("overlay", merged, "overlay", 0, opts))
	err := os.Chmod(filepath.Join(merged, "f"), 0o600)
	ok(t, unix.Unmount(merged, 0))
	ok(t, err)
	_, err = assemble.OverlayChanges(context.Background(), upper)
	if !errors.Is(err, assemble.ErrUpperNeedsLower) {
		t.Fatalf("OverlayChanges: %v, want ErrUpperNeedsLower", err)
	}
}

// applyOnto applies the layer b onto the rootfs dir with a layer.Applier.
func applyOnto(t *testing.T, dir string, b []byte) {
	t.Helper()
	a, err := layer.NewApplier(dir)
	ok(t, err)
	defer a.Close()
	ok(t, a.Apply(context.Background(), bytes.NewReader(b)))
	_, err = a.Finish()
	ok(t, err)
}

func changeStrings(changes []layer.Change) []string {
	var s []string
	for _, c := range changes {
		s = append(s, c.String())
	}
	return s
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func rootOnly(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it makes devices, sets owners, mounts (CI runs as root)")
	}
}
