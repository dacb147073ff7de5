package roots

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rootsdev/roots/fetch"
)

// TestBundleProcess: args are Entrypoint + Cmd, Args replacing Cmd; env is the image's, with
// PATH, HOME (and TERM on a terminal) added only where the image sets none; cwd is WorkingDir
// or /.
func TestBundleProcess(t *testing.T) {
	const path = defaultPath
	tests := []struct {
		name     string
		config   ocispec.ImageConfig
		args     []string
		terminal bool
		wantArgs []string
		wantEnv  []string
		wantCwd  string
	}{
		{"Entrypoint and Cmd", ocispec.ImageConfig{Entrypoint: []string{"/bin/app", "-v"}, Cmd: []string{"serve"}},
			nil, false, []string{"/bin/app", "-v", "serve"}, []string{path, "HOME=/h"}, "/"},
		{"Args replace Cmd", ocispec.ImageConfig{Entrypoint: []string{"/bin/app"}, Cmd: []string{"serve"}},
			[]string{"version", "--json"}, false, []string{"/bin/app", "version", "--json"}, []string{path, "HOME=/h"}, "/"},
		{"Cmd alone", ocispec.ImageConfig{Cmd: []string{"/bin/sh", "-c", "echo hi"}, WorkingDir: "/srv"},
			nil, false, []string{"/bin/sh", "-c", "echo hi"}, []string{path, "HOME=/h"}, "/srv"},
		{"Args alone", ocispec.ImageConfig{}, []string{"/bin/true"}, false, []string{"/bin/true"}, []string{path, "HOME=/h"}, "/"},
		{"Image PATH and HOME kept", ocispec.ImageConfig{Cmd: []string{"x"}, Env: []string{"PATH=/opt/bin", "A=1", "HOME=/data"}},
			nil, false, []string{"x"}, []string{"PATH=/opt/bin", "A=1", "HOME=/data"}, "/"},
		{"Terminal adds TERM", ocispec.ImageConfig{Cmd: []string{"x"}, Env: []string{"A=1"}},
			nil, true, []string{"x"}, []string{"A=1", path, "HOME=/h", "TERM=xterm"}, "/"},
		{"Image TERM kept", ocispec.ImageConfig{Cmd: []string{"x"}, Env: []string{"TERM=vt100"}},
			nil, true, []string{"x"}, []string{"TERM=vt100", path, "HOME=/h"}, "/"},
		{"PATHX is not PATH", ocispec.ImageConfig{Cmd: []string{"x"}, Env: []string{"PATHX=1"}},
			nil, false, []string{"x"}, []string{"PATHX=1", path, "HOME=/h"}, "/"},
	}
	ref, _ := fetch.ParseReference("example.com/team/my_app:1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, _ := json.Marshal(ocispec.Image{Config: tt.config})
			is, err := newImageSpec(ref, raw, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			s := is.spec(ref, execUser{UID: 5, GID: 6, Groups: []uint32{7}, Home: "/h"}, BundleOptions{Terminal: tt.terminal})
			p := s.Process
			if !reflect.DeepEqual(p.Args, tt.wantArgs) || !reflect.DeepEqual(p.Env, tt.wantEnv) || p.Cwd != tt.wantCwd || p.Terminal != tt.terminal {
				t.Errorf("process: args %q env %q cwd %q terminal %v; want %q %q %q %v", p.Args, p.Env, p.Cwd, p.Terminal, tt.wantArgs, tt.wantEnv, tt.wantCwd, tt.terminal)
			}
			if want := (specs.User{UID: 5, GID: 6, AdditionalGids: []uint32{7}}); !reflect.DeepEqual(p.User, want) {
				t.Errorf("user %+v, want %+v", p.User, want)
			}
			if s.Hostname != "my-app" {
				t.Errorf("hostname %q, want my-app", s.Hostname)
			}
		})
	}
}

// TestBundleNoCommand: neither Entrypoint nor Cmd nor args is ErrNoCommand naming the image.
func TestBundleNoCommand(t *testing.T) {
	ref, _ := fetch.ParseReference("example.com/empty:1")
	raw, _ := json.Marshal(ocispec.Image{Config: ocispec.ImageConfig{Env: []string{"A=1"}}})
	_, err := newImageSpec(ref, raw, nil)
	if !errors.Is(err, ErrNoCommand) || !strings.Contains(err.Error(), "example.com/empty:1") {
		t.Fatalf("newImageSpec of an image with no command: %v, want ErrNoCommand naming it", err)
	}
}

// TestBundleAnnotationsAndHostname: labels under their own keys, StopSignal under the OCI key;
// the hostname is the repository's last part, made a host name.
func TestBundleAnnotationsAndHostname(t *testing.T) {
	got := bundleAnnotations(ocispec.ImageConfig{Labels: map[string]string{"org.example.a": "1", "b": ""}, StopSignal: "SIGINT"})
	want := map[string]string{"org.example.a": "1", "b": "", "org.opencontainers.image.stopSignal": "SIGINT"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("annotations %v, want %v", got, want)
	}
	if a := bundleAnnotations(ocispec.ImageConfig{}); a != nil {
		t.Errorf("annotations of a bare image: %v, want none", a)
	}
	for ref, want := range map[string]string{
		"debian:12": "debian", "ghcr.io/o/My.App_2": "my-app-2", "h:5000/a/__": "runc",
		"x/" + strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		r, err := fetch.ParseReference(ref)
		if err != nil {
			continue // a name the reference grammar refuses never reaches a bundle
		}
		if got := bundleHostname(r); got != want {
			t.Errorf("hostname of %s: %q, want %q", ref, got, want)
		}
	}
}

// TestBundleSpecIsRuncSpec: with the process as runc spec's, the config is what runc spec
// writes, and with Rootless what runc spec --rootless writes (as root: the caller is uid 0).
func TestBundleSpecIsRuncSpec(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatal("runc is needed to compare with what runc spec writes: apt-get install runc (as .ci/run does)")
	}
	for _, rootless := range []bool{false, true} {
		dir := t.TempDir()
		args := []string{"spec", "--bundle", dir}
		if rootless {
			args = append(args, "--rootless")
		}
		if out, err := exec.Command("runc", args...).CombinedOutput(); err != nil {
			t.Fatalf("runc %v: %v\n%s", args, err, out)
		}
		var want specs.Spec
		if err := json.Unmarshal(readFile(t, dir+"/config.json"), &want); err != nil {
			t.Fatal(err)
		}
		ref, _ := fetch.ParseReference("runc")
		raw, _ := json.Marshal(ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{defaultPath, "TERM=xterm", "HOME=/root"}}})
		is, err := newImageSpec(ref, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := is.spec(ref, execUser{Home: "/root"}, BundleOptions{Terminal: true, Rootless: rootless})
		got.Process.Env = got.Process.Env[:2] // runc spec sets no HOME
		if rootless && (want.Linux.UIDMappings[0].HostID != got.Linux.UIDMappings[0].HostID) {
			t.Fatal("runc spec --rootless maps the caller: this comparison needs root, where both map uid 0 (CI runs as root)")
		}
		if !reflect.DeepEqual(*got, want) {
			g, _ := json.MarshalIndent(got, "", " ")
			w, _ := json.MarshalIndent(want, "", " ")
			t.Errorf("rootless %v: config differs from runc spec's:\ngot  %s\nwant %s", rootless, g, w)
		}
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
