package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestOffline runs the binary with the registry stopped and a listener on its port: pull
// (hardlink and overlay), digest and inspect with --offline or ROOTS_OFFLINE=1 answer from the
// cache; what the cache lacks or holds corrupt exits 1 with one line naming the image and the
// digest and the hint, and leaves no DEST; --cache=no and a ROOTS_OFFLINE that is neither 1
// nor 0 are usage errors (exit 2). On a terminal, stderr says how old the tag's record is.
// bundle works offline as pull does. Nothing connects to the registry's port.
func TestOffline(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	h := r.Host
	app := r.Push(t, "app", "1", smallImage("offline"))
	other := "s390x"
	if runtime.GOARCH == other {
		other = "riscv64"
	}
	host, second := smallImage("host"), smallImage("other")
	host.OS, host.Arch, second.OS, second.Arch = "linux", runtime.GOARCH, "linux", other
	multi := r.PushIndex(t, "multi", "1", registrytest.OCI, host, second)
	cache, corrupt := filepath.Join(t.TempDir(), "cache"), filepath.Join(t.TempDir(), "corrupt")
	for _, c := range []string{cache, corrupt} {
		MustPull(t, nil, "--cache", c, h+"/app:1", filepath.Join(t.TempDir(), "app"))
		MustPull(t, nil, "--cache", c, h+"/multi:1", filepath.Join(t.TempDir(), "multi"))
	}
	config := digest.FromBytes(app.Config)
	if err := os.WriteFile(filepath.Join(corrupt, "blobs", "sha256", config.Encoded()), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	ln := registrytest.Listen(t, h)

	hint := ": run it without --offline (and ROOTS_OFFLINE) to fetch it\n"
	onEnv := []string{"ROOTS_OFFLINE=1", "ROOTS_CACHE=" + cache}
	tests := []struct {
		name   string
		env    []string
		args   []string // DEST, where there is one, is added
		dest   bool
		code   int
		stdout string // exactly, unless it is ""
		stderr string // exactly
	}{
		{"Pull", nil, []string{"pull", "--offline", "--cache", cache, h + "/app:1"}, true, 0, "", ""},
		{"PullEnv", onEnv, []string{"pull", h + "/app:1"}, true, 0, "", ""},
		{"PullEnvOverlay", onEnv, []string{"pull", "--mode", "overlay", h + "/multi:1"}, true, 0, "", ""},
		{"Digest", nil, []string{"digest", "--offline", "--cache", cache, h + "/app:1"}, false, 0, app.Digest.String() + "\n", ""},
		{"DigestEnvIndex", onEnv, []string{"digest", h + "/multi:1"}, false, 0, multi.Digest.String() + "\n", ""},
		{"DigestEnvPlatform", onEnv, []string{"digest", "--platform", "linux/" + runtime.GOARCH, h + "/multi:1"}, false, 0, multi.Manifests[0].Digest.String() + "\n", ""},
		{"InspectEnvRaw", onEnv, []string{"inspect", "--raw", h + "/multi:1"}, false, 0, string(multi.Manifest), ""},

		{"PullNeverPulled", onEnv, []string{"pull", h + "/app:2"}, true, 1, "",
			"roots: pull " + h + "/app:2: offline: the cache has no record of " + h + "/app:2" + hint},
		{"DigestNeverPulled", nil, []string{"digest", "--offline", "--cache", cache, h + "/app@" + digest.FromString("x").String()}, false, 1, "",
			"roots: digest " + h + "/app@" + digest.FromString("x").String() + ": offline: manifest " + digest.FromString("x").String() + ": not in the cache" + hint},
		{"InspectPlatformNeverPulled", onEnv, []string{"inspect", "--platform", "linux/arm/v5", h + "/multi:1"}, false, 1, "",
			"roots: inspect " + h + "/multi:1: offline: the cache has no linux/arm/v5 image of " + h + "/multi:1 (records of linux/" + runtime.GOARCH +
				"; no linux/arm/v5 image in index " + multi.Digest.String() + "; it has linux/" + runtime.GOARCH + ", linux/" + other + ")" + hint},
		{"PullCorruptConfig", []string{"ROOTS_OFFLINE=1"}, []string{"pull", "--cache", corrupt, h + "/app:1"}, true, 1, "",
			"roots: pull " + h + "/app:1: offline: config " + config.String() + " of " + app.Digest.String() + ": the cached content is not what the manifest says" + hint},

		{"NoCache", nil, []string{"pull", "--offline", "--cache=no", h + "/app:1"}, true, 2, "",
			"roots: --offline (or ROOTS_OFFLINE=1) with --cache=no: offline, the cache is all there is to read; drop --cache=no (see roots pull --help)\n"},
		{"EnvTrue", []string{"ROOTS_OFFLINE=true"}, []string{"digest", "--cache", cache, h + "/app:1"}, false, 2, "",
			"roots: ROOTS_OFFLINE=true: write 1 to run offline, 0 (or leave it unset) to run online (see roots digest --help)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "rootfs")
			args := tt.args
			if tt.dest {
				args = append(append([]string{}, args...), dest)
			}
			res := Roots(t, tt.env, args...)
			if res.Code != tt.code || res.Stderr != tt.stderr || tt.stdout != "" && res.Stdout != tt.stdout {
				t.Fatalf("roots %v: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q", args, res.Code, res.Stdout, res.Stderr, tt.code, tt.stdout, tt.stderr)
			}
			if !tt.dest {
				return
			}
			if tt.code == 0 {
				if _, err := os.Stat(filepath.Join(dest, "a", "file")); err != nil {
					t.Errorf("DEST: %v", err)
				}
				if strings.Contains(strings.Join(args, " "), "overlay") {
					if res := Roots(t, nil, "umount", dest); res.Code != 0 {
						t.Errorf("umount: %s", res.Stderr)
					}
				}
			} else if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("a refused pull left %v", ents)
			}
		})
	}
	t.Run("Bundle", func(t *testing.T) {
		for _, env := range [][]string{nil, onEnv} {
			args := []string{"bundle", "--cache", cache}
			if env == nil {
				args = append(args, "--offline")
			}
			dir := filepath.Join(t.TempDir(), "bundle")
			res := Roots(t, env, append(args, h+"/app:1", dir, "--", "/bin/app")...)
			if res.Code != 0 {
				t.Fatalf("roots %v: exit %d: %s", args, res.Code, res.Stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "rootfs", "a", "file")); err != nil {
				t.Errorf("roots %v: %v", args, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
				t.Errorf("roots %v: %v", args, err)
			}
		}
		res := Roots(t, onEnv, "bundle", h+"/app:2", filepath.Join(t.TempDir(), "b2"), "--", "/bin/app")
		if want := "roots: pull " + h + "/app:2: offline: the cache has no record of " + h + "/app:2" + hint; res.Code != 1 || res.Stderr != want {
			t.Errorf("bundle of a tag never pulled: exit %d, %q; want 1, %q", res.Code, res.Stderr, want)
		}
	})
	t.Run("Terminal", func(t *testing.T) {
		for _, args := range []string{
			"digest --offline --cache " + cache + " " + h + "/app:1",
			"inspect --offline --cache " + cache + " " + h + "/app:1",
			"pull --offline --cache " + cache + " " + h + "/app:1 " + filepath.Join(t.TempDir(), "rootfs"),
		} {
			out, err := exec.Command("script", "-qec", Bin()+" "+args, "/dev/null").CombinedOutput()
			if err != nil {
				t.Fatalf("script -c %q: %v\n%s", args, err, out)
			}
			if want := "using the cache's record of " + h + "/app:1, made just now (offline)"; !strings.Contains(string(out), want) {
				t.Errorf("roots %s on a terminal: %q, want it to say %q", args, out, want)
			}
		}
	})
	if n := ln.Connections(); n != 0 {
		t.Errorf("offline runs made %d connections to the registry's port, want none", n)
	}
}
