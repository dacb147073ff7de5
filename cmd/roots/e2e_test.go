package main

// End-to-end tests: the built roots binary, run as a user would, against a
// real Distribution registry on 127.0.0.1 with images the tests build.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

var rootsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "roots-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rootsBin = filepath.Join(dir, "roots")
	build := exec.Command("go", "build", "-o", rootsBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build roots:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	stdout, stderr string
	code           int
}

// runDeadline bounds every run of the binary in these tests: no command may block forever.
const runDeadline = 3 * time.Minute

// runRoots runs the binary with args and a clean environment plus env, under runDeadline.
func runRoots(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return rootsLimit(t, runDeadline, env, args...)
}

// rootsLimit is runRoots with a deadline of its own. A run past it gets SIGQUIT, so that the Go
// runtime prints every goroutine's stack on its stderr, and fails the test with that dump.
func rootsLimit(t *testing.T, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	return rootsIn(t, "", limit, env, args...)
}

// rootsIn is rootsLimit run in the directory dir ("": the test's).
func rootsIn(t *testing.T, dir string, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(rootsBin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "ROOTS_TEST_BACKOFF=10ms"}, env...)
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
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// mustPull runs roots pull and fails the test unless it succeeds silently.
func mustPull(t *testing.T, env []string, args ...string) {
	t.Helper()
	r := runRoots(t, env, append([]string{"pull"}, args...)...)
	if r.code != 0 {
		t.Fatalf("roots pull %v: exit %d: %s", args, r.code, r.stderr)
	}
	if r.stdout != "" || r.stderr != "" {
		t.Fatalf("roots pull %v printed when not on a terminal:\nstdout: %s\nstderr: %s", args, r.stdout, r.stderr)
	}
}

// entry is one file of a root filesystem as the tests compare it; file, dir and link build
// expected ones.
type entry = testtree.Entry

var (
	file = testtree.File
	dir  = testtree.Dir
	link = testtree.Symlink
)

// scan reads every entry under dir, keyed by slash path relative to dir.
func scan(t testing.TB, dir string) map[string]entry { return testtree.Scan(t, dir) }

// sameTree fails the test unless got has exactly the want entries: type, mode, owner, content,
// link target.
func sameTree(t testing.TB, got, want map[string]entry) {
	t.Helper()
	if diffs := testtree.Diff(want, got, testtree.Only(testtree.Basic...)); len(diffs) > 0 {
		t.Fatalf("destination differs:\n%s", strings.Join(diffs, "\n"))
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (owners, chroot); CI runs as root")
	}
}

// reg is a shorthand for a registrytest entry.
type reg = registrytest.Entry

// assertCleanFailure checks a pull that must fail: exit 1, one "roots: " line
// on stderr holding want, nothing on stdout, no DEST and no staging directory.
func assertCleanFailure(t *testing.T, res result, want, dest string) {
	t.Helper()
	if res.code != 1 || !strings.HasPrefix(res.stderr, "roots: ") || strings.Count(res.stderr, "\n") != 1 ||
		!strings.Contains(res.stderr, want) {
		t.Errorf("pull: exit %d, stderr %q; want exit 1 and one line \"roots: ...%s...\"", res.code, res.stderr, want)
	}
	if res.stdout != "" {
		t.Errorf("a failed pull printed on stdout: %q", res.stdout)
	}
	if _, err := os.Lstat(dest); !os.IsNotExist(err) {
		t.Errorf("a failed pull left DEST %s (%v)", dest, err)
	}
	assertNoStaging(t, filepath.Dir(dest))
}
