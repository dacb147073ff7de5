package roots_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// gitImage has three layers that add, change and delete files (by whiteout), turn a file into a
// directory and another into a fifo, change a symlink and an executable bit, hold a device, an
// empty directory, a file git cannot store by name (.git) and names that fast-import must quote.
// Every directory is explicit, the root too, so that a pull gives each the image's mtime.
func gitImage() registrytest.Image {
	type e = registrytest.Entry
	return registrytest.Image{Layers: []registrytest.Layer{
		{Entries: []e{
			{Name: "./", Type: tar.TypeDir},
			{Name: "etc/", Type: tar.TypeDir},
			{Name: "etc/a.conf", Body: []byte("a\n")},
			{Name: "bin/", Type: tar.TypeDir},
			{Name: "data/", Type: tar.TypeDir},
			{Name: "srv/", Type: tar.TypeDir},
			{Name: "bin/tool", Mode: 0o755, Body: []byte("#!/bin/sh\n")},
			{Name: "data/keep", Body: []byte("keep\n")},
			{Name: "data/gone", Body: []byte("gone\n")},
			{Name: "data/x", Body: []byte("a file, then a directory\n")},
			{Name: "empty/", Type: tar.TypeDir, Mode: 0o700},
			{Name: "link", Type: tar.TypeSymlink, Linkname: "etc/a.conf"},
			{Name: "srv/.git", Body: []byte("gitdir: /nowhere\n")},
			{Name: "srv/file", Body: []byte("srv\n")},
		}},
		{Compression: registrytest.Zstd, Entries: []e{
			{Name: "etc/a.conf", Body: []byte("a, changed\n")},
			{Name: "data/.wh.gone"},
			{Name: "dev/", Type: tar.TypeDir},
			{Name: "dev/fifo", Type: tar.TypeFifo, Mode: 0o644},
			{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
			{Name: "secret", Mode: registrytest.ZeroMode, Body: []byte("s\n")},
			{Name: "bin/tool2", Mode: 0o700, Body: []byte("tool2\n")},
			{Name: "odd\nname", Body: []byte("newline\n")},
			{Name: "\"quoted", Body: []byte("quote\n")},
		}},
		{Entries: []e{
			{Name: "data/keep", Type: tar.TypeFifo, Mode: 0o644},
			{Name: "data/x/", Type: tar.TypeDir},
			{Name: "data/x/y", Body: []byte("y\n")},
			{Name: "link", Type: tar.TypeSymlink, Linkname: "bin/tool"},
			{Name: "bin/tool", Mode: 0o644, Body: []byte("#!/bin/sh\n")},
			{Name: "etc/new", Body: []byte("new\n")},
		}},
	}}
}

// git runs git in dir and returns its output without the final newline.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "core.autocrlf=false", "-c", "safe.directory=*"}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v in %s: %v: %s", args, dir, err, errb.String())
	}
	return strings.TrimSuffix(string(out), "\n")
}

// branchNames are the layer branches a git pull of p must make.
func branchNames(p registrytest.Pushed) []string {
	var names []string
	for i, l := range p.Layers {
		names = append(names, fmt.Sprintf("layer_%d_%s", i, l.Digest.Encoded()))
	}
	return names
}

// independentTree applies layers 0..n of p onto a new directory with layer.Applier and returns
// the tree that git add --all --force records for it in a fresh repository.
func independentTree(t *testing.T, p registrytest.Pushed, n int) string {
	t.Helper()
	dir := t.TempDir()
	a, err := layer.NewApplier(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range p.Layers[:n+1] {
		tr, err := layer.Decompress(l.MediaType, bytes.NewReader(p.Blobs[l.Digest]))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Apply(t.Context(), tr); err != nil {
			t.Fatal(err)
		}
		tr.Close()
	}
	if _, err := a.Finish(); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "init", "-q", "--template=")
	git(t, dir, "add", "--all", "--force")
	return git(t, dir, "write-tree")
}

// TestPullGit: a git pull makes one branch per layer, each the previous one plus one commit whose
// tree is what git add records for the rootfs of its layers; HEAD is the top branch with a clean
// status, and DEST is what a plain pull makes, but for .git.
func TestPullGit(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	pushed := testRegistry.Push(t, "example/git", "1", gitImage())
	ref := registry + "/example/git:1"
	plain, dest := filepath.Join(tmp, "plain"), filepath.Join(tmp, "git")
	if _, err := roots.Pull(t.Context(), ref, plain, roots.PullOptions{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	warn := func(e roots.Event) {
		if e.Kind == roots.Warning {
			warnings = append(warnings, e.Message)
		}
	}
	if _, err := roots.Pull(t.Context(), ref, dest, roots.PullOptions{Cache: cache, Git: true, Progress: warn}); err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %q", warnings)
	}
	want := branchNames(pushed)
	got := strings.Split(git(t, dest, "for-each-ref", "--format=%(refname:short)", "refs/heads/"), "\n")
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("branches %q, want %q", got, want)
	}
	for n, b := range want {
		if tree, want := git(t, dest, "rev-parse", b+"^{tree}"), independentTree(t, pushed, n); tree != want {
			t.Errorf("%s: tree %s, want %s (git add of layers 0..%d):\n%s", b, tree, want, n, git(t, dest, "ls-tree", "-r", b))
		}
		parents := strings.Fields(git(t, dest, "rev-list", "--parents", "-n", "1", b))
		wantParents := 1
		if n > 0 {
			wantParents = 2
			if prev := git(t, dest, "rev-parse", want[n-1]); parents[1] != prev {
				t.Errorf("%s: parent %s, want %s (%s)", b, parents[1], prev, want[n-1])
			}
		}
		if len(parents) != wantParents {
			t.Errorf("%s: commit and parents %q", b, parents)
		}
		if msg := git(t, dest, "log", "-1", "--format=%s|%an <%ae>", b); !strings.HasPrefix(msg, "layer ") || !strings.Contains(msg, pushed.Layers[n].Digest.String()) {
			t.Errorf("%s: message %q", b, msg)
		}
	}
	if head := git(t, dest, "symbolic-ref", "HEAD"); head != "refs/heads/"+want[2] {
		t.Errorf("HEAD is %s, want %s", head, want[2])
	}
	if st := git(t, dest, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("git status:\n%s", st)
	}
	// The index trusts DEST's stat data: DEST's content, hashed into an index of its own, must be
	// HEAD's tree too.
	fresh := filepath.Join(tmp, "fresh-index")
	add := exec.Command("git", "-C", dest, "-c", "safe.directory=*", "add", "--all", "--force")
	add.Env = append(os.Environ(), "GIT_INDEX_FILE="+fresh)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("git add with a new index: %v: %s", err, out)
	}
	wt := exec.Command("git", "-C", dest, "-c", "safe.directory=*", "write-tree")
	wt.Env = add.Env
	if out, err := wt.Output(); err != nil || strings.TrimSpace(string(out)) != git(t, dest, "rev-parse", "HEAD^{tree}") {
		t.Errorf("DEST hashed anew is tree %s (%v), HEAD's is %s", out, err, git(t, dest, "rev-parse", "HEAD^{tree}"))
	}
	if d := git(t, dest, "diff", "--name-status", want[0], want[1]); !strings.Contains(d, "M\tetc/a.conf") || !strings.Contains(d, "D\tdata/gone") {
		t.Errorf("git diff of layers 0 and 1:\n%s", d)
	}
	noGit := testtree.Skip(func(rel string) bool { return rel == ".git" })
	if d := testtree.Diff(testtree.Scan(t, plain, testtree.WithRoot()), testtree.Scan(t, dest, testtree.WithRoot(), noGit)); len(d) > 0 {
		t.Errorf("the git DEST is not the plain pull's:\n%s", strings.Join(d, "\n"))
	}

	// What roots commit builds on: the top branch, and a new layer above it.
	n, blob, top, err := roots.GitHead(t.Context(), dest)
	if err != nil || n != 2 || blob != pushed.Layers[2].Digest || !top {
		t.Fatalf("GitHead = %d, %s, %v, %v; want 2, %s, true", n, blob, top, err, pushed.Layers[2].Digest)
	}
	if err := os.WriteFile(filepath.Join(dest, "etc/a.conf"), []byte("committed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	next := digest.FromString("layer 3")
	if _, err := roots.GitCommitLayer(t.Context(), dest, next, "install things\n"); err != nil {
		t.Fatal(err)
	}
	b3 := "layer_3_" + next.Encoded()
	if head := git(t, dest, "symbolic-ref", "HEAD"); head != "refs/heads/"+b3 {
		t.Errorf("HEAD is %s after the commit, want %s", head, b3)
	}
	if msg := git(t, dest, "log", "-1", "--format=%s", b3); msg != "install things" {
		t.Errorf("message %q", msg)
	}
	if d := git(t, dest, "diff", "--name-status", want[2], b3); d != "M\tetc/a.conf" {
		t.Errorf("layer 3 changes %q, want etc/a.conf", d)
	}
	if st := git(t, dest, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("git status after the commit:\n%s", st)
	}
	if n, _, top, err := roots.GitHead(t.Context(), dest); err != nil || n != 3 || !top {
		t.Errorf("GitHead after the commit = %d, %v, %v", n, top, err)
	}
	git(t, dest, "symbolic-ref", "HEAD", "refs/heads/"+want[1])
	if _, _, top, err := roots.GitHead(t.Context(), dest); err != nil || top {
		t.Errorf("GitHead on layer 1 = top %v, %v; want not top", top, err)
	}
	if _, err := roots.GitCommitLayer(t.Context(), dest, digest.FromString("x"), "no"); !errors.Is(err, roots.ErrNotTopLayer) {
		t.Errorf("commit on layer 1: %v, want ErrNotTopLayer", err)
	}
	if _, _, _, err := roots.GitHead(t.Context(), plain); !errors.Is(err, roots.ErrNotGitDest) {
		t.Errorf("GitHead of a plain pull: %v, want ErrNotGitDest", err)
	}
}

// TestPullGitScratch: the branches are the same whether the scratch rootfs is assembled from the
// cached trees (a hardlink or a copy pull, as root) or made by applying the blobs again.
func TestPullGitScratch(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	pushed := testRegistry.Push(t, "example/gitscratch", "1", gitImage())
	ref := registry + "/example/gitscratch:1"
	var want []string
	for n := range pushed.Layers {
		want = append(want, independentTree(t, pushed, n))
	}
	tests := []struct {
		name  string
		mode  roots.Mode
		trees bool
	}{
		{"HardlinkTrees", roots.Hardlink, true},
		{"CopyTrees", roots.Copy, true},
		{"Blobs", roots.Hardlink, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roots.GitScratchTrees(t, tt.trees)
			dest := filepath.Join(tmp, tt.name)
			// A warning would say the index was not written, or a tree of the cache changed.
			warn := func(e roots.Event) {
				if e.Kind == roots.Warning {
					t.Errorf("warning: %s", e.Message)
				}
			}
			opts := roots.PullOptions{Cache: cache, Mode: tt.mode, Git: true, Progress: warn}
			if _, err := roots.Pull(t.Context(), ref, dest, opts); err != nil {
				t.Fatal(err)
			}
			for n, b := range branchNames(pushed) {
				if tree := git(t, dest, "rev-parse", b+"^{tree}"); tree != want[n] {
					t.Errorf("%s: tree %s, want %s", b, tree, want[n])
				}
			}
			if st := git(t, dest, "status", "--porcelain", "--untracked-files=all"); st != "" {
				t.Errorf("git status:\n%s", st)
			}
			if _, err := os.Lstat(filepath.Join(dest, ".git", "roots-layers")); !os.IsNotExist(err) {
				t.Errorf("the scratch rootfs is left: %v", err)
			}
		})
	}
}

// TestPullGitRefused: a git pull that cannot be made fails before any request and leaves no DEST.
func TestPullGitRefused(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	ref := registry + "/example/hello:1"
	tests := []struct {
		name string
		opts roots.PullOptions
		path string // PATH
		want error
	}{
		{"Overlay", roots.PullOptions{Cache: cache, Mode: roots.Overlay, Git: true}, os.Getenv("PATH"), nil},
		{"NoCache", roots.PullOptions{Git: true}, os.Getenv("PATH"), nil},
		{"NoGit", roots.PullOptions{Cache: cache, Git: true}, tmp, roots.ErrGitMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.path)
			dest := filepath.Join(tmp, tt.name)
			_, err := roots.Pull(t.Context(), ref, dest, tt.opts)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if _, err := os.Lstat(dest); !os.IsNotExist(err) {
				t.Errorf("a refused pull left %s", dest)
			}
		})
	}
	if _, err := os.Lstat(cache); !os.IsNotExist(err) {
		t.Error("a refused pull made the cache")
	}
}
