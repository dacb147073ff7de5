package e2e

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// gitOut runs git in dir and returns its output without the final newline.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "safe.directory=*"}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// TestPullGit: roots pull -g makes DEST a plain pull's rootfs plus a .git with a branch per
// layer, the top one checked out and clean; -g with --mode overlay is a usage error, and with
// no git to run the pull fails on one line and leaves nothing.
func TestPullGit(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	pushed := r.Push(t, "git/three", "1", registrytest.Image{Layers: []registrytest.Layer{
		{Entries: []reg{{Name: "./", Type: tar.TypeDir}, {Name: "etc/", Type: tar.TypeDir}, {Name: "etc/a", Body: []byte("a")},
			{Name: "etc/gone", Body: []byte("gone")}, {Name: "empty/", Type: tar.TypeDir}}},
		{Entries: []reg{{Name: "etc/.wh.gone"}, {Name: "etc/a", Body: []byte("a2")}, {Name: "etc/fifo", Type: tar.TypeFifo},
			{Name: "etc/link", Type: tar.TypeSymlink, Linkname: "a"}}},
		{Entries: []reg{{Name: "etc/b", Mode: 0o755, Body: []byte("b")}, {Name: "etc/null", Type: tar.TypeChar, Devmajor: 1, Devminor: 3}}},
	}})
	ref := r.Host + "/git/three:1"
	tmp := t.TempDir()
	cache := "--cache=" + filepath.Join(tmp, "cache")
	plain, dest := filepath.Join(tmp, "plain"), filepath.Join(tmp, "git")
	MustPull(t, nil, cache, ref, plain)
	MustPull(t, nil, cache, "-g", ref, dest)

	var want []string
	for i, l := range pushed.Layers {
		want = append(want, fmt.Sprintf("layer_%d_%s", i, l.Digest.Encoded()))
	}
	if got := gitOut(t, dest, "for-each-ref", "--format=%(refname:short)", "refs/heads/"); got != strings.Join(want, "\n") {
		t.Errorf("branches:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if head := gitOut(t, dest, "symbolic-ref", "HEAD"); head != "refs/heads/"+want[2] {
		t.Errorf("HEAD %s, want %s", head, want[2])
	}
	if st := gitOut(t, dest, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("git status:\n%s", st)
	}
	if d := gitOut(t, dest, "diff", "--name-status", want[0], want[1]); d != "M\tetc/a\nD\tetc/gone\nA\tetc/link" {
		t.Errorf("layer 1 changes:\n%s", d)
	}
	if n := gitOut(t, dest, "rev-list", "--count", want[2]); n != "3" {
		t.Errorf("%s has %s commits, want 3", want[2], n)
	}
	noGit := testtree.Skip(func(rel string) bool { return rel == ".git" })
	SameFS(t, "plain and -g pulls", testtree.Scan(t, plain, testtree.WithRoot()), testtree.Scan(t, dest, testtree.WithRoot(), noGit), time.Now().AddDate(100, 0, 0)) // every mtime counts

	t.Run("Overlay", func(t *testing.T) {
		d := filepath.Join(tmp, "overlay")
		res := Roots(t, []string{"HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1"}, "pull", cache, "-g", "--mode", "overlay", ref, d)
		if res.Code != 2 || !strings.Contains(res.Stderr, "--git with --mode overlay") || strings.Count(res.Stderr, "\n") != 1 {
			t.Errorf("exit %d, stderr %q; want 2 and one usage line", res.Code, res.Stderr)
		}
		if _, err := os.Lstat(d); !os.IsNotExist(err) {
			t.Error("a usage error made DEST")
		}
	})
	t.Run("NoGit", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), "d")
		res := Roots(t, []string{"PATH=" + t.TempDir()}, "pull", cache, "-g", ref, d)
		AssertCleanFailure(t, res, "git is not installed", d)
		if !strings.Contains(res.Stderr, "apt-get install git") {
			t.Errorf("no hint to install git: %q", res.Stderr)
		}
	})
}
