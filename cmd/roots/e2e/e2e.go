// Package e2e runs the roots binary as a user would, against a real Distribution registry on
// 127.0.0.1 (fetch/registrytest) with images the tests build. It holds the harness (the
// binary, runs under a deadline, the checks every suite makes) and the suites of the command
// line; e2e/attack and e2e/fidelity hold the hostile and the fidelity tables. Imported by tests
// only.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

var bin string

// Main builds the roots binary for the tests of a package, runs them and exits; a package's
// TestMain calls it.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "roots-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "roots")
	build := exec.Command("go", "build", "-o", bin, "github.com/rootsdev/roots/cmd/roots")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build roots:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Bin is the path of the roots binary Main built.
func Bin() string { return bin }

// Result is what one run of the binary did.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Deadline bounds every run of the binary in these tests: no command may block forever.
const Deadline = 3 * time.Minute

// Env is the clean environment of a run: PATH, a HOME of the test's, short retry backoffs, and
// an empty hosts.toml directory and registries.conf.
func Env(t testing.TB) []string {
	// Mirror configuration is the test's own, never the machine's /etc (a test sets its own).
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "ROOTS_TEST_BACKOFF=10ms",
		"ROOTS_HOSTS_DIR=" + t.TempDir(), "CONTAINERS_REGISTRIES_CONF=" + os.DevNull}
}

// Roots runs the binary with args and a clean environment plus env, under Deadline.
func Roots(t testing.TB, env []string, args ...string) Result {
	t.Helper()
	return RootsLimit(t, Deadline, env, args...)
}

// RootsLimit is Roots with a deadline of its own. A run past it gets SIGQUIT, so that the Go
// runtime prints every goroutine's stack on its stderr, and fails the test with that dump.
func RootsLimit(t testing.TB, limit time.Duration, env []string, args ...string) Result {
	t.Helper()
	return RootsIn(t, "", limit, env, args...)
}

// RootsIn is RootsLimit run in the directory dir ("": the test's).
func RootsIn(t testing.TB, dir string, limit time.Duration, env []string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(Env(t), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		t.Fatalf("roots %v did not finish within %v; its goroutines:\n%s", args, limit, errb.String())
	}
	return Result{out.String(), errb.String(), ExitCode(t, err)}
}

// ExitCode is the exit status of a command that ended with err; anything but an exit fails t.
func ExitCode(t testing.TB, err error) int {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0
}

// MustPull runs roots pull and fails the test unless it succeeds silently.
func MustPull(t testing.TB, env []string, args ...string) {
	t.Helper()
	r := Roots(t, env, append([]string{"pull"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("roots pull %v: exit %d: %s", args, r.Code, r.Stderr)
	}
	if r.Stdout != "" || r.Stderr != "" {
		t.Fatalf("roots pull %v printed when not on a terminal:\nstdout: %s\nstderr: %s", args, r.Stdout, r.Stderr)
	}
}

// NeedRoot fails a test that needs root when it is not.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (owners, chroot); CI runs as root")
	}
}
