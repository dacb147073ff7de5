package roots_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// change makes one of every kind of change in the rootfs dest: a new file, directory, symlink,
// hardlink pair and FIFO; a changed file and directory mode; a deleted file.
func change(t *testing.T, dest string) {
	t.Helper()
	steps := []func() error{
		func() error { return os.WriteFile(filepath.Join(dest, "new.txt"), []byte("new\n"), 0o640) },
		func() error { return os.Remove(filepath.Join(dest, "hello.txt")) }, // not written through: a hardlink DEST shares it
		func() error { return os.WriteFile(filepath.Join(dest, "hello.txt"), []byte("hello, roots\n"), 0o644) },
		func() error { return os.Remove(filepath.Join(dest, "etc/os-release")) },
		func() error { return os.Chmod(filepath.Join(dest, "etc"), 0o700) },
		func() error { return os.MkdirAll(filepath.Join(dest, "d/e"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(dest, "d/e/f"), []byte("f\n"), 0o600) },
		func() error { return os.Link(filepath.Join(dest, "d/e/f"), filepath.Join(dest, "d/e/g")) },
		func() error { return os.Symlink("../hello.txt", filepath.Join(dest, "d/link")) },
		func() error { return unix.Mkfifo(filepath.Join(dest, "d/fifo"), 0o644) },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
}

// TestCommit: for every mode, a pulled DEST changed in every way commits as one layer; a second
// commit finds nothing; the new image pulls (from the cache, by its tag) into a tree equal to
// DEST; push --from sends only the new layer and the config (the base layers are mounted), and
// what the registry then serves pulls back equal to DEST.
func TestCommit(t *testing.T) {
	for _, mode := range commitModes() {
		t.Run(string(mode), func(t *testing.T) {
			tmp := t.TempDir()
			cache := filepath.Join(tmp, "cache")
			dest := filepath.Join(tmp, "dest")
			pulled, err := roots.Pull(t.Context(), registry+"/example/hello:1", dest, roots.PullOptions{Cache: cache, Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			if mode == roots.Overlay {
				t.Cleanup(func() { roots.Unmount(t.Context(), dest, false) })
			}
			if _, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "nothing"}); !errors.Is(err, roots.ErrNothingToCommit) {
				t.Fatalf("commit of an unchanged DEST: %v, want ErrNothingToCommit", err)
			}
			change(t, dest)
			tag := registry + "/commit/" + string(mode) + ":1"
			done, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "every change", Tag: tag})
			if err != nil {
				t.Fatal(err)
			}
			if done.Base != pulled.Digest || done.Image != tag || done.Entries < 8 || done.Layer.Size == 0 {
				t.Errorf("committed %+v: want base %s, image %s, the changes' entries", done, pulled.Digest, tag)
			}
			if _, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "again"}); !errors.Is(err, roots.ErrNothingToCommit) {
				t.Errorf("second commit: %v, want ErrNothingToCommit", err)
			}
			want := testtree.Scan(t, dest, testtree.SkipXattrs("trusted.overlay."))
			local, err := roots.Pull(t.Context(), tag, filepath.Join(tmp, "local"), roots.PullOptions{Cache: cache})
			if err != nil {
				t.Fatal(err)
			}
			if local.Digest != done.Manifest {
				t.Errorf("pulled %s by its tag, committed %s", local.Digest, done.Manifest)
			}
			if d := testtree.Diff(want, testtree.Scan(t, local.Dest), testtree.Only(testtree.Image...)); len(d) > 0 {
				t.Errorf("the committed image pulls into something else than DEST:\n%s", strings.Join(d, "\n"))
			}

			testRegistry.ResetRequests()
			pushed, err := roots.PushFrom(t.Context(), dest, "", roots.PushOptions{Cache: cache, Jobs: 1})
			if err != nil {
				t.Fatal(err)
			}
			if pushed.Digest != done.Manifest {
				t.Errorf("pushed %s, committed %s", pushed.Digest, done.Manifest)
			}
			base := len(pulled.Layers)
			want2 := registrytest.Counts{Heads: base + 2, Mounts: base, Posts: 2, BlobPuts: 2, ManifestPuts: 1}
			if got := registrytest.Count(testRegistry.Requests()); got != want2 {
				t.Errorf("push --from: requests %+v, want %+v (the base layers mounted, the new layer and config uploaded)", got, want2)
			}
			back, err := roots.Pull(t.Context(), tag, filepath.Join(tmp, "back"), roots.PullOptions{Cache: filepath.Join(tmp, "cache2")})
			if err != nil {
				t.Fatal(err)
			}
			if d := testtree.Diff(want, testtree.Scan(t, back.Dest), testtree.Only(testtree.Image...)); len(d) > 0 {
				t.Errorf("pulled back from the registry, not DEST:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestCommitRefused: a directory roots did not pull, one pulled with no cache, and one
// replaced since its pull are refused with ErrNotPulled, and nothing is written.
func TestCommitRefused(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	plain := filepath.Join(tmp, "plain")
	os.Mkdir(plain, 0o755)
	nocache := filepath.Join(tmp, "nocache")
	if _, err := roots.Pull(t.Context(), registry+"/example/hello:1", nocache, roots.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	replaced := filepath.Join(tmp, "replaced")
	if _, err := roots.Pull(t.Context(), registry+"/example/hello:1", replaced, roots.PullOptions{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(replaced, replaced+".old"); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(replaced, 0o755)
	for _, dest := range []string{plain, nocache, replaced} {
		_, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "m"})
		if !errors.Is(err, roots.ErrNotPulled) {
			t.Errorf("commit %s: %v, want ErrNotPulled", dest, err)
		}
	}
	list, err := roots.List(t.Context(), cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Images) != 1 {
		t.Errorf("the cache lists %d images after refused commits, want the one pulled", len(list.Images))
	}
}

// TestPurgeKeepsCommit: a plain purge keeps an image made by commit and not pushed, though its
// DEST is gone, and what a live DEST needs to be pushed; a push lets purge take them.
func TestPurgeKeepsCommit(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	dest := filepath.Join(tmp, "dest")
	if _, err := roots.Pull(t.Context(), registry+"/example/hello:1", dest, roots.PullOptions{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	change(t, dest)
	tag := registry + "/commit/purge:1"
	done, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "m", Tag: tag})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dest); err != nil {
		t.Fatal(err)
	}
	if _, err := roots.Purge(t.Context(), cache, cas.Policy{}); err != nil {
		t.Fatal(err)
	}
	again, err := roots.Pull(t.Context(), tag, filepath.Join(tmp, "again"), roots.PullOptions{Cache: cache})
	if err != nil {
		t.Fatalf("pull the commit after a purge: %v", err)
	}
	if again.Digest != done.Manifest {
		t.Errorf("pulled %s, committed %s", again.Digest, done.Manifest)
	}
	if _, err := roots.Push(t.Context(), tag, "", roots.PushOptions{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(tmp, "again")); err != nil {
		t.Fatal(err)
	}
	rep, err := roots.Purge(t.Context(), cache, cas.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Left != 0 {
		t.Errorf("after the push, purge left %d bytes", rep.Left)
	}
}

// TestCommitGit: a commit of a destination pulled with Git adds the branch of its layer on top
// of the image's (layer_<n>_<hex of the new blob>), moves HEAD to it, and leaves .git out of
// the layer; with HEAD on a lower branch, commit refuses and writes nothing.
func TestCommitGit(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	dest := filepath.Join(tmp, "dest")
	pulled, err := roots.Pull(t.Context(), registry+"/example/hello:1", dest, roots.PullOptions{Cache: cache, Git: true})
	if err != nil {
		t.Fatal(err)
	}
	change(t, dest)
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", dest}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	top := git("rev-parse", "--abbrev-ref", "HEAD")
	git("symbolic-ref", "HEAD", "refs/heads/layer_0_"+pulled.Layers[0].Digest.Encoded()) // HEAD moved, the files not
	if _, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "m"}); !errors.Is(err, roots.ErrNotTopLayer) {
		t.Fatalf("commit with HEAD on layer 0: %v, want ErrNotTopLayer", err)
	}
	git("symbolic-ref", "HEAD", "refs/heads/"+top)
	done, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "every change"})
	if err != nil {
		t.Fatal(err)
	}
	branch := fmt.Sprintf("layer_%d_%s", len(pulled.Layers), done.Layer.Digest.Encoded())
	if head := git("rev-parse", "--abbrev-ref", "HEAD"); head != branch {
		t.Errorf("HEAD is %s after the commit, want %s", head, branch)
	}
	if msg := git("log", "-1", "--format=%s"); msg != "every change" {
		t.Errorf("the branch's commit message: %q", msg)
	}
	back, err := roots.Pull(t.Context(), done.Image, filepath.Join(tmp, "back"), roots.PullOptions{Cache: cache})
	if err != nil {
		t.Fatalf("pull the commit by its digest: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(back.Dest, ".git")); err == nil {
		t.Error("the committed layer holds .git")
	}
}

// commitModes are the destination modes a commit test runs in: overlay needs root.
func commitModes() []roots.Mode {
	modes := []roots.Mode{roots.Hardlink, roots.Copy}
	if os.Geteuid() == 0 {
		modes = append(modes, roots.Overlay)
	}
	return modes
}

// changeAgain changes dest, a destination committed after change, in every way that touches
// what the first commit wrote: a committed file deleted and another rewritten, a committed
// directory removed and made again with other contents, a base file replaced by a directory, a
// base directory emptied, a new file at the root and a committed directory's mode changed.
func changeAgain(t *testing.T, dest string) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(dest, rel) }
	steps := []func() error{
		func() error { return os.Remove(p("new.txt")) },
		func() error { return os.WriteFile(p("d/e/f"), []byte("f, again\n"), 0o600) },
		func() error { return os.RemoveAll(p("d/e")) },
		func() error { return os.Mkdir(p("d/e"), 0o750) },
		func() error { return os.WriteFile(p("d/e/h"), []byte("h\n"), 0o644) },
		func() error { return os.Remove(p("hello.txt")) },
		func() error { return os.Mkdir(p("hello.txt"), 0o755) },
		func() error { return os.WriteFile(p("hello.txt/inside"), []byte("inside\n"), 0o644) },
		func() error { return os.WriteFile(p("second.txt"), []byte("second\n"), 0o644) },
		func() error { return os.Chmod(p("d"), 0o711) },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("change again %d: %v", i, err)
		}
	}
}

// TestCommitTwice: for every mode, a second commit of a DEST changed again since its first
// commit writes a layer that, on the first commit's image, gives DEST; a third commit finds
// nothing. An overlay DEST finds the second change set without walking its merged tree (see
// TestCommitOverlayWalksOnlyChanges in the e2e tests).
func TestCommitTwice(t *testing.T) {
	for _, mode := range commitModes() {
		t.Run(string(mode), func(t *testing.T) {
			tmp := t.TempDir()
			cache := filepath.Join(tmp, "cache")
			dest := filepath.Join(tmp, "dest")
			if _, err := roots.Pull(t.Context(), registry+"/example/hello:1", dest, roots.PullOptions{Cache: cache, Mode: mode}); err != nil {
				t.Fatal(err)
			}
			if mode == roots.Overlay {
				t.Cleanup(func() { roots.Unmount(t.Context(), dest, false) })
			}
			change(t, dest)
			first, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "first"})
			if err != nil {
				t.Fatal(err)
			}
			changeAgain(t, dest)
			tag := registry + "/twice/" + string(mode) + ":2"
			second, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "second", Tag: tag})
			if err != nil {
				t.Fatal(err)
			}
			if second.Base != first.Manifest {
				t.Errorf("second commit's base %s, want the first commit %s", second.Base, first.Manifest)
			}
			if _, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "third"}); !errors.Is(err, roots.ErrNothingToCommit) {
				t.Errorf("third commit: %v, want ErrNothingToCommit", err)
			}
			want := testtree.Scan(t, dest, testtree.SkipXattrs("trusted.overlay."))
			local, err := roots.Pull(t.Context(), tag, filepath.Join(tmp, "local"), roots.PullOptions{Cache: cache})
			if err != nil {
				t.Fatal(err)
			}
			if d := testtree.Diff(want, testtree.Scan(t, local.Dest), testtree.Only(testtree.Image...)); len(d) > 0 {
				t.Errorf("the image of two commits pulls into something else than DEST:\n%s", strings.Join(d, "\n"))
			}
			if _, err := roots.PushFrom(t.Context(), dest, "", roots.PushOptions{Cache: cache}); err != nil {
				t.Fatal(err)
			}
			back, err := roots.Pull(t.Context(), tag, filepath.Join(tmp, "back"), roots.PullOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d := testtree.Diff(want, testtree.Scan(t, back.Dest), testtree.Only(testtree.Image...)); len(d) > 0 {
				t.Errorf("applied from the registry's blobs, the image gives something else than DEST:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}
