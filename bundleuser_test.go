package roots

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/internal/disk"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment, and a line without ids
broken:x:abc:def::/nowhere:/bin/false
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:the app:/home/app:/bin/sh
nohome:x:1001:1001::
`

const testGroup = `root:x:0:
daemon:x:1:app
wheel:x:10:root,app
app:x:1000:
staff:x:50:nohome,app
audio:x:29:nobody
`

// TestBundleUserResolve: every form of an image's User, resolved as Docker resolves it.
func TestBundleUserResolve(t *testing.T) {
	tests := []struct {
		name, spec string
		want       execUser
		err        error // errors.Is; nil: none
		errHas     string
	}{
		{"Empty is root", "", execUser{0, 0, []uint32{10}, "/root"}, nil, ""},
		{"Name", "app", execUser{1000, 1000, []uint32{1, 10, 50}, "/home/app"}, nil, ""},
		{"Uid in passwd", "1000", execUser{1000, 1000, []uint32{1, 10, 50}, "/home/app"}, nil, ""},
		{"Uid not in passwd", "4242", execUser{4242, 0, nil, "/"}, nil, ""},
		{"Uid:gid", "1000:50", execUser{1000, 50, nil, "/home/app"}, nil, ""},
		{"Name:group", "app:staff", execUser{1000, 50, nil, "/home/app"}, nil, ""},
		{"Uid:group", "4242:wheel", execUser{4242, 10, nil, "/"}, nil, ""},
		{"Name:gid", "daemon:4343", execUser{1, 4343, nil, "/usr/sbin"}, nil, ""},
		{"No home field", "nohome", execUser{1001, 1001, []uint32{50}, "/"}, nil, ""},
		{"Root by uid", "0", execUser{0, 0, []uint32{10}, "/root"}, nil, ""},
		{"Unknown name", "nosuch", execUser{}, ErrUnknownUser, `no user "nosuch" in the image's /etc/passwd`},
		{"Unknown group", "app:nosuch", execUser{}, ErrUnknownUser, `no group "nosuch" in the image's /etc/group`},
		{"Name of a broken line", "broken", execUser{}, ErrUnknownUser, `"broken"`},
		{"Empty group", "app:", execUser{}, nil, "empty group"},
		{"Empty user", ":app", execUser{}, nil, "no user"},
		{"Uid out of range", "4294967295", execUser{}, ErrUnknownUser, `"4294967295"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveUser(tt.spec, []byte(testPasswd), []byte(testGroup))
			if tt.errHas != "" || tt.err != nil {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) || (tt.err != nil && !errors.Is(err, tt.err)) {
					t.Fatalf("resolveUser(%q) = %+v, %v; want an error (%v) saying %q", tt.spec, got, err, tt.err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolveUser(%q): %v", tt.spec, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("resolveUser(%q) = %+v, want %+v", tt.spec, got, tt.want)
			}
		})
	}
}

// TestBundleUserNoFiles: an image with no /etc/passwd or /etc/group runs numeric users and
// root, and names no one.
func TestBundleUserNoFiles(t *testing.T) {
	root := t.TempDir()
	passwd, group, err := readUserDB(root)
	if err != nil || passwd != nil || group != nil {
		t.Fatalf("readUserDB of an empty rootfs: %q, %q, %v", passwd, group, err)
	}
	for spec, want := range map[string]execUser{"": {Home: "/"}, "1000:1000": {1000, 1000, nil, "/"}} {
		if got, err := resolveUser(spec, passwd, group); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("resolveUser(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	if _, err := resolveUser("app", passwd, group); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("resolveUser(app) with no passwd: %v, want ErrUnknownUser", err)
	}
}

// TestBundleUserConfined: the rootfs's /etc/passwd and /etc/group are read inside the rootfs
// whatever their symlinks say: an absolute link, a link up and out, a link through a symlinked
// /etc, all resolve as if the rootfs were /. A device or fifo is refused before it is opened.
func TestBundleUserConfined(t *testing.T) {
	const inside = "inside:x:7:7::/in:/bin/sh\n"
	tests := []struct {
		name  string
		setup func(t *testing.T, root string) // makes etc/passwd somehow
		want  string                          // the passwd read; "" with errHas
		errIs error
	}{
		{"Plain", func(t *testing.T, root string) {
			write(t, root, "etc/passwd", inside)
		}, inside, nil},
		{"SymlinkAbsolute", func(t *testing.T, root string) {
			write(t, root, "usr/lib/passwd", inside)
			link(t, root, "/usr/lib/passwd", "etc/passwd")
		}, inside, nil},
		{"SymlinkToHostPasswd", func(t *testing.T, root string) {
			write(t, root, "etc/real", inside)
			link(t, root, "/etc/real", "etc/passwd")
			link(t, root, "/etc/passwd", "etc/group") // the host's would have root
		}, inside, nil},
		{"SymlinkRelativeUpAndOut", func(t *testing.T, root string) {
			write(t, root, "etc/passwd.real", inside)
			link(t, root, "../../../../../../../etc/passwd.real", "etc/passwd")
		}, inside, nil},
		{"SymlinkedEtcAbsolute", func(t *testing.T, root string) {
			write(t, root, "private/etc/passwd", inside)
			link(t, root, "/private/etc", "etc")
		}, inside, nil},
		{"SymlinkedEtcUpAndOut", func(t *testing.T, root string) {
			write(t, root, "etc2/passwd", inside)
			link(t, root, "../../../../etc2", "etc")
		}, inside, nil},
		{"SymlinkToMissingHostFile", func(t *testing.T, root string) {
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			link(t, root, "/etc/hostname", "etc/passwd") // exists on the host, not in root
		}, "", nil},
		{"Fifo", func(t *testing.T, root string) {
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			if err := unix.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "", disk.ErrNotRegular},
		{"DeviceNeverOpened", func(t *testing.T, root string) {
			if os.Geteuid() != 0 {
				t.Fatal("this case needs root: it makes a device with mknod (CI runs as root)")
			}
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			// A character device (here /dev/null's numbers; a watchdog's would start on open).
			if err := unix.Mknod(filepath.Join(root, "etc/passwd"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))); err != nil {
				t.Fatal(err)
			}
		}, "", disk.ErrNotRegular},
		{"Directory", func(t *testing.T, root string) {
			os.MkdirAll(filepath.Join(root, "etc/passwd"), 0o755)
		}, "", disk.ErrNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "rootfs")
			os.Mkdir(root, 0o755)
			tt.setup(t, root)
			passwd, group, err := readUserDB(root)
			if tt.errIs != nil {
				if !errors.Is(err, tt.errIs) {
					t.Fatalf("readUserDB: %v, want %v", err, tt.errIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("readUserDB: %v", err)
			}
			if string(passwd) != tt.want {
				t.Errorf("passwd read: %q, want %q", passwd, tt.want)
			}
			if strings.Contains(string(group), "root") {
				t.Errorf("group read the host's: %q", group)
			}
		})
	}
}

func write(t *testing.T, root, rel, body string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func link(t *testing.T, root, target, rel string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// FuzzResolveUser: any passwd, group and User resolve or fail without a panic, and a name
// resolved is one the passwd has.
func FuzzResolveUser(f *testing.F) {
	f.Add("app", testPasswd, testGroup)
	f.Add("1000:staff", testPasswd, testGroup)
	f.Add(":", "::::::\n#\n", "a:b:c:d,e,,")
	f.Add("x:4294967295", "x:x:1:1\n", "")
	f.Fuzz(func(t *testing.T, spec, passwd, group string) {
		u, err := resolveUser(spec, []byte(passwd), []byte(group))
		if err != nil {
			return
		}
		name, _, _ := strings.Cut(spec, ":")
		if _, nerr := parseID(name); name != "" && nerr != nil && !strings.Contains(passwd, name) {
			t.Errorf("user %q resolved to %+v, a name passwd does not hold", spec, u)
		}
	})
}
