package layer

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
)

const asNobodyEnv = "ROOTS_LAYER_TEST_AS_NOBODY"

// needsRoot lists the cases whose trees a non-root user cannot even list (0000 directories).
var needsRoot = map[string]bool{"Mode0500DirWithChildren": true}

// TestAsNobody runs the layer cases without root: as root (CI) it re-executes the test binary
// as nobody (65534); as any other user it runs them directly. Expectations on owners, devices
// and xattrs are left out (they are what cannot be applied); errors, Records, confinement and
// "trees assembled = Applier" must hold all the same.
func TestAsNobody(t *testing.T) {
	if os.Geteuid() == 0 {
		reexecAsNobody(t)
		return
	}
	for _, tc := range layerCases() {
		if needsRoot[tc.name] {
			continue
		}
		t.Run(tc.name, func(t *testing.T) { runLayerCase(t, tc, false) })
	}
	t.Run("UnappliedRecorded", testUnappliedRecorded)
}

func reexecAsNobody(t *testing.T) {
	dir, err := os.MkdirTemp("", "roots-layer-test-")
	must(t, err)
	defer os.RemoveAll(dir)
	must(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "layer.test")
	src, err := os.Open(os.Args[0])
	must(t, err)
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	must(t, err)
	_, err = io.Copy(dst, src)
	src.Close()
	must(t, dst.Close())
	must(t, err)
	must(t, os.Chmod(bin, 0o755)) // whatever the umask

	args := []string{"-test.run=^TestAsNobody$", "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), asNobodyEnv+"=1", "TMPDIR=/tmp")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	t.Logf("as nobody:\n%s", out)
	if err != nil {
		t.Fatalf("tests as nobody failed: %v", err)
	}
	if !bytes.Contains(out, []byte("PASS")) {
		t.Fatal("tests as nobody did not run")
	}
}

// testUnappliedRecorded: without root, owners, devices and privileged xattrs are recorded as
// unapplied and the unpack succeeds; whiteouts and opaque dirs live in the Record only. The
// root keeps rwx for its owner (a tree must stay writable to be published).
func testUnappliedRecorded(t *testing.T) {
	uid, gid := os.Geteuid(), os.Getegid()
	ents := []ent{
		dir("./").M(0o555).O(0, 0),
		reg("mine", "m").O(uid, gid),
		reg("roots", "r").O(0, 0),
		chr("dev/null", 1, 3).O(uid, gid),
		blk("dev/sda", 8, 0).O(uid, gid),
		fifo("fifo").O(uid, gid).X("user.f", "1"),
		reg("caps", "c").O(uid, gid).X("security.capability", capNetBind).X("user.ok", "1"),
		reg("trusted", "t").O(uid, gid).X("trusted.x", "1"),
		dir("d").O(0, 0),
		reg("d/.wh.gone", ""),
		reg("o/.wh..wh..opq", ""),
		sym("s", "mine").O(1, 1).X("user.s", "1"),
	}
	want := []Unapplied{
		{".", "mode 0555"},
		{".", "owner 0:0"},
		{"caps", "xattr security.capability"},
		{"d", "owner 0:0"},
		{"dev/null", "char device 1:3"},
		{"dev/sda", "block device 8:0"},
		{"fifo", "xattr user.f: not supported on a fifo"},
		{"roots", "owner 0:0"},
		{"s", "owner 1:1"},
		{"s", "xattr user.s: not supported on a symlink"},
		{"trusted", "xattr trusted.x"},
	}
	e := newEnv(t)
	layer := tarOf(t, e.out, ents)
	for _, use := range []string{"unpack", "apply"} {
		t.Run(use, func(t *testing.T) {
			target := e.target(t, use)
			var rec Record
			var err error
			e.confined(t, target, func() {
				rec, err = unpackOrApply(t, use, target, layer)
			})
			if err != nil {
				t.Fatal(err)
			}
			got := append([]Unapplied(nil), rec.Unapplied...)
			sort.Slice(got, func(i, j int) bool {
				return got[i].Path < got[j].Path || got[i].Path == got[j].Path && got[i].What < got[j].What
			})
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Unapplied:\n got %v\nwant %v", got, want)
			}
			if got := rootLine(t, target, false); got != ". dir 0755" {
				t.Errorf("root %q, want 0755 (0555 with rwx kept for the owner)", got)
			}
			lines := strings.Join(listing(t, target, false), "\n")
			// A device that cannot be made leaves its path alone: not even its parent is made.
			for _, bad := range []string{"dev", "char", "trusted.overlay", ".wh."} {
				if strings.Contains(lines, bad) {
					t.Errorf("%q in the result:\n%s", bad, lines)
				}
			}
			for _, good := range []string{`caps file 0644 "c" x:user.ok="1"`, "fifo fifo 0644", "d dir 0755", "o dir 0755 t=now"} {
				if !strings.Contains(lines, good) {
					t.Errorf("no %q in the result:\n%s", good, lines)
				}
			}
			if use == "unpack" {
				if !reflect.DeepEqual(rec.Whiteouts, []string{"d/gone"}) || !reflect.DeepEqual(rec.Opaque, []string{"o"}) {
					t.Errorf("Whiteouts %v Opaque %v, want [d/gone] [o]", rec.Whiteouts, rec.Opaque)
				}
			}
		})
	}
}
