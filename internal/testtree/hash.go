package testtree

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// HashBytes is Entry.Hash of a regular file holding b: its sha256, or for BigFile and over
// the hash of its runs of non-zero bytes.
func HashBytes(b []byte) string {
	if len(b) < BigFile {
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	var r runs
	r.feed(0, b)
	return r.sum(int64(len(b)))
}

// File, Dir and Symlink are expected entries: type, mode, content or target; owner root.
func File(mode fs.FileMode, body string) Entry {
	return Entry{Type: "f", Mode: mode, Size: int64(len(body)), Hash: HashBytes([]byte(body))}
}

func Dir(mode fs.FileMode) Entry { return Entry{Type: "d", Mode: mode} }

func Symlink(target string) Entry { return Entry{Type: "l", Link: target} }

// Frag is a piece of data at an offset of a (sparse) file.
type Frag struct {
	Off  int64
	Data string
}

// Sparse is the expected entry of a regular file of size bytes that holds frags and zeros
// elsewhere, without making the file in memory when it is BigFile or over.
func Sparse(mode fs.FileMode, size int64, frags ...Frag) Entry {
	e := Entry{Type: "f", Mode: mode, Size: size}
	if size < BigFile {
		b := make([]byte, size)
		for _, f := range frags {
			copy(b[f.Off:], f.Data)
		}
		e.Hash = HashBytes(b)
		return e
	}
	frags = append([]Frag(nil), frags...)
	sort.Slice(frags, func(i, j int) bool { return frags[i].Off < frags[j].Off })
	var r runs
	for _, f := range frags {
		r.feed(f.Off, []byte(f.Data))
	}
	e.Hash = r.sum(size)
	return e
}

// OctalMode turns the octal bits 0o4000, 0o2000, 0o1000 into Go's mode bits.
func OctalMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func nanoTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// runs hashes a file by its maximal runs of non-zero bytes (offset, length, bytes): two files
// of the same size are equal exactly when their hashes are. feed must be called with
// increasing offsets.
type runs struct {
	buf   bytes.Buffer // the current run
	start int64        // its offset
	h     []string     // finished runs, hashed
}

func (r *runs) feed(off int64, b []byte) {
	if r.buf.Len() > 0 && off != r.start+int64(r.buf.Len()) {
		r.end()
	}
	for i := 0; i < len(b); {
		if b[i] == 0 {
			r.end()
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] != 0 {
			j++
		}
		if r.buf.Len() == 0 {
			r.start = off + int64(i)
		}
		r.buf.Write(b[i:j])
		i = j
	}
}

func (r *runs) end() {
	if r.buf.Len() == 0 {
		return
	}
	s := sha256.Sum256(r.buf.Bytes())
	r.h = append(r.h, fmt.Sprintf("%d+%d:%x", r.start, r.buf.Len(), s[:8]))
	r.buf.Reset()
}

func (r *runs) sum(size int64) string {
	r.end()
	s := sha256.Sum256([]byte(strings.Join(r.h, ",")))
	return fmt.Sprintf("runs:%d:%x", size, s[:12])
}
