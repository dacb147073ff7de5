package roots

// A git destination (PullOptions.Git, roots pull -g) is DEST made a git repository with one
// branch per layer, as krgo made them: layer_<n>_<hex>, n from 0 at the bottom and hex the
// layer's blob digest, branch n made from branch n-1 with one commit whose tree is the rootfs
// after layers 0..n, HEAD on the top branch and the index matching DEST (git status is clean).
//
// The branches are made from the cache: each layer is added to a scratch rootfs inside
// DEST/.git (as root, a hardlink assembly of the trees the pull assembled DEST from; else its
// blob applied again with layer.Applier: either way the rootfs the pull made), which is walked
// after each layer; what changed since the layer below streams into one git fast-import as the
// layer's commit. Only the files a layer changed are read and stored, the scratch walk
// decides what git records, and no git add runs over the image:
//
//   - regular files (100755 when the owner may execute them, else 100644) and symlinks are
//     recorded; directories only through what they hold (git keeps no empty directory);
//     devices, fifos and sockets are left out, as git add leaves them out;
//   - a name ".git" (in any case) is left out with everything below it, as git cannot store it;
//     a directory that holds a .git repository of its own is recorded file by file, where git
//     add would record a gitlink (or refuse one without a commit);
//   - DEST/.git/info/attributes unsets text, filter, ident and working-tree-encoding for every
//     path, so that no .gitattributes of the image converts what git reads in DEST.
//
// An image with /.git at its root cannot be a git destination. The rootfs stays what a plain
// pull makes, DEST's own mtime included: git writes only below DEST/.git.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/cas/layer"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/internal/disk"
)

// gitIdentity is who the layer commits are by, unless git's configuration says otherwise.
const (
	gitName  = "roots"
	gitEmail = "roots@localhost"
)

// gitShort bounds a git command that does not read the image (init, config, refs).
const gitShort = 2 * time.Minute

// checkGit fails with ErrGitMissing when no git can be run.
func checkGit() error {
	if _, err := exec.LookPath("git"); err != nil {
		return fmt.Errorf("%w: no git in PATH (a git destination is made with the git command)", ErrGitMissing)
	}
	return nil
}

// checkGitPull refuses what a git destination cannot be made with, before any request.
func checkGitPull(opts PullOptions) error {
	switch {
	case opts.Mode == Overlay:
		return errors.New("a git destination cannot be an overlay mount (its .git and index need DEST's own files): use Hardlink or Copy")
	case opts.Cache == "":
		return errors.New("a git destination needs the cache (its branches are made from the cached layer blobs)")
	}
	return checkGit()
}

// gitLayer names one layer branch: layer_<N>_<Blob's hex>.
type gitLayer struct {
	N    int
	Blob digest.Digest
}

func (l gitLayer) branch() string { return fmt.Sprintf("layer_%d_%s", l.N, l.Blob.Encoded()) }
func (l gitLayer) ref() string    { return "refs/heads/" + l.branch() }

// parseLayerBranch reads a branch name layer_<n>_<sha256 hex>.
func parseLayerBranch(name string) (gitLayer, bool) {
	rest, ok := strings.CutPrefix(name, "layer_")
	if !ok {
		return gitLayer{}, false
	}
	num, hex, ok := strings.Cut(rest, "_")
	if !ok {
		return gitLayer{}, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strconv.Itoa(n) != num {
		return gitLayer{}, false
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex)
	if d.Validate() != nil {
		return gitLayer{}, false
	}
	return gitLayer{N: n, Blob: d}, true
}

// repo runs git on one repository: GIT_DIR is dir/.git and GIT_WORK_TREE dir, given
// explicitly, with an environment free of the caller's GIT_ variables and a configuration that
// neither runs hooks nor converts content.
type repo struct{ dir string }

// gitConfig is passed to every git command: nothing of the user's configuration may run a
// program (fsmonitor, hooks), convert files, or start maintenance in DEST.
var gitConfig = []string{
	"-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "core.untrackedCache=false",
	"-c", "core.autocrlf=false", "-c", "core.safecrlf=false", "-c", "core.fileMode=true",
	"-c", "core.symlinks=true", "-c", "core.ignoreCase=false", "-c", "core.precomposeUnicode=false",
	"-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "safe.directory=*",
}

// cmd is git args in r; a zero r is no repository (for git init).
func (r repo) cmd(ctx context.Context, stdin io.Reader, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", append(append([]string(nil), gitConfig...), args...)...)
	env := []string{"LC_ALL=C", "GIT_TERMINAL_PROMPT=0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "LC_ALL=") {
			env = append(env, kv)
		}
	}
	if r.dir != "" {
		env = append(env, "GIT_DIR="+filepath.Join(r.dir, ".git"), "GIT_WORK_TREE="+r.dir)
		cmd.Dir = r.dir
	}
	cmd.Env = env
	cmd.Stdin = stdin
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs git args in r, with stdin as its input, and returns its output without the final
// newline; a failure says the command and git's first line of complaint.
func (r repo) run(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := r.cmd(ctx, stdin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", gitError(args, err, errb.String())
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

// short is run under gitShort.
func (r repo) short(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, gitShort)
	defer cancel()
	return r.run(ctx, nil, args...)
}

func gitError(args []string, err error, stderr string) error {
	for len(args) > 2 && args[0] == "-c" {
		args = args[2:] // name the subcommand
	}
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("git %s: %w", args[0], ErrGitMissing)
	}
	if line, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n"); line != "" {
		return fmt.Errorf("git %s: %w: %s", args[0], err, line)
	}
	return fmt.Errorf("git %s: %w", args[0], err)
}

// identity is user.name and user.email from git's configuration, or roots <roots@localhost>.
func (r repo) identity(ctx context.Context) (name, email string) {
	name, email = gitName, gitEmail
	if v, err := r.short(ctx, "config", "--get", "user.name"); err == nil && cleanIdent(v) != "" {
		name = cleanIdent(v)
	}
	if v, err := r.short(ctx, "config", "--get", "user.email"); err == nil && cleanIdent(v) != "" {
		email = cleanIdent(v)
	}
	return name, email
}

// cleanIdent drops what an identity line cannot hold.
func cleanIdent(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == '<' || r == '>' || r == '\n' || r == 0 {
			return -1
		}
		return r
	}, s))
}

// gitAttributes neutralises the image's .gitattributes: git stores and compares bytes as they are.
const gitAttributes = "* -text -filter -ident -working-tree-encoding\n"

// gitInit makes dir/.git with no template (no hooks, no sample files).
func gitInit(ctx context.Context, dir string) error {
	if _, err := (repo{}).short(ctx, "-c", "init.defaultBranch=roots", "init", "--quiet", "--template=", dir); err != nil {
		return err
	}
	info := filepath.Join(dir, ".git", "info")
	if err := os.MkdirAll(info, 0o755); err != nil {
		return fmt.Errorf("git info: %w", err)
	}
	if err := os.WriteFile(filepath.Join(info, "attributes"), []byte(gitAttributes), 0o644); err != nil {
		return fmt.Errorf("git attributes: %w", err)
	}
	return nil
}

// gitLayers makes dir, a pull's staging directory with img assembled in it, a git destination
// (see the top of this file). The layers are read from the cache's blobs, or from the registry
// when a blob is no longer cached. On error the caller removes dir; the scratch directory is
// removed in any case, and dir's times are restored.
func (p *puller) gitLayers(ctx context.Context, img *fetch.Image, dir string) (err error) {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("git: %w", err)
	}
	defer func() {
		ts := []unix.Timespec{st.Atim, st.Mtim}
		if terr := unix.UtimesNanoAt(unix.AT_FDCWD, dir, ts, unix.AT_SYMLINK_NOFOLLOW); err == nil && terr != nil {
			err = fmt.Errorf("git: restore the times of %s: %w", dir, terr)
		}
	}()
	if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
		return fmt.Errorf("git: the image has /.git: its root cannot be a git repository too")
	}
	if err := gitInit(ctx, dir); err != nil {
		return err
	}
	r := repo{dir}
	name, email := r.identity(ctx)
	scratch := filepath.Join(dir, ".git", "roots-layers")
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return fmt.Errorf("git: %w", err)
	}
	defer disk.RemoveAll(scratch)
	next, shared, closeScratch, err := p.gitScratch(ctx, img, scratch)
	if err != nil {
		return err
	}
	defer closeScratch()

	// fast-import's own CPU was most of a git pull: zlib at level 1 rather than 6 and no delta
	// against the blob before (--depth=0) take it from 4-5 s to 1.4-1.8 s for 100 MB of files,
	// for a pack of 26 MB rather than 22. Branches hold the same objects either way.
	fi := r.cmd(ctx, nil, "-c", "pack.compression=1", "fast-import", "--quiet", "--done", "--date-format=raw", "--depth=0")
	in, err := fi.StdinPipe()
	if err != nil {
		return fmt.Errorf("git fast-import: %w", err)
	}
	var errb bytes.Buffer
	fi.Stderr = &errb
	if err := fi.Start(); err != nil {
		return gitError([]string{"fast-import"}, err, "")
	}
	w := &gitStream{w: bufio.NewWriterSize(in, 1<<20), root: scratch, shared: shared, prev: map[string]gitFile{}, ids: map[string]gitBlobID{}}
	werr := func() error {
		when := time.Now().Unix()
		for i, d := range img.Layers {
			if err := next(i); err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			msg := fmt.Sprintf("layer %d: %s\n\n%s@%s\ndiff id %s\n", i, d.Digest, p.ref, img.Digest, img.DiffIDs[i])
			if err := w.commit(ctx, gitLayer{N: i, Blob: d.Digest}, i, name, email, when, msg); err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
		}
		if _, err := io.WriteString(w.w, "done\n"); err != nil {
			return err
		}
		return w.w.Flush()
	}()
	in.Close()
	// The scratch goes while fast-import finishes its pack, and before the index takes DEST's
	// stat data: unlinking a scratch that shares DEST's inodes changes their ctime.
	removed := make(chan error, 1)
	go func() {
		closeScratch()
		removed <- disk.RemoveAll(scratch)
	}()
	ferr := fi.Wait()
	rerr := <-removed
	if ferr != nil && (werr == nil || errors.Is(werr, syscall.EPIPE)) {
		return gitError([]string{"fast-import"}, ferr, errb.String()) // it says why it stopped reading
	}
	if werr != nil {
		return fmt.Errorf("git: %w", werr)
	}
	if rerr != nil {
		return fmt.Errorf("git: %w", rerr)
	}
	if n := len(img.Layers); n > 0 {
		top := gitLayer{N: n - 1, Blob: img.Layers[n-1].Digest}
		if _, err := r.short(ctx, "symbolic-ref", "HEAD", top.ref()); err != nil {
			return err
		}
		if err := p.checkout(ctx, r, w); err != nil {
			return err
		}
	}
	return nil
}

// gitScratchTrees lets gitScratch assemble the cached trees (the tests turn it off).
var gitScratchTrees = true

// gitScratch returns next, which makes scratch the rootfs of img's layers 0..i (called for each
// i in order), and what releases it. As root (whom no mode keeps from reading a file), next adds
// the cached trees that the pull assembled DEST from in a hardlink assembly: nothing is
// decompressed or written again, and the scratch shares the trees' inodes (shared), which the
// walk only reads. Else it applies each layer's blob again with layer.Applier: the cache's,
// or the registry's when it is no longer cached.
func (p *puller) gitScratch(ctx context.Context, img *fetch.Image, scratch string) (next func(int) error, shared bool, release func(), err error) {
	if trees := p.layerTrees; gitScratchTrees && len(trees) == len(img.Layers) && os.Geteuid() == 0 {
		asm, err := assemble.NewHardlink(scratch)
		if err != nil {
			return nil, false, nil, err
		}
		next = func(i int) error {
			return asm.Add(ctx, assemble.Tree{Dir: trees[i].Dir, Record: trees[i].Record})
		}
		return next, true, asm.Close, nil
	}
	c, err := cas.Open(ctx, p.opts.Cache)
	if err != nil {
		return nil, false, nil, err
	}
	a, err := layer.NewApplier(scratch)
	if err != nil {
		c.Close()
		return nil, false, nil, err
	}
	next = func(i int) error {
		d := img.Layers[i]
		l := cas.Layer{Digest: d.Digest, Size: d.Size, MediaType: d.MediaType, DiffID: img.DiffIDs[i]}
		src, err := c.OpenBlob(d.Digest)
		var rc io.ReadCloser = src
		if err != nil && p.opts.Offline {
			return offlinef("layer %s of %s: not in the cache", d.Digest, img.Digest)
		}
		if err != nil {
			if rc, err = p.client.OpenBlob(ctx, img.Ref, d); err != nil {
				return err
			}
		}
		defer rc.Close()
		return cas.Stream(ctx, l, rc, nil, func(tar io.Reader) error { return a.Apply(ctx, tar) })
	}
	var once sync.Once
	return next, false, func() { once.Do(func() { a.Close(); c.Close() }) }, nil
}

// checkout makes r's index HEAD's tree with DEST's stat data, so that git status reads no file:
// writeGitIndex writes it from what the scratch walk knows, and git write-tree must find HEAD's
// tree in it. Should it not (a bug), a warning says so and git makes the index itself.
func (p *puller) checkout(ctx context.Context, r repo, s *gitStream) error {
	err := writeGitIndex(r.dir, s.prev, s.ids)
	if err == nil {
		var tree, head string
		if tree, err = r.short(ctx, "write-tree"); err == nil {
			if head, err = r.short(ctx, "rev-parse", "HEAD^{tree}"); err == nil && tree != head {
				err = fmt.Errorf("its tree is %s, HEAD's %s", tree, head)
			}
		}
	}
	if err == nil {
		return nil
	}
	p.rep.send(Event{Kind: Warning, Message: fmt.Sprintf("git: the index written from the layers is not HEAD's (%v): git reads every file of the image to make it", err)})
	return refreshIndex(ctx, r)
}

// refreshIndex makes r's index HEAD's tree with git: read-tree leaves the stat data empty,
// and update-index --refresh reads and hashes every file of DEST to fill it in.
func refreshIndex(ctx context.Context, r repo) error {
	if _, err := r.short(ctx, "read-tree", "HEAD"); err != nil {
		return err
	}
	_, err := r.run(ctx, nil, "update-index", "-q", "--refresh")
	return err
}

// gitFile is what the scratch walk knows of a recorded path: its git mode and what tells a
// change (a file written again has a new ctime at least).
type gitFile struct {
	mode  uint32 // 0100644, 0100755 or 0120000
	ino   uint64
	size  int64
	mtime unix.Timespec
	ctime unix.Timespec
}

// gitStream writes a git fast-import stream of layer commits from the scratch rootfs.
type gitStream struct {
	w      *bufio.Writer
	root   string
	shared bool                 // root's files are the cache's (see gitScratch): never chmod them
	prev   map[string]gitFile   // what the last commit records
	ids    map[string]gitBlobID // the blob ids of prev's paths (and of some paths gone)
}

// commit walks the scratch rootfs and writes l's commit: the paths gone since the last commit,
// then those new or changed, with their content. mark i+1 names it; its parent is mark i.
func (s *gitStream) commit(ctx context.Context, l gitLayer, i int, name, email string, when int64, msg string) error {
	now := map[string]gitFile{}
	if err := walkGit(ctx, s.root, "", now); err != nil {
		return err
	}
	fmt.Fprintf(s.w, "commit %s\nmark :%d\ncommitter %s <%s> %d +0000\ndata %d\n%s\n", l.ref(), i+1, name, email, when, len(msg), msg)
	if i > 0 {
		fmt.Fprintf(s.w, "from :%d\n", i)
	}
	for p := range s.prev {
		if _, ok := now[p]; !ok {
			fmt.Fprintf(s.w, "D %s\n", fastImportPath(p))
		}
	}
	for p, f := range now {
		if old, ok := s.prev[p]; ok && old == f {
			continue
		}
		if err := s.content(p, f); err != nil {
			return err
		}
	}
	s.prev = now
	_, err := io.WriteString(s.w, "\n")
	return err
}

// content writes an M command for p with its content inline.
func (s *gitStream) content(p string, f gitFile) error {
	full := filepath.Join(s.root, p)
	if f.mode == 0o120000 {
		target, err := os.Readlink(full)
		if err != nil {
			return err
		}
		fmt.Fprintf(s.w, "M 120000 inline %s\ndata %d\n%s\n", fastImportPath(p), len(target), target)
		h := sha1.New()
		fmt.Fprintf(h, "blob %d\x00%s", len(target), target)
		s.ids[p] = gitBlobID(h.Sum(nil))
		return nil
	}
	file, err := os.OpenFile(full, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrPermission) && !s.shared && os.Chmod(full, fs.FileMode(f.mode&0o700|0o600)) == nil {
		// Not root: the scratch is this pull's own, its modes count only for the exec bit.
		file, err = os.OpenFile(full, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	}
	if err != nil {
		return err
	}
	defer file.Close()
	fmt.Fprintf(s.w, "M %o inline %s\ndata %d\n", f.mode, fastImportPath(p), f.size)
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", f.size)
	if _, err := io.CopyN(io.MultiWriter(s.w, h), file, f.size); err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	s.ids[p] = gitBlobID(h.Sum(nil))
	return s.w.WriteByte('\n')
}

// walkGit adds to out what git records below root/rel: regular files and symlinks, by slash
// path relative to root, never entering a name .git (in any case).
func walkGit(ctx context.Context, root, rel string, out map[string]gitFile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := os.ReadDir(filepath.Join(root, rel))
	if errors.Is(err, fs.ErrPermission) && os.Chmod(filepath.Join(root, rel), 0o700) == nil {
		ents, err = os.ReadDir(filepath.Join(root, rel)) // not root: see content
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.EqualFold(e.Name(), ".git") {
			continue
		}
		p := e.Name()
		if rel != "" {
			p = rel + "/" + p
		}
		switch t := e.Type(); {
		case t.IsDir():
			if err := walkGit(ctx, root, p, out); err != nil {
				return err
			}
		case t.IsRegular() || t&fs.ModeSymlink != 0:
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, p), &st); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			f := gitFile{mode: 0o100644, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
			switch {
			case st.Mode&unix.S_IFMT == unix.S_IFLNK:
				f.mode = 0o120000
			case st.Mode&unix.S_IFMT != unix.S_IFREG:
				continue
			case st.Mode&0o100 != 0:
				f.mode = 0o100755
			}
			out[p] = f
		}
	}
	return nil
}

// fastImportPath is p as a fast-import command takes it: as is, or C-quoted when it holds a
// newline or starts with a double quote.
func fastImportPath(p string) string {
	if !strings.Contains(p, "\n") && !strings.HasPrefix(p, `"`) {
		return p
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// gitHead reads the layer branch that HEAD names in dest, a git destination, and whether it is
// the top one (the highest n of the layer branches). It fails wrapping ErrNotGitDest when dest
// has no repository or HEAD is not a layer branch with a commit.
func gitHead(ctx context.Context, dest string) (head gitLayer, top bool, err error) {
	if fi, err := os.Lstat(filepath.Join(dest, ".git")); err != nil || !fi.IsDir() {
		return gitLayer{}, false, fmt.Errorf("%s: %w (no .git directory)", dest, ErrNotGitDest)
	}
	r := repo{dest}
	ref, err := r.short(ctx, "symbolic-ref", "-q", "HEAD")
	if err != nil {
		return gitLayer{}, false, fmt.Errorf("%s: %w (HEAD is no branch)", dest, ErrNotGitDest)
	}
	head, ok := parseLayerBranch(strings.TrimPrefix(ref, "refs/heads/"))
	if !ok || !strings.HasPrefix(ref, "refs/heads/") {
		return gitLayer{}, false, fmt.Errorf("%s: %w (HEAD is %s, not a layer branch)", dest, ErrNotGitDest, ref)
	}
	if _, err := r.short(ctx, "rev-parse", "--verify", "-q", ref+"^{commit}"); err != nil {
		return gitLayer{}, false, fmt.Errorf("%s: %w (branch %s has no commit)", dest, ErrNotGitDest, head.branch())
	}
	out, err := r.short(ctx, "for-each-ref", "--format=%(refname)", "refs/heads/")
	if err != nil {
		return gitLayer{}, false, err
	}
	top = true
	for _, line := range strings.Split(out, "\n") {
		if l, ok := parseLayerBranch(strings.TrimPrefix(line, "refs/heads/")); ok && l.N > head.N {
			top = false
		}
	}
	return head, top, nil
}

// gitCommitLayer records dest's current state as the layer branch layer_<n>_<blob's hex>, n one
// above HEAD's, made from HEAD's branch, which must be the top one (else ErrNotTopLayer), with
// the message msg, and checks it out (HEAD names it, the index holds its tree). What it records
// is what git add --all --force records in dest (a nested repository becomes a gitlink);
// dest/.git is never added. dest's files are only read. If it fails, or if the caller calls
// undo (what follows the commit failed), the branch goes and HEAD and the index are as before
// (see gitUncommit).
func gitCommitLayer(ctx context.Context, dest string, blob digest.Digest, msg string) (undo func(context.Context) error, err error) {
	if err := checkGit(); err != nil {
		return nil, err
	}
	if err := blob.Validate(); err != nil || blob.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("commit layer of %s: blob %q: want a sha256 digest", dest, blob)
	}
	head, top, err := gitHead(ctx, dest)
	if err != nil {
		return nil, err
	}
	if !top {
		return nil, fmt.Errorf("%s: HEAD is %s: %w", dest, head.branch(), ErrNotTopLayer)
	}
	next := gitLayer{N: head.N + 1, Blob: blob}
	commit := "" // the branch's, once it is made
	back := func(ctx context.Context) error { return gitUncommit(ctx, dest, head, next, commit) }
	defer func() {
		if err != nil {
			if uerr := back(context.WithoutCancel(ctx)); uerr != nil {
				err = fmt.Errorf("%w (and undoing it: %v)", err, uerr)
			}
		}
	}()
	r := repo{dest}
	if _, err := r.run(ctx, nil, "add", "--all", "--force"); err != nil {
		return nil, fmt.Errorf("commit %s: %w", dest, err)
	}
	tree, err := r.short(ctx, "write-tree")
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", dest, err)
	}
	name, email := r.identity(ctx)
	cmd := r.cmd(ctx, strings.NewReader(msg), "commit-tree", tree, "-p", head.ref(), "-F", "-")
	cmd.Env = append(cmd.Env, "GIT_AUTHOR_NAME="+name, "GIT_AUTHOR_EMAIL="+email,
		"GIT_COMMITTER_NAME="+name, "GIT_COMMITTER_EMAIL="+email)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("commit %s: %w", dest, gitError([]string{"commit-tree"}, err, errb.String()))
	}
	made := strings.TrimSpace(out.String())
	// An empty old value: the branch must not exist yet.
	if _, err := r.short(ctx, "update-ref", "-m", "roots commit", next.ref(), made, ""); err != nil {
		return nil, fmt.Errorf("commit %s: %w", dest, err)
	}
	commit = made
	if _, err := r.short(ctx, "symbolic-ref", "HEAD", next.ref()); err != nil {
		return nil, fmt.Errorf("commit %s: %w", dest, err)
	}
	return back, nil
}

// gitTakeBack takes back what a killed gitCommitLayer of next on top of head did in dest,
// whatever it got to: HEAD and the index back on head, and next's branch deleted if it was made.
func gitTakeBack(ctx context.Context, dest string, head, next gitLayer) error {
	commit, err := repo{dest}.short(ctx, "rev-parse", "--verify", "-q", next.ref()+"^{commit}")
	if err != nil {
		commit = "" // never made
	}
	return gitUncommit(ctx, dest, head, next, commit)
}

// gitUncommit takes back what gitCommitLayer did in dest: HEAD names head's branch again, the
// branch next is deleted if it holds commit ("": it was not made), and the index holds head's
// tree, refreshed from dest (as a pull leaves it). It goes on past a failure.
func gitUncommit(ctx context.Context, dest string, head, next gitLayer, commit string) error {
	r := repo{dest}
	var errs []error
	if _, err := r.short(ctx, "symbolic-ref", "HEAD", head.ref()); err != nil {
		errs = append(errs, err)
	}
	if commit != "" {
		if _, err := r.short(ctx, "update-ref", "-d", next.ref(), commit); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := r.short(ctx, "read-tree", head.ref()); err != nil {
		errs = append(errs, err)
	} else if _, err := r.run(ctx, nil, "update-index", "-q", "--refresh"); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("git: %s back on %s: %w", dest, head.branch(), err)
	}
	return nil
}
