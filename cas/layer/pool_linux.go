package layer

import (
	"archive/tar"
	"errors"
	"io"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// The small regular files of a layer are written by a few goroutines of the writer's own (a
// pool), so that a layer of many small files keeps every core busy: the goroutine that reads
// the tar only decompresses, parses and copies their bytes, and hands them over in batches of
// one directory. Everything else — directories, symlinks, hardlinks, devices, whiteouts, large
// and sparse files, and every decision about what a path is — stays on the reading goroutine,
// in the stream's order.
//
// Order is kept where it matters, for a path: the reading goroutine knows every path handed to
// the pool since the pool was last drained (pending) and every directory above one (under),
// and drains the pool — waits for every batch, then writes what the pool gave back — before it
// touches any of them: before it writes or removes an entry at such a path or above one, and
// before a walk creates or replaces a parent there (walker.step). A pool goroutine that finds
// its path taken (EEXIST: the layer wrote it already, or a lower layer did) gives the rest of
// its batch back, and the reading goroutine writes those files at the next drain, in order, as
// file does. Hardlinks, whiteouts and opaque markers drain first.

const (
	poolMaxFile    = sparseMin // larger files are written by the reading goroutine (holes, writeback)
	poolBatchFiles = 64        // files per batch
	poolBytes      = 256 << 10 // bytes per batch
	poolQueue      = 4         // batches handed over and not yet taken
	poolMaxJobs    = 8192      // files handed over before the pool is drained (bounds pending)
	poolMaxSlack   = 4 << 20   // bytes given back before the pool is drained
)

// A poolFile is one small regular file for the pool.
type poolFile struct {
	seq  int
	rel  string
	name string
	data []byte
	size int64
	m    metadata
}

// A poolBatch is files of one directory, in the stream's order.
type poolBatch struct {
	dirfd int // a descriptor of the directory, the batch's own
	files []poolFile
	arena []byte
	back  int // files[back:] were given back (EEXIST), or not written after an error
	err   error
}

type pool struct {
	w       *writer
	work    chan *poolBatch
	wg      sync.WaitGroup // batches handed over and not finished
	workers sync.WaitGroup

	mu   sync.Mutex
	done []*poolBatch // finished batches that gave files back or failed
	err  error
	back int // bytes given back

	// The reading goroutine's side.
	cur     *poolBatch
	curDir  string
	seq     int
	jobs    int
	pending map[string]struct{} // files handed over since the last drain
	under   map[string]int      // directories above them
}

var arenaPool = sync.Pool{New: func() any { b := make([]byte, poolBytes); return &b }}

// poolWorkers is how many goroutines write a layer's small files.
func poolWorkers() int { return min(runtime.GOMAXPROCS(0), 4) }

func (w *writer) startPool() {
	if n := poolWorkers(); n > 1 {
		p := &pool{w: w, work: make(chan *poolBatch, poolQueue), pending: map[string]struct{}{}, under: map[string]int{}}
		p.workers.Add(n)
		for range n {
			go p.run()
		}
		w.pool = p
	}
}

// stopPool drains the pool and ends its goroutines; after a failure (abandon) it only waits
// for them and writes nothing more.
func (w *writer) stopPool(abandon bool) error {
	p := w.pool
	if p == nil {
		return nil
	}
	var err error
	if abandon {
		if p.cur != nil {
			p.release(p.cur)
			p.cur = nil
		}
		p.wg.Wait()
		for _, b := range p.done {
			p.release(b)
		}
		p.done = nil
	} else {
		err = p.drain()
	}
	close(p.work)
	p.workers.Wait()
	w.pool = nil
	return err
}

// pooled reports whether the entry goes to the pool: a plain small regular file in a target
// where a new file needs nothing but its own metadata.
func (w *writer) pooled(hdr *tar.Header, m *metadata) bool {
	return w.pool != nil && hdr.Typeflag == tar.TypeReg && hdr.Size < poolMaxFile && len(m.xattrs) == 0 &&
		!w.stripACL && !isSparse(hdr)
}

// settle drains the pool if rel, or anything above or below it, was handed to it.
func (w *writer) settle(rel string) error {
	if w.pool.conflicts(rel) {
		return w.pool.drain()
	}
	return nil
}

func (p *pool) conflicts(rel string) bool {
	if p == nil || len(p.pending) == 0 {
		return false
	}
	if _, ok := p.pending[rel]; ok {
		return true
	}
	if p.under[rel] > 0 {
		return true
	}
	for dir := rel; dir != ""; {
		dir, _ = split(dir)
		if _, ok := p.pending[dir]; ok {
			return true
		}
	}
	return false
}

// add hands the file rel (name in dirfd, dir resolved) to the pool, its data read from tr.
func (p *pool) add(dirfd int, dir, rel, name string, tr *tar.Reader, hdr *tar.Header, m *metadata) error {
	if p.cur != nil && (p.curDir != dir || len(p.cur.files) == poolBatchFiles || len(p.cur.arena)+int(hdr.Size) > cap(p.cur.arena)) {
		p.flush()
	}
	if p.cur == nil {
		fd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return err
		}
		a := arenaPool.Get().(*[]byte)
		p.cur, p.curDir = &poolBatch{dirfd: fd, arena: (*a)[:0]}, dir
	}
	b := p.cur
	start := len(b.arena)
	b.arena = b.arena[:start+int(hdr.Size)]
	data := b.arena[start:]
	if _, err := io.ReadFull(tr, data); err != nil {
		b.arena = b.arena[:start]
		return err
	}
	p.seq++
	b.files = append(b.files, poolFile{seq: p.seq, rel: rel, name: name, data: data, size: hdr.Size, m: *m})
	p.pending[rel] = struct{}{}
	for d := rel; d != ""; {
		d, _ = split(d)
		p.under[d]++
	}
	p.jobs++
	return nil
}

// flush hands the current batch over.
func (p *pool) flush() {
	if p.cur == nil {
		return
	}
	p.wg.Add(1)
	p.work <- p.cur
	p.cur = nil
}

// busy reports whether the pool should be drained before more is handed over.
func (p *pool) busy() bool {
	if p.jobs >= poolMaxJobs {
		return true
	}
	if p.jobs%poolBatchFiles != 0 {
		return false // the pool goroutines' state is looked at once a batch, not per file
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err != nil || p.back > poolMaxSlack
}

// drain waits for every batch, writes the files given back, in order, and forgets what was
// pending. It returns the first error of a pool goroutine.
func (p *pool) drain() error {
	p.flush()
	p.wg.Wait()
	p.mu.Lock()
	done, err := p.done, p.err
	p.done, p.err, p.back = nil, nil, 0
	p.mu.Unlock()
	clear(p.pending)
	clear(p.under)
	p.jobs = 0
	if err == nil {
		var back []poolBack
		for _, b := range done {
			for i := b.back; i < len(b.files); i++ {
				back = append(back, poolBack{b, &b.files[i]})
			}
		}
		slices.SortFunc(back, func(x, y poolBack) int { return x.f.seq - y.f.seq })
		for _, x := range back {
			if err = p.w.fileBytes(x.b.dirfd, x.f); err != nil {
				break
			}
		}
	}
	for _, b := range done {
		p.release(b)
	}
	return err
}

type poolBack struct {
	b *poolBatch
	f *poolFile
}

func (p *pool) release(b *poolBatch) {
	unix.Close(b.dirfd)
	a := b.arena[:0]
	arenaPool.Put(&a)
}

// run is a pool goroutine.
func (p *pool) run() {
	defer p.workers.Done()
	for b := range p.work {
		p.write(b)
		p.wg.Done()
	}
}

// write writes a batch, then tells the observer of the files it wrote, in order.
func (p *pool) write(b *poolBatch) {
	w := p.w
	b.back = len(b.files)
	for i := range b.files {
		f := &b.files[i]
		const flags = unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_WRONLY | unix.O_CLOEXEC
		fd, err := unix.Openat(b.dirfd, f.name, flags, f.m.perm&0o777)
		if err == unix.EEXIST {
			b.back = i
			break
		}
		if err == nil {
			err = writeAll(fd, f.data)
			if err == nil {
				err = w.setMeta(object{fd: fd, rel: f.rel}, &f.m, !w.createdExact(f.m.perm))
			}
			if cerr := unix.Close(fd); err == nil {
				err = cerr
			}
		}
		if err != nil {
			b.back, b.err = i, &fileError{rel: f.rel, err: err}
			break
		}
	}
	if w.obs != nil && b.back > 0 {
		w.obsMu.Lock()
		for i := range b.back {
			if f := &b.files[i]; !isAUFSMeta(f.rel) {
				w.obs.Wrote(b.dirfd, f.name, f.rel)
			}
		}
		w.obsMu.Unlock()
	}
	if b.back == len(b.files) && b.err == nil {
		p.release(b)
		return
	}
	p.mu.Lock()
	if b.err != nil && p.err == nil {
		p.err = b.err
	}
	for _, f := range b.files[b.back:] {
		p.back += len(f.data)
	}
	p.done = append(p.done, b)
	p.mu.Unlock()
}

func writeAll(fd int, b []byte) error {
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += n
	}
	return nil
}

// fileError is an error of the pool, named by its entry (the reading goroutine names its own).
type fileError struct {
	rel string
	err error
}

func (e *fileError) Error() string { return display(e.rel) + ": " + e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

// fileBytes writes a file the pool gave back, as file does.
func (w *writer) fileBytes(dirfd int, f *poolFile) error {
	if err := w.create(dirfd, f.rel, f.name, &f.m, func(fd int) error { return writeAll(fd, f.data) }); err != nil {
		return &fileError{rel: f.rel, err: err}
	}
	return nil
}

// drain waits for the pool, if there is one (see pool.drain).
func (w *writer) drain() error {
	if w.pool == nil {
		return nil
	}
	return w.pool.drain()
}

// errRewalk: a walk drained the pool on its way, which may have removed what it had open.
var errRewalk = errors.New("walk again")

// settleStep is called by a walk before it creates or replaces the directory rel: if the pool
// was given rel, it is drained first and the walk starts again.
func (w *writer) settleStep(rel string) error {
	p := w.pool
	if p == nil || len(p.pending) == 0 {
		return nil
	}
	if _, ok := p.pending[rel]; !ok {
		return nil
	}
	if err := p.drain(); err != nil {
		return err
	}
	return errRewalk
}
