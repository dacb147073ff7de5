package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootsdev/roots/internal/testtree"
)

// SameTree fails the test unless got has exactly the want entries: type, mode, owner, content,
// link target (testtree.Basic).
func SameTree(t testing.TB, got, want map[string]testtree.Entry) {
	t.Helper()
	if diffs := testtree.Diff(want, got, testtree.Only(testtree.Basic...)); len(diffs) > 0 {
		t.Fatalf("destination differs:\n%s", strings.Join(diffs, "\n"))
	}
}

// SameFS fails unless two rootfs scans agree on everything an image defines (testtree.Image):
// mtimes of directories too, unless both sides have one at or after since (an implicit
// directory's time is when it was made).
func SameFS(t testing.TB, what string, a, b map[string]testtree.Entry, since time.Time) {
	t.Helper()
	if diffs := testtree.Diff(a, b, testtree.DirMtimesFrom(since)); len(diffs) > 0 {
		t.Errorf("%s differ (want the first):\n%s", what, strings.Join(diffs, "\n"))
	}
}

// AssertCleanFailure checks a pull that must fail: exit 1, one "roots: " line on stderr
// holding want, nothing on stdout, no DEST and no staging directory.
func AssertCleanFailure(t testing.TB, res Result, want, dest string) {
	t.Helper()
	if res.Code != 1 || !strings.HasPrefix(res.Stderr, "roots: ") || strings.Count(res.Stderr, "\n") != 1 ||
		!strings.Contains(res.Stderr, want) {
		t.Errorf("pull: exit %d, stderr %q; want exit 1 and one line \"roots: ...%s...\"", res.Code, res.Stderr, want)
	}
	if res.Stdout != "" {
		t.Errorf("a failed pull printed on stdout: %q", res.Stdout)
	}
	if _, err := os.Lstat(dest); !os.IsNotExist(err) {
		t.Errorf("a failed pull left DEST %s (%v)", dest, err)
	}
	AssertNoStaging(t, filepath.Dir(dest))
}

// AssertNoStaging fails if a staging directory was left in parent.
func AssertNoStaging(t testing.TB, parent string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind in %s: %s", parent, e.Name())
		}
	}
}

// SameInode reports whether a and b are one file.
func SameInode(t testing.TB, a, b string) bool {
	t.Helper()
	var sa, sb syscall.Stat_t
	if err := syscall.Lstat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Lstat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Ino == sb.Ino && sa.Dev == sb.Dev
}

// Unchanged fails the test unless two scans of what a pull must not touch are identical, inodes
// and change times included (testtree.All).
func Unchanged(t testing.TB, before, after map[string]testtree.Entry) {
	t.Helper()
	if diffs := testtree.Diff(before, after, testtree.Only(testtree.All...)); len(diffs) > 0 {
		t.Errorf("OUTSIDE DEST AND THE CACHE CHANGED (want = before):\n%s", strings.Join(diffs, "\n"))
	}
}
