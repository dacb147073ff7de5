package testtree

import (
	"archive/tar"
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// ZeroMode asks Tar.Add for mode 0000: a zero Mode means the default.
const ZeroMode = registrytest.ZeroMode

// Tar builds an uncompressed tar with archive/tar: entries, blocks written by hand, and bytes
// after the end.
type Tar struct {
	t   testing.TB
	buf bytes.Buffer
	tw  *tar.Writer
}

// NewTar starts a tar; a failure to encode fails t.
func NewTar(t testing.TB) *Tar {
	a := &Tar{t: t}
	a.tw = tar.NewWriter(&a.buf)
	return a
}

// Add writes one entry, zero values made defaults as registrytest.SetDefaults does (a PAX
// global header is written as it is); a regular file's size is that of body.
func (a *Tar) Add(h tar.Header, body string) *Tar {
	a.t.Helper()
	if h.Typeflag != tar.TypeXGlobalHeader {
		registrytest.SetDefaults(&h)
	}
	if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeCont {
		h.Size = int64(len(body))
	}
	return a.Put(h, body)
}

// Put writes one entry as h says, Size included.
func (a *Tar) Put(h tar.Header, body string) *Tar {
	a.t.Helper()
	if err := a.tw.WriteHeader(&h); err != nil {
		a.t.Fatalf("tar header %q: %v", h.Name, err)
	}
	if body != "" {
		if _, err := a.tw.Write([]byte(body)); err != nil {
			a.t.Fatalf("tar body %q: %v", h.Name, err)
		}
	}
	return a
}

// Entries adds registrytest entries.
func (a *Tar) Entries(entries ...registrytest.Entry) *Tar {
	a.t.Helper()
	for _, e := range entries {
		a.Add(*e.Header(), string(e.Body))
	}
	return a
}

// Raw appends blocks written by hand (a header and its padded data).
func (a *Tar) Raw(b []byte) *Tar {
	a.t.Helper()
	if err := a.tw.Flush(); err != nil {
		a.t.Fatal(err)
	}
	a.buf.Write(b)
	return a
}

// Bytes ends the archive (two zero blocks) and returns it.
func (a *Tar) Bytes() []byte {
	a.t.Helper()
	if err := a.tw.Close(); err != nil {
		a.t.Fatal(err)
	}
	return a.buf.Bytes()
}

// Header encodes one ustar (gnu: old GNU) header block by hand, for what archive/tar will not
// write, with mtime registrytest.EntryTime. fill may change the block before the checksum.
func Header(name string, typ byte, mode, size int64, gnu bool, fill func(b []byte)) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], fmt.Sprintf("%07o\x00", mode))
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", registrytest.EntryTime.Unix()))
	b[156] = typ
	if gnu {
		copy(b[257:265], "ustar  \x00")
	} else {
		copy(b[257:265], "ustar\x0000")
	}
	if fill != nil {
		fill(b)
	}
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// Pad pads b with zeros to a whole number of blocks.
func Pad(b []byte) []byte {
	if n := len(b) % 512; n != 0 {
		b = append(b, make([]byte, 512-n)...)
	}
	return b
}

// PAX is a raw PAX extended header ('x', or 'g' for a global one) with records in order,
// values written as given (NUL bytes too).
func PAX(typ byte, recs ...[2]string) []byte {
	var data []byte
	for _, kv := range recs {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		data = append(data, strconv.Itoa(n)+rec...)
	}
	return append(Header("PaxHeader", typ, 0o644, int64(len(data)), false, nil), Pad(data)...)
}

// PAXSparse is a GNU PAX 1.0 sparse file of realSize bytes holding frags, zeros elsewhere.
func PAXSparse(name string, realSize int64, frags ...Frag) []byte {
	m := fmt.Sprintf("%d\n", len(frags))
	var data string
	for _, f := range frags {
		m += fmt.Sprintf("%d\n%d\n", f.Off, len(f.Data))
		data += f.Data
	}
	body := append(Pad([]byte(m)), data...)
	out := PAX('x', [2]string{"GNU.sparse.major", "1"}, [2]string{"GNU.sparse.minor", "0"},
		[2]string{"GNU.sparse.name", name}, [2]string{"GNU.sparse.realsize", strconv.FormatInt(realSize, 10)})
	out = append(out, Header("GNUSparseFile.0/"+path.Base(name), tar.TypeReg, 0o644, int64(len(body)), false, nil)...)
	return append(out, Pad(body)...)
}

// PAXSparse01 is a GNU PAX 0.1 sparse file (the map in GNU.sparse.map).
func PAXSparse01(name string, realSize int64, frags ...Frag) []byte {
	var m []string
	var data string
	for _, f := range frags {
		m = append(m, strconv.FormatInt(f.Off, 10), strconv.Itoa(len(f.Data)))
		data += f.Data
	}
	out := PAX('x', [2]string{"GNU.sparse.size", strconv.FormatInt(realSize, 10)},
		[2]string{"GNU.sparse.numblocks", strconv.Itoa(len(frags))},
		[2]string{"GNU.sparse.map", strings.Join(m, ",")}, [2]string{"GNU.sparse.name", name})
	out = append(out, Header("GNUSparseFile.0/"+path.Base(name), tar.TypeReg, 0o644, int64(len(data)), false, nil)...)
	return append(out, Pad([]byte(data))...)
}

// GNUSparse is an old-GNU sparse file ('S'), at most four fragments (in its header).
func GNUSparse(name string, realSize int64, frags ...Frag) []byte {
	var data string
	for _, f := range frags {
		data += f.Data
	}
	h := Header(name, tar.TypeGNUSparse, 0o644, int64(len(data)), true, func(b []byte) {
		for i, f := range frags {
			copy(b[386+i*24:], fmt.Sprintf("%011o\x00%011o\x00", f.Off, len(f.Data)))
		}
		copy(b[483:495], fmt.Sprintf("%011o\x00", realSize))
	})
	return append(h, Pad([]byte(data))...)
}

// Link is a symlink to make: Name -> Target.
type Link struct{ Name, Target string }

// Chain is the symlinks l0 -> l1 -> ... -> l(n-1) -> d: l0 takes n links to resolve to d, the
// directory the caller makes (the kernel's limit is 40).
func Chain(n int) []Link {
	out := make([]Link, n)
	for i := range n {
		out[i] = Link{fmt.Sprintf("l%d", i), fmt.Sprintf("l%d", i+1)}
	}
	if n > 0 {
		out[n-1].Target = "d"
	}
	return out
}
