package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestProgressOnTerminal runs roots under script(1), which gives it a
// terminal: progress per layer and a summary line appear (naming the mode,
// or "no cache"), and --quiet silences them.
func TestProgressOnTerminal(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	pushed := r.Push(t, "img", "latest", smallImage("tty"))
	for _, tt := range []struct {
		quiet bool
		cache string
		how   string // what the summary says of the mode
	}{{false, t.TempDir(), "(hardlink)"}, {false, "no", "(no cache)"}, {true, t.TempDir(), ""}} {
		quiet := tt.quiet
		dest := filepath.Join(t.TempDir(), "rootfs")
		args := Bin() + " pull --cache=" + tt.cache + " " + r.Host + "/img " + dest
		if quiet {
			args += " --quiet"
		}
		out, err := exec.Command("script", "-qec", args, "/dev/null").CombinedOutput()
		if err != nil {
			t.Fatalf("script -c %q: %v\n%s", args, err, out)
		}
		text := string(out)
		if quiet {
			if strings.TrimSpace(text) != "" {
				t.Fatalf("--quiet printed %q", text)
			}
			continue
		}
		if !strings.Contains(text, "pulled "+r.Host+"/img:latest@"+pushed.Digest.String()) || !strings.Contains(text, tt.how+": 2 layers") {
			t.Fatalf("no summary line in %q", text)
		}
		if !strings.Contains(text, pushed.Layers[0].Digest.Encoded()[:12]) {
			t.Fatalf("no per-layer progress in %q", text)
		}
	}
}

// TestInterruptLeavesNothing sends SIGINT to a pull that is slowly
// downloading: it stops with exit 130 and "roots: interrupted" (as a shell
// reports ^C), and leaves no DEST and no staging directory, and the cache
// keeps no partial blob.
func TestInterruptLeavesNothing(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "img", "latest", smallImage("slow"))
	host := r.FaultProxy(t, registrytest.Fault{Kind: registrytest.Slow, Delay: time.Second})
	for _, cache := range []string{t.TempDir(), "no"} {
		parent := t.TempDir()
		dest := filepath.Join(parent, "rootfs")
		cmd := exec.Command(Bin(), "pull", "--cache", cache, host+"/img", dest)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the staging directory exists: the pull is under way.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if ents, _ := os.ReadDir(parent); len(ents) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the pull never started")
			}
		}
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if err == nil {
			t.Fatalf("an interrupted pull succeeded")
		}
		if code := cmd.ProcessState.ExitCode(); code != 130 || stderr.String() != "roots: interrupted\n" {
			t.Fatalf("exit %d, stderr %q: want 130 and \"roots: interrupted\"", code, stderr.String())
		}
		AssertNoStaging(t, parent)
		if _, err := os.Lstat(dest); !os.IsNotExist(err) {
			t.Fatal("an interrupted pull left DEST")
		}
		if cache != "no" {
			if ents, _ := os.ReadDir(filepath.Join(cache, "blobs", "sha256")); len(ents) > 2 { // the manifest and config are complete and may stay
				t.Fatalf("the cache kept %d blobs from an interrupted pull", len(ents))
			}
			ents, _ := os.ReadDir(filepath.Join(cache, "tmp"))
			for _, e := range ents {
				if !strings.HasSuffix(e.Name(), ".lock") {
					t.Errorf("left in tmp/: %s", e.Name())
				}
			}
		}
	}
}
