package e2e

// Bundles, end to end: roots bundle (and pull --bundle) makes a directory that Debian's runc
// runs as it is, and the container prints what the image config says: args, env, uid/gid and
// groups from the image's own passwd and group, cwd.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// showSource prints what a container process sees, one fact a line.
const showSource = `package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	wd, _ := os.Getwd()
	groups, _ := os.Getgroups()
	fmt.Printf("args=%s\n", strings.Join(os.Args, " "))
	for _, e := range os.Environ() {
		fmt.Printf("env=%s\n", e)
	}
	fmt.Printf("uid=%d gid=%d groups=%v\n", os.Getuid(), os.Getgid(), groups)
	fmt.Printf("cwd=%s\n", wd)
	h, _ := os.Hostname()
	fmt.Printf("hostname=%s\n", h)
}
`

var (
	showOnce sync.Once
	showBody []byte
	showErr  error
)

// showBinary is showSource built static (CGO_ENABLED=0), once per test binary.
func showBinary(t *testing.T) []byte {
	t.Helper()
	showOnce.Do(func() {
		dir, err := os.MkdirTemp("", "roots-show-")
		if err != nil {
			showErr = err
			return
		}
		defer os.RemoveAll(dir)
		src, out := filepath.Join(dir, "show.go"), filepath.Join(dir, "show")
		if err := os.WriteFile(src, []byte(showSource), 0o644); err != nil {
			showErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		build := exec.CommandContext(ctx, "go", "build", "-o", out, src)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := build.CombinedOutput(); err != nil {
			showErr = fmt.Errorf("build static binary: %v\n%s", err, b)
			return
		}
		showBody, showErr = os.ReadFile(out)
	})
	if showErr != nil {
		t.Fatal(showErr)
	}
	return showBody
}

// showImage is an image whose only program is show, with its own passwd and group, and config.
func showImage(t *testing.T, config map[string]any) registrytest.Image {
	return registrytest.Image{
		Layers: []registrytest.Layer{{Entries: []reg{
			{Name: "bin/", Type: tar.TypeDir},
			{Name: "bin/show", Body: showBinary(t), Mode: 0o755},
			{Name: "etc/", Type: tar.TypeDir},
			{Name: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\nappuser:x:1234:2345:app:/home/app:/bin/sh\n")},
			{Name: "etc/group", Body: []byte("root:x:0:\nappgroup:x:2345:\nstaff:x:3456:appuser\nother:x:4567:root\n")},
			{Name: "srv/work/", Type: tar.TypeDir, Mode: 0o777},
			{Name: "home/app/", Type: tar.TypeDir, Uid: 1234, Gid: 2345},
		}}},
		Config: map[string]any{"config": config},
	}
}

// appConfig sets every field of an image config that a bundle uses.
var appConfig = map[string]any{
	"Entrypoint": []string{"/bin/show", "from-entrypoint"},
	"Cmd":        []string{"from-cmd", "two"},
	"Env":        []string{"GREETING=hello world", "PATH=/bin"},
	"WorkingDir": "/srv/work",
	"User":       "appuser",
	"Labels":     map[string]string{"org.example.team": "roots"},
	"StopSignal": "SIGINT",
}

// runcRun runs the bundle dir under runc with a state directory of the test's, under a deadline,
// and returns its stdout; the container is deleted in cleanup whatever happens.
func runcRun(t *testing.T, dir string, as []string) string {
	t.Helper()
	testtree.MountinfoLock(t, false) // not beside a mount whose mountinfo line runc 1.1 cannot read
	state, err := os.MkdirTemp("", "roots-runc-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(state, 0o777)
	id := fmt.Sprintf("roots-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())
	runc := func(ctx context.Context, args ...string) *exec.Cmd {
		all := append(append(append([]string(nil), as...), "runc", "--root", state), args...)
		cmd := exec.CommandContext(ctx, all[0], all[1:]...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "XDG_RUNTIME_DIR=" + state}
		return cmd
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		runc(ctx, "delete", "--force", id).Run() // gone already after a run that ended
		os.RemoveAll(state)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := runc(ctx, "run", "--bundle", dir, id)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run -b %s: %v\nstdout: %s\nstderr: %s", dir, err, out.String(), errb.String())
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if b, err := runc(ctx2, "delete", id).CombinedOutput(); err != nil && !strings.Contains(string(b), "does not exist") {
		t.Errorf("runc delete %s: %v: %s", id, err, b)
	}
	return out.String()
}

// wantLines fails unless out has every line of want.
func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	lines := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		lines[l] = true
	}
	for _, w := range want {
		if !lines[w] {
			t.Errorf("the container did not print %q; it printed:\n%s", w, out)
		}
	}
}

// mustBundle runs roots with args and fails unless it succeeds silently.
func mustBundle(t *testing.T, env []string, args ...string) {
	t.Helper()
	res := Roots(t, env, args...)
	if res.Code != 0 || res.Stdout != "" || res.Stderr != "" {
		t.Fatalf("roots %v: exit %d\nstdout: %s\nstderr: %s", args, res.Code, res.Stdout, res.Stderr)
	}
}

func readSpec(t *testing.T, dir string) specs.Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	return s
}

// TestBundleRunc: a bundle of every mode runs under runc and prints what the image says, the
// user from the image's own passwd and group; ARGS after -- replace Cmd.
func TestBundleRunc(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "app", "1", showImage(t, appConfig))
	ref := r.Host + "/app:1"
	common := []string{
		"uid=1234 gid=2345 groups=[3456]", "cwd=/srv/work", "hostname=app",
		"env=GREETING=hello world", "env=PATH=/bin", "env=HOME=/home/app",
	}
	tests := []struct {
		name string
		args []string // roots
		want []string
	}{
		{"hardlink", []string{"bundle", "--mode", "hardlink", ref}, []string{"args=/bin/show from-entrypoint from-cmd two"}},
		{"copy", []string{"bundle", "--mode", "copy", ref}, []string{"args=/bin/show from-entrypoint from-cmd two"}},
		{"overlay", []string{"bundle", "--mode", "overlay", ref}, []string{"args=/bin/show from-entrypoint from-cmd two"}},
		{"nocache", []string{"bundle", "--cache=no", ref}, []string{"args=/bin/show from-entrypoint from-cmd two"}},
		{"pull --bundle", []string{"pull", "--bundle", ref}, []string{"args=/bin/show from-entrypoint from-cmd two"}},
		{"args replace cmd", []string{"bundle", ref}, []string{"args=/bin/show from-entrypoint --given -x"}},
	}
	cache := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bundle")
			umountAll(t, filepath.Join(dir, "rootfs"))
			args := append([]string{"--cache", cache}, tt.args[1:]...)
			args = append(append([]string{tt.args[0]}, args...), dir)
			if tt.name == "args replace cmd" {
				args = append(args, "--", "--given", "-x")
			}
			if tt.name == "nocache" {
				args = append([]string{tt.args[0]}, append(tt.args[1:], dir)...)
			}
			mustBundle(t, nil, args...)
			s := readSpec(t, dir)
			if tt.name == "hardlink" {
				b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
				t.Logf("config.json:\n%s", b)
			}
			if s.Version != "1.0.2-dev" || s.Root.Path != "rootfs" || s.Annotations["org.example.team"] != "roots" ||
				s.Annotations["org.opencontainers.image.stopSignal"] != "SIGINT" || s.Process.Terminal {
				t.Errorf("config.json: version %q root %+v annotations %v terminal %v", s.Version, s.Root, s.Annotations, s.Process.Terminal)
			}
			out := runcRun(t, dir, nil)
			t.Logf("runc run printed:\n%s", out)
			wantLines(t, out, append(common, tt.want...)...)
			if tt.name == "overlay" {
				if res := Roots(t, nil, "umount", filepath.Join(dir, "rootfs")); res.Code != 0 {
					t.Errorf("umount: exit %d: %s", res.Code, res.Stderr)
				}
			}
		})
	}
}

// nobody is the unprivileged user the rootless tests run as.
var nobody = []string{"setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"}

// TestBundleRootless: a --rootless bundle made by an unprivileged user (nobody, no cache) runs
// under runc as that user: the user namespace maps nobody to root (runc 1.1 needs root mapped,
// and nobody has no other id), so the image's user cannot be had, which roots says.
func TestBundleRootless(t *testing.T) {
	NeedRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is missing: %v", err)
	}
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "app", "1", showImage(t, appConfig))
	work, err := os.MkdirTemp("", "roots-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			os.RemoveAll(work)
		}
	})
	if err := os.Chmod(work, 0o755); err == nil {
		err = os.Chown(work, 65534, 65534)
	}
	if err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(work, "roots") // the test's binary is in a directory of root's, 0700
	b, err := os.ReadFile(Bin())
	if err == nil {
		err = os.WriteFile(roots, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(work, "bundle")
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, nobody[0], append(nobody[1:], roots, "bundle", "--rootless", "--cache=no", r.Host+"/app:1", dir)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("roots bundle --rootless as nobody: %v\n%s", err, out)
	}
	if want := `roots: warning: a rootless bundle runs as root in its user namespace (you, outside): the image's user "appuser" (1234:2345) cannot be mapped`; !strings.Contains(string(out), want) {
		t.Errorf("roots bundle --rootless printed %q, want the warning %q", out, want)
	}
	s := readSpec(t, dir)
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65534, Size: 1}}
	if !equalJSON(s.Linux.UIDMappings, want) || s.Process.User.AdditionalGids != nil {
		t.Errorf("config.json: uid mappings %+v, additional gids %v; want %+v and none", s.Linux.UIDMappings, s.Process.User.AdditionalGids, want)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			t.Errorf("config.json of a rootless bundle has a network namespace")
		}
	}
	ran := runcRun(t, dir, nobody)
	t.Logf("runc run (as nobody) printed:\n%s", ran)
	wantLines(t, ran, "args=/bin/show from-entrypoint from-cmd two", "uid=0 gid=0 groups=[]", "cwd=/srv/work", "env=HOME=/home/app")
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestBundleForce: an existing DIR is refused without --force; --force makes it a bundle of
// another image (hardlink or overlay, over either), keeping what else DIR holds; a forced
// bundle that fails (a User the image does not have) leaves DIR as it was.
func TestBundleForce(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "app", "1", showImage(t, appConfig))
	r.Push(t, "app", "2", showImage(t, map[string]any{"Entrypoint": []string{"/bin/show", "v2"}, "User": "1234:staff"}))
	r.Push(t, "ghost", "1", showImage(t, map[string]any{"Cmd": []string{"/bin/show"}, "User": "ghost"}))
	cache := t.TempDir()
	dir := filepath.Join(t.TempDir(), "bundle")
	rootfs := filepath.Join(dir, "rootfs")
	umountAll(t, rootfs)
	mustBundle(t, nil, "bundle", "--cache", cache, r.Host+"/app:1", dir)
	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	config, _ := os.ReadFile(filepath.Join(dir, "config.json"))

	res := Roots(t, nil, "bundle", "--cache", cache, r.Host+"/app:2", dir)
	if res.Code != 1 || !strings.Contains(res.Stderr, dir+" exists: use --force to replace it") || strings.Count(res.Stderr, "\n") != 1 {
		t.Errorf("bundle into an existing DIR: exit %d, %q; want exit 1 and one line asking for --force", res.Code, res.Stderr)
	}

	for _, mode := range []string{"overlay", "hardlink", "copy"} {
		mustBundle(t, nil, "bundle", "--force", "--mode", mode, "--cache", cache, r.Host+"/app:2", dir)
		out := runcRun(t, dir, nil)
		wantLines(t, out, "args=/bin/show v2", "uid=1234 gid=3456 groups=[]", "cwd=/")
		if b, err := os.ReadFile(notes); err != nil || string(b) != "mine" {
			t.Errorf("--force %s: DIR's other file: %q, %v; want it kept", mode, b, err)
		}
		config, _ = os.ReadFile(filepath.Join(dir, "config.json"))
		if mode == "overlay" {
			mustBundle(t, nil, "bundle", "--force", "--cache", cache, r.Host+"/app:1", dir) // hardlink over overlay
			wantLines(t, runcRun(t, dir, nil), "args=/bin/show from-entrypoint from-cmd two")
			if isOverlayMount(t, rootfs) {
				t.Errorf("a hardlink bundle forced over an overlay one left the overlay mounted")
			}
		}
	}

	before := scanMeta(t, rootfs)
	res = Roots(t, nil, "bundle", "--force", "--cache", cache, r.Host+"/ghost:1", dir)
	if res.Code != 1 || !strings.Contains(res.Stderr, `no user "ghost" in the image's /etc/passwd`) || strings.Count(res.Stderr, "\n") != 1 {
		t.Errorf("bundle of an image whose user is unknown: exit %d, %q; want exit 1 and one line naming the user", res.Code, res.Stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "config.json")); !bytes.Equal(after, config) {
		t.Errorf("a failed bundle changed config.json")
	}
	sameMeta(t, scanMeta(t, rootfs), before)
	AssertNoStaging(t, dir)
}

// TestBundleNoCommand: an image with neither Entrypoint nor Cmd makes no bundle without ARGS
// (exit 1, one line naming the image and the fix, no DIR), and runs with them; an unknown user
// leaves no DIR either.
func TestBundleNoCommand(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "bare", "1", showImage(t, map[string]any{"Env": []string{"A=1"}}))
	r.Push(t, "ghost", "1", showImage(t, map[string]any{"Cmd": []string{"/bin/show"}, "User": "ghost:staff"}))
	ref := r.Host + "/bare:1"
	for _, mode := range []string{"hardlink", "overlay"} {
		parent := t.TempDir()
		dir := filepath.Join(parent, "bundle")
		umountAll(t, filepath.Join(dir, "rootfs"))
		res := Roots(t, nil, "bundle", "--mode", mode, "--cache", t.TempDir(), ref, dir)
		AssertCleanFailure(t, res, "bundle "+ref+" sets neither Entrypoint nor Cmd, and no command was given: name one after --: roots bundle IMAGE DIR -- COMMAND [ARG...]", dir)
		res = Roots(t, nil, "bundle", "--mode", mode, "--cache", t.TempDir(), r.Host+"/ghost:1", dir)
		AssertCleanFailure(t, res, `user "ghost:staff": no user "ghost" in the image's /etc/passwd`, dir)

		mustBundle(t, nil, "bundle", "--mode", mode, "--cache", t.TempDir(), ref, dir, "--", "/bin/show", "given")
		wantLines(t, runcRun(t, dir, nil), "args=/bin/show given", "env=A=1", "uid=0 gid=0 groups=[4567]",
			"env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "env=HOME=/root", "cwd=/")
		if mode == "overlay" {
			if res := Roots(t, nil, "umount", filepath.Join(dir, "rootfs")); res.Code != 0 {
				t.Errorf("umount: exit %d: %s", res.Code, res.Stderr)
			}
		}
	}
}

// TestBundleFlags: --tty sets process.terminal (and TERM), with roots bundle and pull --bundle;
// --rootless and --tty without --bundle are usage errors of pull.
func TestBundleFlags(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "app", "1", showImage(t, appConfig))
	ref := r.Host + "/app:1"
	for _, cmd := range [][]string{{"bundle", "--tty"}, {"pull", "--bundle", "-t"}} {
		dir := filepath.Join(t.TempDir(), "bundle")
		mustBundle(t, nil, append(cmd, "--cache=no", ref, dir)...)
		s := readSpec(t, dir)
		if !s.Process.Terminal || !slices.Contains(s.Process.Env, "TERM=xterm") {
			t.Errorf("roots %v: terminal %v, env %q; want a terminal and TERM=xterm", cmd, s.Process.Terminal, s.Process.Env)
		}
	}
	for _, flag := range []string{"--tty", "--rootless"} {
		dir := filepath.Join(t.TempDir(), "dest")
		res := Roots(t, nil, "pull", flag, "--cache=no", ref, dir)
		if res.Code != 2 || !strings.Contains(res.Stderr, "add --bundle") {
			t.Errorf("pull %s without --bundle: exit %d, %q; want a usage error", flag, res.Code, res.Stderr)
		}
	}
}
