package roots_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/internal/testtree"
)

// cacheState is what a commit that fails or finds nothing must leave as it was: every path
// under the cache directory with its type and size (a symlink's target), the content of every
// record (leases/, images/, trees' .json), the mtimes of regular files apart, and what
// cas.Objects lists.
type cacheState struct {
	files   map[string]string
	mtimes  map[string]time.Time
	objects []string
}

// stampedByLookup reports whether rel is a last-use stamp that a commit's compare moves
// without writing anything: the hardlink assembly of the base image marks what it reads as
// used, its manifest's and config's blobs and its trees' .json; an overlay's later commit reads
// the trees and the fix-up of its image. (An overlay's first commit, which reads only the upper
// directory, moves none.)
func stampedByLookup(rel string) bool {
	return (strings.HasPrefix(rel, "trees/sha256/") || strings.HasPrefix(rel, "fixups/sha256/")) && strings.HasSuffix(rel, ".json") ||
		strings.HasPrefix(rel, "blobs/sha256/")
}

func scanCache(t *testing.T, cache string) cacheState {
	t.Helper()
	s := cacheState{files: map[string]string{}, mtimes: map[string]time.Time{}}
	err := filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(cache, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			s.files[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			s.files[rel] = "symlink " + target
		default:
			s.files[rel] = fmt.Sprintf("%v %d", fi.Mode(), fi.Size())
			top := strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]
			if top == "leases" || top == "images" || strings.HasSuffix(rel, ".json") && !strings.Contains(filepath.ToSlash(rel), ".json/") {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				s.files[rel] += " " + string(b)
			}
			s.mtimes[filepath.ToSlash(rel)] = fi.ModTime()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cas.Open(t.Context(), cache)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	objs, err := c.Objects()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		line := fmt.Sprintf("%s %s %s %d", o.Kind, o.Name, o.Digest, o.Size)
		if o.Image != nil {
			line += fmt.Sprintf(" %+v", *o.Image)
		}
		if o.Kind == cas.KindImage {
			line += " " + o.LastUse.String() // a blob's or tree's may move: see stampedByLookup
		}
		s.objects = append(s.objects, line)
	}
	slices.Sort(s.objects)
	return s
}

// sameCache reports how after differs from before; mtimes differ only where stamped allows.
func sameCache(t *testing.T, before, after cacheState, stamped func(rel string) bool) {
	t.Helper()
	var d []string
	for p, v := range before.files {
		if w, ok := after.files[p]; !ok {
			d = append(d, "gone: "+p+" ("+v+")")
		} else if v != w {
			d = append(d, "changed: "+p+": "+v+" → "+w)
		}
	}
	for p, w := range after.files {
		if _, ok := before.files[p]; !ok {
			d = append(d, "new: "+p+" ("+w+")")
		}
	}
	for p, m := range before.mtimes {
		if w, ok := after.mtimes[p]; ok && !m.Equal(w) && !stamped(p) {
			d = append(d, "mtime: "+p)
		}
	}
	if !slices.Equal(before.objects, after.objects) {
		d = append(d, "objects before:\n\t"+strings.Join(before.objects, "\n\t")+"\nafter:\n\t"+strings.Join(after.objects, "\n\t"))
	}
	slices.Sort(d)
	if len(d) > 0 {
		t.Errorf("the cache changed:\n%s", strings.Join(d, "\n"))
	}
}

// TestCommitNothingWritesNothing: "nothing to commit" writes nothing in the cache, in every
// mode, before and after a first commit: every path, size and record is as it was (no exposure
// stamp in linked/ for the trees the compare linked), and the only mtimes that move are the
// last-use stamps of what the compare reads (stampedByLookup).
func TestCommitNothingWritesNothing(t *testing.T) {
	for _, mode := range commitModes() {
		t.Run(string(mode), func(t *testing.T) {
			tmp := t.TempDir()
			cache, dest := filepath.Join(tmp, "cache"), filepath.Join(tmp, "dest")
			if _, err := roots.Pull(t.Context(), registry+"/example/hello:1", dest, roots.PullOptions{Cache: cache, Mode: mode}); err != nil {
				t.Fatal(err)
			}
			if mode == roots.Overlay {
				t.Cleanup(func() { roots.Unmount(t.Context(), dest, false) })
			}
			nothing := func(what string) {
				t.Helper()
				before := scanCache(t, cache)
				time.Sleep(10 * time.Millisecond) // a touch would show
				if _, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "m"}); !errors.Is(err, roots.ErrNothingToCommit) {
					t.Fatalf("%s: %v, want ErrNothingToCommit", what, err)
				}
				sameCache(t, before, scanCache(t, cache), stampedByLookup)
			}
			nothing("commit after the pull")
			change(t, dest)
			if _, err := roots.Commit(t.Context(), dest, roots.CommitOptions{Cache: cache, Message: "m"}); err != nil {
				t.Fatal(err)
			}
			nothing("commit after a commit")
		})
	}
}

// readOnly makes dir a read-only bind mount of itself (a write into it fails as on a read-only
// filesystem) until the returned function, or the test's end, unmounts it.
func readOnly(t *testing.T, dir string) func() {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		unix.Unmount(dir, 0)
		t.Fatal(err)
	}
	mounted := true
	undo := func() {
		if mounted {
			mounted = false
			if err := unix.Unmount(dir, 0); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(undo)
	return undo
}

// sameChange makes the same change in any DEST pulled from example/hello:1, to the mtime: a file
// added, one deleted. Committed, it makes the same layer.
func sameChange(t *testing.T, dest string) {
	t.Helper()
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.WriteFile(filepath.Join(dest, "added"), []byte("added\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dest, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"added", "etc", "."} {
		if err := os.Chtimes(filepath.Join(dest, p), when, when); err != nil {
			t.Fatal(err)
		}
	}
}

// gitState is what a git destination's repository says of itself: HEAD, the branches and
// their commits, and git status.
func gitState(t *testing.T, dest string) string {
	t.Helper()
	var out []string
	for _, args := range [][]string{
		{"symbolic-ref", "HEAD"},
		{"for-each-ref", "--format=%(refname) %(objectname)"},
		{"status", "--porcelain", "--untracked-files=all"},
	} {
		b, err := exec.Command("git", append([]string{"-C", dest}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, b)
		}
		out = append(out, string(b))
	}
	return strings.Join(out, "")
}

// TestCommitFailsCleanly: a commit that fails half-way returns the error and leaves the cache
// (every path, record and object), DEST's record, DEST (but the ctimes of the files a hardlink
// DEST shares with the trees, which the compare links) and its git repository as they were;
// with the fault gone, the same commit succeeds. The faults are real: the cache directory that
// the step writes into is a read-only bind mount, so the new tree, the layer blob, the image
// record or DEST's record (first or last) cannot be written. A layer that was
// in the cache before (the same change committed from another DEST) stays, and the record of
// the same tag that the failed commit had replaced is back.
func TestCommitFailsCleanly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (read-only bind mounts); CI runs as root")
	}
	tests := []struct {
		name  string
		fault string // the cache directory made read-only
		twice bool   // the layer is in the cache already, and an image record of the same tag
		after string // what the commit had written when it failed
	}{
		{"Tree", "trees/sha256", false, "nothing: its tree is not published"},
		{"Blob", "blobs/sha256", false, "the tree's record, not its blob"},
		{"ImageRecord", "images", false, "the blob, tree, config and manifest"},
		{"Lease", "leases", false, "nothing: DEST's record of a commit under way comes first"},
		{"LeaseSameLayerAndTag", "leases", true, "nothing; the blob, tree and a record of the tag were there"},
		// leases/ turns read-only once the image record is written: DEST's record cannot move
		// to the new image, nor be put back as it was (it says a commit is under way, which the
		// next commit takes back; see TestCommitKilled).
		{"LeaseLast", "leases@record", false, "everything but DEST's record, and the git branch"},
		{"LeaseLastSameLayerAndTag", "leases@record", true, "what LeaseLast has; the blob and tree were there, the record replaced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			cache, dest := filepath.Join(tmp, "cache"), filepath.Join(tmp, "dest")
			ref := registry + "/example/hello:1"
			pulled, err := roots.Pull(t.Context(), ref, dest, roots.PullOptions{Cache: cache, Git: true})
			if err != nil {
				t.Fatal(err)
			}
			var twin *roots.Committed
			opts := roots.CommitOptions{Cache: cache, Message: "m"}
			if tt.twice {
				opts.Tag = registry + "/commit/twice:1"
				other := filepath.Join(tmp, "other")
				if _, err := roots.Pull(t.Context(), ref, other, roots.PullOptions{Cache: cache, Git: true}); err != nil {
					t.Fatal(err)
				}
				sameChange(t, other)
				if twin, err = roots.Commit(t.Context(), other, opts); err != nil {
					t.Fatal(err)
				}
			}
			sameChange(t, dest)
			noGit := testtree.Skip(func(rel string) bool { return rel == ".git" })
			destBefore := testtree.Scan(t, dest, testtree.WithRoot(), noGit)
			gitBefore := gitState(t, dest)
			before := scanCache(t, cache)

			dir, step, last := strings.Cut(tt.fault, "@")
			var restore func()
			if last {
				roots.CommitHook(t, func(s string) error {
					if s == step {
						restore = readOnly(t, filepath.Join(cache, dir))
					}
					return nil
				})
			} else {
				restore = readOnly(t, filepath.Join(cache, dir))
			}
			_, err = roots.Commit(t.Context(), dest, opts)
			if err == nil {
				t.Fatalf("commit with %s read-only succeeded", tt.fault)
			}
			t.Logf("failed with %s written: %v", tt.after, err)
			restore()
			roots.CommitHook(t, nil)
			after := scanCache(t, cache)
			if last {
				// DEST's record still says a commit is under way: the rest is as it was.
				p := filepath.Join("leases", cas.LeaseID(dest))
				if !strings.Contains(after.files[p], `"pending"`) {
					t.Errorf("DEST's record %s does not say a commit is under way", after.files[p])
				}
				after.files[p] = before.files[p]
			}
			// DEST's record was written twice (a commit under way, then as it was): same bytes.
			rewritten := func(rel string) bool { return stampedByLookup(rel) || strings.HasPrefix(rel, "leases/") }
			sameCache(t, before, after, rewritten)
			if d := testtree.Diff(destBefore, testtree.Scan(t, dest, testtree.WithRoot(), noGit), testtree.Only(testtree.Image...)); len(d) > 0 {
				t.Errorf("the failed commit changed DEST:\n%s", strings.Join(d, "\n"))
			}
			if got := gitState(t, dest); got != gitBefore {
				t.Errorf("the failed commit left git so:\n%s\nwas:\n%s", got, gitBefore)
			}

			done, err := roots.Commit(t.Context(), dest, opts)
			if err != nil {
				t.Fatalf("the commit again, with the fault gone: %v", err)
			}
			if twin != nil && done.Layer.Digest != twin.Layer.Digest {
				t.Errorf("the same change made layer %s, and %s from the other DEST", done.Layer.Digest, twin.Layer.Digest)
			}
			branch := fmt.Sprintf("refs/heads/layer_%d_%s", len(pulled.Layers), done.Layer.Digest.Encoded())
			if head := strings.SplitN(gitState(t, dest), "\n", 2)[0]; head != branch {
				t.Errorf("HEAD is %s after the commit, want %s", head, branch)
			}
		})
	}
}

// TestCommitKilled: a commit of a git DEST stopped dead after each of its steps, as a killed
// process stops, is finished or taken back by the next command on DEST. Killed before its
// image record was written, it is taken back: the next commit of the same change succeeds, its
// layer branch on top of the pulled ones with HEAD on it and git clean, and the cache holds one
// local image. Killed after, it is finished: DEST's record moves to the image it made, so the
// next commit has nothing to commit, and git has its branch. A commit whose last write (DEST's
// record) fails, and whose record cannot be put back either, is taken back the same way.
func TestCommitKilled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (read-only bind mounts); CI runs as root")
	}
	tests := []struct {
		step     string
		fault    bool // at step, leases/ turns read-only instead of the commit being killed
		finished bool
		push     bool // the next command is push --from (else commit)
	}{
		{step: "pending"},
		{step: "tree"},
		{step: "git"},
		{step: "record", finished: true},
		{step: "record", finished: true, push: true},
		{step: "record", fault: true},
	}
	for _, tt := range tests {
		name := tt.step
		if tt.fault {
			name += "/LeaseWriteFails"
		}
		if tt.push {
			name += "/PushFrom"
		}
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			cache, dest := filepath.Join(tmp, "cache"), filepath.Join(tmp, "dest")
			pulled, err := roots.Pull(t.Context(), registry+"/example/hello:1", dest, roots.PullOptions{Cache: cache, Git: true})
			if err != nil {
				t.Fatal(err)
			}
			sameChange(t, dest)
			opts := roots.CommitOptions{Cache: cache, Message: "m"}
			var restore func()
			roots.CommitHook(t, func(step string) error {
				switch {
				case step != tt.step:
					return nil
				case tt.fault:
					restore = readOnly(t, filepath.Join(cache, "leases"))
					return nil
				}
				return roots.ErrKilled
			})
			_, err = roots.Commit(t.Context(), dest, opts)
			if tt.fault {
				if err == nil || restore == nil {
					t.Fatalf("commit with leases/ read-only at the end: %v", err)
				}
				t.Logf("failed: %v", err)
				restore()
			} else if !errors.Is(err, roots.ErrKilled) {
				t.Fatalf("commit killed after %s: %v", tt.step, err)
			}
			roots.CommitHook(t, nil)

			branches := func() []string {
				b, err := exec.Command("git", "-C", dest, "for-each-ref", "--format=%(refname)", "refs/heads/").Output()
				if err != nil {
					t.Fatal(err)
				}
				return strings.Fields(string(b))
			}
			var made digest.Digest // the layer of the commit that holds in the end
			var pushedDigest digest.Digest
			if tt.push {
				pushed, err := roots.PushFrom(t.Context(), dest, registry+"/killed/commit:1", roots.PushOptions{Cache: cache})
				if err != nil {
					t.Fatalf("push --from after a commit killed past its image record: %v", err)
				}
				if pushed.Digest == pulled.Digest {
					t.Errorf("push --from pushed the pulled image, not the commit it finished")
				}
				pushedDigest = pushed.Digest
			}
			if tt.finished {
				if _, err := roots.Commit(t.Context(), dest, opts); !errors.Is(err, roots.ErrNothingToCommit) {
					t.Fatalf("commit after a commit killed past its image record: %v, want ErrNothingToCommit (DEST's record finished)", err)
				}
			} else {
				done, err := roots.Commit(t.Context(), dest, opts)
				if err != nil {
					t.Fatalf("commit after a commit killed after %s: %v", tt.step, err)
				}
				made = done.Layer.Digest
			}
			c, err := cas.Open(t.Context(), cache)
			if err != nil {
				t.Fatal(err)
			}
			imgs, err := c.Images()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			var local []string
			for _, o := range imgs {
				if o.Image != nil && o.Image.Local {
					local = append(local, o.Image.Reference)
				}
			}
			l, err := roots.List(t.Context(), cache)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case len(l.Destinations) != 1:
				t.Fatalf("destinations %+v, want DEST alone", l.Destinations)
			case tt.push && (len(local) != 0 || l.Destinations[0].Digest != pushedDigest.String()):
				t.Fatalf("after push --from: local images %v, DEST holds %s: want none (pushed), and DEST the image pushed %s", local, l.Destinations[0].Digest, pushedDigest)
			case !tt.push && (len(local) != 1 || l.Destinations[0].Image != local[0]):
				t.Fatalf("local images %v, DEST holds %s: want one local image, which DEST holds", local, l.Destinations[0].Image)
			}
			n, blob, top, err := roots.GitHead(t.Context(), dest)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(pulled.Layers) || !top || made != "" && blob != made {
				t.Errorf("HEAD is layer %d %s (top %v), want layer %d %s", n, blob, top, len(pulled.Layers), made)
			}
			if got := branches(); len(got) != len(pulled.Layers)+1 {
				t.Errorf("branches %v, want the pulled layers' and one commit's", got)
			}
			if st, err := exec.Command("git", "-C", dest, "status", "--porcelain").Output(); err != nil || len(st) > 0 {
				t.Errorf("git status: %v %s, want clean", err, st)
			}
		})
	}
}
