package layer

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTargetDoesNotLeak: what the target directory itself (or what is already in it) would
// give new files — a setgid group, a default ACL instead of the umask — never reaches the result.
func TestTargetDoesNotLeak(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to chown the target (CI runs as root)")
	}
	// A default ACL user::rw- group::--- other::--- (would make new 0644 files 0600).
	acl := []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"SetgidTarget", func(t *testing.T, dir string) {
			must(t, os.Chown(dir, 0, 50))
			must(t, unix.Chmod(dir, 0o2775))
		}},
		{"DefaultACLTarget", func(t *testing.T, dir string) {
			must(t, unix.Setxattr(dir, "system.posix_acl_default", acl, 0))
		}},
		{"SetgidDirInNonEmptyTarget", func(t *testing.T, dir string) {
			must(t, os.Mkdir(filepath.Join(dir, "sg"), 0o755))
			must(t, os.Chown(filepath.Join(dir, "sg"), 0, 50))
			must(t, unix.Chmod(filepath.Join(dir, "sg"), 0o2775))
		}},
	}
	e := newEnv(t)
	layer := tarOf(t, e.out, []ent{reg("a", "a"), dir("d"), reg("d/b", "b").M(0o640), reg("x/y", "y"), sym("s", "a"),
		fifo("p"), reg("sg/f", "f")})
	want := []string{`a file 0644 0:0 "a"`, "d dir 0755 0:0", `d/b file 0640 0:0 "b"`, "p fifo 0644 0:0",
		`s symlink 0:0 -> "a"`, "x dir 0755 0:0 t=now", `x/y file 0644 0:0 "y"`}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, use := range []string{"unpack", "apply"} {
				target := e.target(t, tc.name+use)
				tc.setup(t, target)
				_, err := unpackOrApply(t, use, target, layer)
				must(t, err)
				got := listing(t, target, true)
				var kept []string
				for _, l := range got {
					if l[:2] != "sg" {
						kept = append(kept, l)
					}
				}
				if d := diff(want, kept); d != "" {
					t.Errorf("%s:\n%s", use, d)
				}
				if st, err := os.Stat(filepath.Join(target, "sg", "f")); err != nil || st.Sys().(*syscall.Stat_t).Gid != 0 {
					t.Errorf("%s: sg/f not group 0: %v", use, err)
				}
			}
		})
	}
}
