package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// committedJSON is what roots commit --json prints.
type committedJSON struct {
	Dest     string `json:"dest"`
	Image    string `json:"image"`
	Manifest string `json:"manifest"`
	Config   string `json:"config"`
	Layer    struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"layer"`
	DiffID  string `json:"diffId"`
	Entries int    `json:"entries"`
	Base    string `json:"base"`
}

// changeEverything makes every kind of change the issue names in the rootfs dest: added,
// changed and deleted files, a directory, symlink, hardlink pair, device and FIFO; changed
// mode, owner, mtime and xattrs (security.capability too); a file that became a directory and
// a directory that became a symlink; a directory emptied.
func changeEverything(t *testing.T, dest string) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(dest, rel) }
	old := time.Date(2020, 2, 2, 2, 2, 2, 0, time.UTC)
	steps := []struct {
		what string
		do   func() error
	}{
		{"add a file", func() error { return os.WriteFile(p("added"), []byte("added\n"), 0o640) }},
		{"replace etc/name", func() error { os.Remove(p("etc/name")); return os.WriteFile(p("etc/name"), []byte("changed\n"), 0o644) }},
		{"delete data", func() error { return os.Remove(p("data")) }},
		{"add a directory tree", func() error { return os.MkdirAll(p("srv/www/html"), 0o750) }},
		{"add a hardlink pair", func() error {
			if err := os.WriteFile(p("srv/a"), []byte("twice\n"), 0o644); err != nil {
				return err
			}
			return os.Link(p("srv/a"), p("srv/b"))
		}},
		{"add a symlink", func() error { return os.Symlink("/etc/name", p("srv/name")) }},
		{"add a fifo", func() error { return unix.Mkfifo(p("srv/fifo"), 0o600) }},
		{"add a device", func() error { return unix.Mknod(p("srv/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))) }},
		{"chmod", func() error { return os.Chmod(p("srv/a"), 0o4755) }},
		{"chown", func() error { return os.Lchown(p("srv/b"), 1234, 5678) }},
		{"xattr", func() error { return unix.Setxattr(p("added"), "user.roots", []byte("yes"), 0) }},
		{"capability", func() error {
			out, err := exec.Command("setcap", "cap_net_raw+ep", p("srv/a")).CombinedOutput()
			if err != nil {
				return &os.PathError{Op: "setcap " + string(out), Path: p("srv/a"), Err: err}
			}
			return nil
		}},
		{"mtime", func() error { return os.Chtimes(p("added"), old, old) }},
		{"file → directory", func() error {
			if err := os.Remove(p("link")); err != nil {
				return err
			}
			return os.Mkdir(p("link"), 0o755)
		}},
		{"directory → symlink, emptied", func() error {
			if err := os.RemoveAll(p("etc")); err != nil {
				return err
			}
			return os.Symlink("srv", p("etc"))
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
	}
}

// TestCommitCommand: for every mode, a pulled DEST changed in every way commits with roots
// commit (--json); a second commit says nothing to commit (exit 1); push --from uploads one
// layer and the config and mounts the rest; what the registry serves then pulls back, with
// roots and with skopeo + umoci, equal to the committed DEST (type, mode, owner, size, content,
// link target, hardlink groups, mtime, xattrs), and crane validates it.
func TestCommitCommand(t *testing.T) {
	NeedRoot(t)
	reg := registrytest.Start(t, registrytest.Config{})
	reg.Push(t, "team/app", "1", gzipImage("app", 7))
	for _, mode := range []string{"hardlink", "copy", "overlay"} {
		t.Run(mode, func(t *testing.T) {
			tmp := t.TempDir()
			cache := filepath.Join(tmp, "cache")
			dest := filepath.Join(tmp, "rootfs")
			MustPull(t, nil, "--cache", cache, "--mode", mode, reg.Host+"/team/app:1", dest)
			if mode == "overlay" {
				umountAll(t, dest)
			}
			changeEverything(t, dest)
			want := testtree.Scan(t, dest, testtree.SkipXattrs("trusted.overlay."))

			res := Roots(t, nil, "commit", "--cache", cache, dest, "-m", "every change", "--json")
			if res.Code != 0 {
				t.Fatalf("commit: exit %d: %s", res.Code, res.Stderr)
			}
			var done committedJSON
			if err := json.Unmarshal([]byte(res.Stdout), &done); err != nil {
				t.Fatalf("commit --json: %v\n%s", err, res.Stdout)
			}
			if done.Layer.Digest == "" || done.DiffID == "" || done.Manifest == "" || done.Entries < 12 {
				t.Errorf("commit --json: %+v", done)
			}
			again := Roots(t, nil, "commit", "--cache", cache, dest, "-m", "again")
			if again.Code != 1 || strings.TrimSpace(again.Stderr) != "roots: commit "+dest+": nothing to commit" {
				t.Errorf("second commit: exit %d, stderr %q", again.Code, again.Stderr)
			}

			target := reg.Host + "/team/app-" + mode + ":2"
			reg.ResetRequests()
			pushed := runJSON(t, "push", "--cache", cache, "--from", dest, target)
			if pushed.Digest != done.Manifest {
				t.Errorf("push --from pushed %s, commit made %s", pushed.Digest, done.Manifest)
			}
			if n := registrytest.Count(reg.Requests()); n != (registrytest.Counts{Heads: 4, Mounts: 2, Posts: 2, BlobPuts: 2, ManifestPuts: 1}) {
				t.Errorf("push --from: requests %+v: want the layer and the config uploaded, the 2 base layers mounted", n)
			}
			back := filepath.Join(tmp, "back")
			MustPull(t, nil, "--cache=no", target, back)
			if d := testtree.Diff(want, testtree.Scan(t, back), testtree.Only(testtree.Image...)); len(d) > 0 {
				t.Errorf("pulled back with roots:\n%s", strings.Join(d, "\n"))
			}
			craneValidate(t, target)
			rootfs := umociUnpack(t, target)
			only := testtree.Only(testtree.Type, testtree.Mode, testtree.Owner, testtree.Size, testtree.Content, testtree.Target, testtree.Hardlinks, testtree.Mtime, testtree.Xattrs)
			if d := testtree.Diff(want, testtree.Scan(t, rootfs), only); len(d) > 0 {
				t.Errorf("pulled back with skopeo + umoci:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestCommitRefusedCommand: a directory roots did not pull is one line naming it and the fix,
// exit 1; a missing -m is a usage error.
func TestCommitRefusedCommand(t *testing.T) {
	tmp := t.TempDir()
	res := Roots(t, nil, "commit", "--cache", filepath.Join(tmp, "cache"), tmp, "-m", "x")
	if res.Code != 1 || !strings.Contains(res.Stderr, "not a destination pulled with this cache") || strings.Count(res.Stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", res.Code, res.Stderr)
	}
	if res := Roots(t, nil, "commit", tmp); res.Code != 2 {
		t.Errorf("commit without -m: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// fileName finds the name of one of TestCommitOpensOnlyChanges' files in a line of strace.
var fileName = regexp.MustCompile(`"(?:[^"]*/)?(f[0-9]{3})"`)

// TestCommitOpensOnlyChanges: a commit of a hardlink DEST of 600 files with 3 changes (one
// added, one rewritten, one deleted) opens, of DEST's files, only the two whose content it
// writes (strace). The others are the cache's inodes and are not read.
func TestCommitOpensOnlyChanges(t *testing.T) {
	NeedRoot(t)
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatal("strace is needed to count what commit opens: apt-get install strace (as .ci/run does)")
	}
	r := registrytest.Start(t, registrytest.Config{})
	var ents []reg
	for i := range 600 {
		ents = append(ents, reg{Name: fmt.Sprintf("data/f%03d", i), Body: []byte(fmt.Sprintf("file %d\n", i))})
	}
	r.Push(t, "many", "1", registrytest.Image{Layers: []registrytest.Layer{{Compression: "gzip", Entries: ents}}})
	tmp := t.TempDir()
	cache, dest := filepath.Join(tmp, "cache"), filepath.Join(tmp, "rootfs")
	MustPull(t, nil, "--cache", cache, r.Host+"/many:1", dest)
	if err := os.WriteFile(filepath.Join(dest, "data/f600"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dest, "data/f007"))
	if err := os.WriteFile(filepath.Join(dest, "data/f007"), []byte("rewritten\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dest, "data/f123"))
	trace := filepath.Join(tmp, "strace.log")
	cmd := exec.Command(strace, "-f", "-e", "trace=openat", "-o", trace, Bin(), "commit", "--cache", cache, dest, "-m", "three")
	cmd.Env = Env(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("commit under strace: %v\n%s", err, out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	opened := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "openat(") || strings.Contains(line, "O_DIRECTORY") || strings.Contains(line, "O_CREAT") {
			continue
		}
		if m := fileName.FindStringSubmatch(line); m != nil {
			opened[m[1]] = true
		}
	}
	if len(opened) != 2 || !opened["f600"] || !opened["f007"] {
		t.Errorf("commit opened %v of DEST's files, want f600 and f007 alone", opened)
	}
}

// cacheListing is every path under the cache with its type, mode, size and mtime: what a
// command that writes nothing leaves exactly as it was.
func cacheListing(t *testing.T, cache string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCommitGitCommand: in a DEST pulled with -g and changed (a file added, one changed, one
// deleted), roots commit with HEAD on a lower layer branch exits 1 with one line naming that
// branch and writes nothing (the cache, to the mtime, and the branches). With HEAD back on the
// top branch, it makes branch layer_<n>_<hex of the new layer blob> with the message as its
// commit's subject, HEAD on it and git status clean, and leaves .git out of the layer (the image
// pulled by the name --json gives holds none); push --from sends it, and what skopeo + umoci
// unpack of it is DEST without its .git.
func TestCommitGitCommand(t *testing.T) {
	NeedRoot(t)
	reg := registrytest.Start(t, registrytest.Config{})
	pushed := reg.Push(t, "team/git", "1", gzipImage("git", 9))
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	dest := filepath.Join(tmp, "rootfs")
	MustPull(t, nil, "--cache", cache, "-g", reg.Host+"/team/git:1", dest)
	p := func(rel string) string { return filepath.Join(dest, rel) }
	if err := os.WriteFile(p("added"), []byte("added\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p("etc/name")); err != nil { // not written through: a hardlink DEST shares it
		t.Fatal(err)
	}
	if err := os.WriteFile(p("etc/name"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p("data")); err != nil {
		t.Fatal(err)
	}

	top := gitOut(t, dest, "symbolic-ref", "--short", "HEAD")
	lower := "layer_0_" + pushed.Layers[0].Digest.Encoded()
	gitOut(t, dest, "symbolic-ref", "HEAD", "refs/heads/"+lower)
	branches := gitOut(t, dest, "for-each-ref", "--format=%(refname) %(objectname)")
	before := cacheListing(t, cache)
	res := Roots(t, nil, "commit", "--cache", cache, dest, "-m", "refused")
	if res.Code != 1 || !strings.Contains(res.Stderr, lower) || strings.Count(res.Stderr, "\n") != 1 {
		t.Errorf("commit with HEAD on %s: exit %d, stderr %q; want 1 and one line naming the branch", lower, res.Code, res.Stderr)
	}
	if after := cacheListing(t, cache); !equalMaps(before, after) {
		t.Errorf("the refused commit changed the cache:\nbefore %v\nafter  %v", before, after)
	}
	if got := gitOut(t, dest, "for-each-ref", "--format=%(refname) %(objectname)"); got != branches {
		t.Errorf("the refused commit changed the branches:\n%s\nwere:\n%s", got, branches)
	}
	gitOut(t, dest, "symbolic-ref", "HEAD", "refs/heads/"+top)

	res = Roots(t, nil, "commit", "--cache", cache, dest, "-m", "my change", "--json")
	if res.Code != 0 {
		t.Fatalf("commit: exit %d: %s", res.Code, res.Stderr)
	}
	var done committedJSON
	if err := json.Unmarshal([]byte(res.Stdout), &done); err != nil {
		t.Fatalf("commit --json: %v\n%s", err, res.Stdout)
	}
	branch := fmt.Sprintf("layer_%d_%s", len(pushed.Layers), strings.TrimPrefix(done.Layer.Digest, "sha256:"))
	if head := gitOut(t, dest, "symbolic-ref", "--short", "HEAD"); head != branch {
		t.Errorf("HEAD is %s, want %s", head, branch)
	}
	if msg := gitOut(t, dest, "log", "-1", "--format=%s"); msg != "my change" {
		t.Errorf("the branch's commit says %q", msg)
	}
	if st := gitOut(t, dest, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("git status after the commit:\n%s", st)
	}
	local := filepath.Join(tmp, "local")
	MustPull(t, nil, "--cache", cache, done.Image, local)
	if _, err := os.Lstat(filepath.Join(local, ".git")); !os.IsNotExist(err) {
		t.Errorf("the committed image holds .git (%v)", err)
	}

	target := reg.Host + "/team/git-commit:2"
	if pushed := runJSON(t, "push", "--cache", cache, "--from", dest, target); pushed.Digest != done.Manifest {
		t.Errorf("push --from pushed %s, commit made %s", pushed.Digest, done.Manifest)
	}
	noGit := testtree.Skip(func(rel string) bool { return rel == ".git" })
	only := testtree.Only(testtree.Type, testtree.Content, testtree.Target)
	if d := testtree.Diff(testtree.Scan(t, dest, noGit), testtree.Scan(t, umociUnpack(t, target)), only); len(d) > 0 {
		t.Errorf("pulled back with skopeo + umoci, not DEST without .git:\n%s", strings.Join(d, "\n"))
	}
}

// TestCommitOverlayWalksOnlyChanges: the second commit of an overlay DEST of 1,200 files
// (data/ and other/, 600 each) with 3 changes stats only what its upper directory and the
// first commit's layer hold, not the merged tree: a walk would be 2,400 statx calls (DEST and
// the image it is compared with), and the commit makes fewer than 300 in all.
func TestCommitOverlayWalksOnlyChanges(t *testing.T) {
	NeedRoot(t)
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatal("strace is needed to count what commit reads: apt-get install strace (as .ci/run does)")
	}
	r := registrytest.Start(t, registrytest.Config{})
	var ents []reg
	for _, dir := range []string{"data", "other"} {
		for i := range 600 {
			ents = append(ents, reg{Name: fmt.Sprintf("%s/f%03d", dir, i), Body: []byte(fmt.Sprintf("%s %d\n", dir, i))})
		}
	}
	r.Push(t, "many", "1", registrytest.Image{Layers: []registrytest.Layer{{Compression: "gzip", Entries: ents}}})
	tmp := t.TempDir()
	cache, dest := filepath.Join(tmp, "cache"), filepath.Join(tmp, "rootfs")
	MustPull(t, nil, "--cache", cache, "--mode", "overlay", r.Host+"/many:1", dest)
	umountAll(t, dest)
	write := func(rel, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dest, rel), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("data/f600", "new\n")
	write("data/f007", "rewritten\n")
	os.Remove(filepath.Join(dest, "data/f123"))
	if res := Roots(t, nil, "commit", "--cache", cache, dest, "-m", "first"); res.Code != 0 {
		t.Fatalf("first commit: exit %d: %s", res.Code, res.Stderr)
	}
	write("other/f005", "rewritten\n")
	write("other/f600", "new\n")
	os.Remove(filepath.Join(dest, "data/f600"))
	want := testtree.Scan(t, dest, testtree.SkipXattrs("trusted.overlay."))

	trace := filepath.Join(tmp, "strace.log")
	cmd := exec.Command(strace, "-f", "-e", "trace=statx,newfstatat", "-o", trace, Bin(), "commit", "--cache", cache, dest, "-m", "second", "--tag", r.Host+"/many:2")
	cmd.Env = Env(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("second commit under strace: %v\n%s", err, out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	stats := strings.Count(string(b), "statx(") + strings.Count(string(b), "newfstatat(")
	t.Logf("the second overlay commit: %d stat calls", stats)
	if stats >= 300 {
		t.Errorf("the second overlay commit made %d stat calls, want < 300 (a walk of the merged tree makes 2,400)", stats)
	}
	MustPull(t, nil, "--cache", cache, r.Host+"/many:2", filepath.Join(tmp, "back"))
	if d := testtree.Diff(want, testtree.Scan(t, filepath.Join(tmp, "back")), testtree.Only(testtree.Image...)); len(d) > 0 {
		t.Errorf("the second commit pulls into something else than DEST:\n%s", strings.Join(d, "\n"))
	}
}
