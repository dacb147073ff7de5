package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"io"
	"reflect"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	blockSize = 4096          // holes are made of whole blocks of this size, aligned in the file
	sparseMin = 4 * blockSize // smaller files are written in one go
)

var zeroBlock [blockSize]byte

// content writes the data of the entry hdr, which tr is positioned on, into the new file fd, and
// leaves the file sparse: a sparse entry's holes are never generated (a 1 TiB entry with 4 bytes
// of data is written in microseconds), and all-zero blocks of other files of sparseMin bytes or
// more are not written either. The file is extended to its size at the end.
func (w *writer) content(ctx context.Context, fd int, tr *tar.Reader, hdr *tar.Header) error {
	f := fileWriter{ctx: ctx, fd: fd, buf: *w.buf, skipZeros: hdr.Size >= sparseMin}
	var err error
	if wt := sparseWriterTo(tr, hdr); wt != nil {
		_, err = wt.WriteTo(&f)
	} else {
		_, err = f.ReadFrom(tr)
	}
	if err != nil {
		return err
	}
	if f.end < hdr.Size {
		if err := unix.Ftruncate(fd, hdr.Size); err != nil {
			return err
		}
	}
	if w.tree && hdr.Size >= writeBehindMin {
		disk.StartWriteback(fd, 0, 0) // the cache syncs the tree when it is published
	}
	return nil
}

// writeBehindMin is the smallest file of a tree whose writeback starts as soon as it is
// written (see disk.StartWriteback), so that the sync before publishing waits less.
const writeBehindMin = 1 << 20

// fileWriter writes a new file (created empty) at the offsets it is given, never backwards: an
// io.WriteSeeker whose Seek moves over what is left unwritten, which reads back as zeros (a hole,
// or the end that content extends). With skipZeros, Write leaves out the all-zero blocks (aligned
// in the file) of what it is given too. ReadFrom copies in large aligned chunks through buf.
type fileWriter struct {
	ctx       context.Context
	fd        int
	buf       []byte
	skipZeros bool
	off       int64 // where the next Write goes
	end       int64 // the end of the data written so far
}

func (f *fileWriter) Write(b []byte) (int, error) {
	if !f.skipZeros {
		if err := f.writeAt(b, f.off); err != nil {
			return 0, err
		}
		f.off += int64(len(b))
		return len(b), nil
	}
	run := -1 // start of the pending run of blocks with data
	for i := 0; i < len(b); {
		j := min(len(b), i+blockSize-int((f.off+int64(i))%blockSize))
		if !isZero(b[i:j]) {
			if run < 0 {
				run = i
			}
		} else if run >= 0 {
			if err := f.writeAt(b[run:i], f.off+int64(run)); err != nil {
				return 0, err
			}
			run = -1
		}
		i = j
	}
	if run >= 0 {
		if err := f.writeAt(b[run:], f.off+int64(run)); err != nil {
			return 0, err
		}
	}
	f.off += int64(len(b))
	return len(b), nil
}

// writeAt writes all of b at off.
func (f *fileWriter) writeAt(b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(f.fd, b, off)
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	f.end = max(f.end, off)
	return nil
}

// Seek moves the offset of the next Write forward (io.SeekStart or io.SeekCurrent), leaving what
// it skips unwritten.
func (f *fileWriter) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	default:
		return f.off, fmt.Errorf("seek whence %d: %w", whence, errors.ErrUnsupported)
	}
	if offset < f.off {
		return f.off, fmt.Errorf("seek back to %d from %d: %w", offset, f.off, errors.ErrUnsupported)
	}
	f.off = offset
	return offset, nil
}

// ReadFrom copies r to its end through buf, in full chunks (one pwrite each), and stops early
// when the context is cancelled.
func (f *fileWriter) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		n, err := fill(r, f.buf)
		if n > 0 {
			if _, werr := f.Write(f.buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		switch {
		case err == io.EOF:
			return total, nil
		case err != nil:
			return total, err
		}
		if err := f.ctx.Err(); err != nil {
			return total, err
		}
	}
}

// fill reads from r until b is full, r ends (io.EOF) or fails.
func fill(r io.Reader, b []byte) (int, error) {
	n, idle := 0, 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m > 0 {
			idle = 0
		} else if idle++; idle > 100 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

func isZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// sparseWriterTo returns the WriteTo method of tr's current file when hdr is a sparse entry (old
// GNU 'S', or GNU PAX 0.0, 0.1 or 1.0), nil otherwise. archive/tar writes a sparse file to an
// io.WriteSeeker by seeking over its holes instead of generating their zeros, but keeps that
// method of its Reader unexported until it exports sparse support (golang.org/issue/22735);
// the file reader it delegates to exports it. Reading the field only (through reflect) and
// calling its exported method keeps the Reader's own state right: the next call to Next skips
// what the method left. Should a Go release rename the field, sparse entries are read through
// Read, zeros included: still sparse on disk, only slower (TestSparseFileStaysSparse fails on
// the time it takes then).
func sparseWriterTo(tr *tar.Reader, hdr *tar.Header) io.WriterTo {
	if !isSparse(hdr) {
		return nil
	}
	v := reflect.ValueOf(tr).Elem().FieldByName("curr")
	if !v.IsValid() || v.Kind() != reflect.Interface || v.IsNil() {
		return nil
	}
	wt, _ := reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem().Interface().(io.WriterTo)
	return wt
}

// isSparse reports whether hdr describes a sparse file.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
