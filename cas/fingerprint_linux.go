package cas

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/cas/layer"
)

// A fingerprint sums what a write through a hardlinked destination changes in
// a tree: the inode number, type and mode, owner, size and mtime of every
// non-directory. Directories are never shared with a destination (assembly
// makes its own), and ctimes and link counts change whenever a destination
// links or unlinks a file, so neither counts.
//
// Checking it costs one fstatat per entry, no reads: a few milliseconds per
// thousand files, against a re-unpack that reads and writes every byte. A
// write that keeps both the size and the mtime (a deliberate `touch -r`) goes
// unseen; `roots check` does no better, by design: the blob is what a tree can
// be compared with, and re-unpacking is what check does when in doubt.
//
// Two forms exist. "v1:" is the SHA-256 of the entries' lines in name order,
// which only a walk of the finished tree can make. "v2:", what trees are
// recorded with now, adds up the SHA-256 of each line (four 64-bit lanes,
// modulo 2^64): the order does not count, so the unpacker sums each entry as
// it writes it (see fpObserver) and the tree needs no walk before it is
// published. A walk computes both, and a record is checked in its own form.

// fingerprintMatches reports whether the tree dir matches the fingerprint want.
func fingerprintMatches(ctx context.Context, dir, want string) (bool, error) {
	w, err := walkFingerprint(ctx, dir, want)
	if err != nil {
		return false, err
	}
	return w.matches(want), nil
}

// fpWalk is what one fingerprint walk found.
type fpWalk struct {
	v1    string // "" unless the walk was asked for the "v1:" form
	v2    fpSum
	names map[uint64]uint64 // inode → names in dir, for files with several links
	nlink map[uint64]uint64 // inode → link count, same files
	// shared counts the non-directories that are not whiteouts (0:0
	// character devices): what a fix-up may share with trees.
	shared int
}

// fp is the fingerprint a new record gets.
func (w *fpWalk) fp() string { return w.v2.String() }

// matches reports whether want, in either form, is the fingerprint of what w walked.
func (w *fpWalk) matches(want string) bool {
	return want != "" && (want == w.v1 || want == w.v2.String())
}

// outside reports whether a non-directory has links outside the walked tree:
// a link count higher than the number of its names there (a hardlinked
// destination, or a fix-up, shares it).
func (w *fpWalk) outside() bool {
	for ino, n := range w.names {
		if w.nlink[ino] > n {
			return true
		}
	}
	return false
}

// entry counts the non-directory whose line is line and stat st.
func (w *fpWalk) entry(line []byte, st *unix.Stat_t) {
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		w.shared++
	}
	if st.Nlink > 1 {
		w.names[st.Ino]++
		w.nlink[st.Ino] = uint64(st.Nlink)
	}
	w.v2.add(line)
}

// merge adds what o walked to w.
func (w *fpWalk) merge(o *fpWalk) {
	for i := range w.v2 {
		w.v2[i] += o.v2[i]
	}
	w.shared += o.shared
	for ino, n := range o.names {
		w.names[ino] += n
		w.nlink[ino] = o.nlink[ino]
	}
}

func newFPWalk() *fpWalk { return &fpWalk{names: map[uint64]uint64{}, nlink: map[uint64]uint64{}} }

// walkFingerprint walks dir once. The "v1:" form, a hash in name order, is summed
// only when want is one; the "v2:" form does not depend on the order, so its walk
// stats the directories on several goroutines at once (a cold tree's inodes are
// reads from the disk, and more than one can be under way).
func walkFingerprint(ctx context.Context, dir, want string) (*fpWalk, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	if strings.HasPrefix(want, "v1:") {
		h := sha256.New()
		w := newFPWalk()
		if err := w.dir(&dirWalker{ctx: ctx, h: h}, fpDir{fd: fd}); err != nil {
			return nil, err
		}
		w.v1 = "v1:" + hex.EncodeToString(h.Sum(nil))
		return w, nil
	}
	return walkParallel(ctx, fd)
}

// walkers is how many goroutines a "v2:" walk uses: more than the cores, since
// most of a cold walk is waiting for inode tables.
const walkers = 8

// fpDir is a directory a parallel walk has still to read.
type fpDir struct {
	fd  int
	rel string // "" or ending in "/"
}

// walkParallel sums the tree below the directory fd, which it closes, on
// walkers goroutines. A goroutine hands a subdirectory to the others when one
// of them is free to take it, and walks it itself otherwise, so that no
// goroutine waits on another and the open directories stay few.
func walkParallel(ctx context.Context, fd int) (*fpWalk, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan fpDir)
	var pending sync.WaitGroup // directories handed over and not yet walked
	var mu sync.Mutex
	var first error
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	parts := make([]*fpWalk, walkers)
	var done sync.WaitGroup
	for i := range parts {
		w := newFPWalk()
		parts[i] = w
		done.Add(1)
		go func() {
			defer done.Done()
			x := &dirWalker{ctx: ctx, queue: queue, pending: &pending}
			for d := range queue {
				if err := w.dir(x, d); err != nil {
					fail(err)
				}
				pending.Done()
			}
		}()
	}
	pending.Add(1)
	queue <- fpDir{fd: fd}
	pending.Wait()
	close(queue)
	done.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := parts[0]
	for _, o := range parts[1:] {
		w.merge(o)
	}
	return w, nil
}

// dirWalker is how one goroutine walks directories.
type dirWalker struct {
	ctx     context.Context
	h       hash.Hash       // non-nil: the "v1:" hash, in name order, on this goroutine alone
	queue   chan fpDir      // nil: no other goroutine takes subdirectories
	pending *sync.WaitGroup // directories handed over and not yet walked
	line    []byte
}

// handOver gives d to an idle goroutine, if there is one.
func (x *dirWalker) handOver(d fpDir) bool {
	if x.queue == nil {
		return false
	}
	x.pending.Add(1)
	select {
	case x.queue <- d:
		return true
	default:
		x.pending.Done()
		return false
	}
}

// dir sums the entries below d into w (and into x.h, in name order) and closes d's descriptor.
func (w *fpWalk) dir(x *dirWalker, d fpDir) error {
	f := os.NewFile(uintptr(d.fd), d.rel)
	defer f.Close()
	if err := x.ctx.Err(); err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		return &os.PathError{Op: "read", Path: d.rel, Err: err}
	}
	if x.h != nil {
		slices.Sort(names)
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "stat", Path: d.rel + name, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			x.line = fpLine(x.line[:0], d.rel, name, &st)
			if x.h != nil {
				x.h.Write(x.line)
			}
			w.entry(x.line, &st)
			continue
		}
		cfd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: d.rel + name, Err: err}
		}
		sub := fpDir{fd: cfd, rel: d.rel + name + "/"}
		if x.handOver(sub) {
			continue
		}
		if err := w.dir(x, sub); err != nil {
			return err
		}
	}
	return nil
}

// fpLine appends the fingerprint line of the non-directory dir+name (dir "" or ending in "/").
func fpLine(line []byte, dir, name string, st *unix.Stat_t) []byte {
	line = append(line, dir...)
	line = append(line, name...)
	line = append(line, 0)
	for _, n := range []uint64{st.Ino, uint64(st.Mode), uint64(st.Uid), uint64(st.Gid), uint64(st.Size), uint64(st.Mtim.Sec), uint64(st.Mtim.Nsec)} {
		line = strconv.AppendUint(line, n, 16)
		line = append(line, ' ')
	}
	line[len(line)-1] = '\n'
	return line
}

// fpSum is a "v2:" fingerprint being summed.
type fpSum [4]uint64

func (s *fpSum) add(line []byte) {
	h := sha256.Sum256(line)
	for i := range s {
		s[i] += binary.LittleEndian.Uint64(h[8*i:])
	}
}

func (s fpSum) String() string {
	var b [32]byte
	for i, v := range s {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	return "v2:" + hex.EncodeToString(b[:])
}

// An fpObserver sums the "v2:" fingerprint of a tree while it is unpacked, one fstatat per
// non-directory the unpacker reports, and passes every change on to next (nil: nobody). Its
// sum is the tree's only while nothing was removed or started again and the tree holds nothing
// the unpacker does not report (whiteouts, opaque directories): fingerprint says.
type fpObserver struct {
	next layer.Observer
	sum  fpSum
	lost bool // something the sum cannot follow happened: the tree is walked
	line []byte
}

func (o *fpObserver) Wrote(dirfd int, name, rel string) {
	if !o.lost {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			o.lost = true
		} else {
			dir := rel[:len(rel)-len(name)]
			o.line = fpLine(o.line[:0], dir, name, &st)
			o.sum.add(o.line)
		}
	}
	if o.next != nil {
		o.next.Wrote(dirfd, name, rel)
	}
}

func (o *fpObserver) Removed(rel string, dir bool) {
	o.lost = true
	if o.next != nil {
		o.next.Removed(rel, dir)
	}
}

func (o *fpObserver) Reset() {
	o.lost = true
	if o.next != nil {
		o.next.Reset()
	}
}

// fingerprint returns the tree's "v2:" fingerprint as summed while it was unpacked into
// rec, or "" when a walk must make it.
func (o *fpObserver) fingerprint(rec layer.Record) string {
	if o.lost || len(rec.Whiteouts) > 0 || len(rec.Opaque) > 0 {
		return ""
	}
	return o.sum.String()
}
