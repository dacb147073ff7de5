package testtree

import (
	"archive/tar"
	"strings"
	"testing"
	"time"
)

// Ent is one entry of a layer table, for the tests that unpack tars themselves (cas/layer,
// assemble): TarReg, TarDir, TarSym, TarHard, TarChr, TarBlk, TarFifo and TarRaw make one; M,
// O, T, X and F change it. "$OUT" in a name or link target stands for a directory outside the
// target (see Layer).
type Ent struct {
	Name, Link, Body string
	Type             byte
	Mode             int64 // written as it is: 0 is mode 0000
	UID, GID         int
	Xattrs, PAX      map[string]string
	Mtime            time.Time // zero: the default of Layer
	Major, Minor     int64
	Format           tar.Format
	Raw              []byte // blocks written as they are, instead of a header
}

func TarReg(name, body string) Ent {
	return Ent{Name: name, Type: tar.TypeReg, Mode: 0o644, Body: body}
}
func TarDir(name string) Ent { return Ent{Name: name, Type: tar.TypeDir, Mode: 0o755} }
func TarSym(name, to string) Ent {
	return Ent{Name: name, Type: tar.TypeSymlink, Mode: 0o777, Link: to}
}
func TarHard(name, to string) Ent { return Ent{Name: name, Type: tar.TypeLink, Mode: 0o644, Link: to} }
func TarFifo(name string) Ent     { return Ent{Name: name, Type: tar.TypeFifo, Mode: 0o644} }
func TarRaw(b []byte) Ent         { return Ent{Raw: b} }

func TarChr(name string, major, minor int64) Ent {
	return Ent{Name: name, Type: tar.TypeChar, Mode: 0o666, Major: major, Minor: minor}
}

func TarBlk(name string, major, minor int64) Ent {
	return Ent{Name: name, Type: tar.TypeBlock, Mode: 0o660, Major: major, Minor: minor}
}

func (e Ent) M(mode int64) Ent      { e.Mode = mode; return e }
func (e Ent) O(uid, gid int) Ent    { e.UID, e.GID = uid, gid; return e }
func (e Ent) T(mtime time.Time) Ent { e.Mtime = mtime; return e }
func (e Ent) F(f tar.Format) Ent    { e.Format = f; return e }

// X adds the xattr name=v (the table's other entries keep their maps).
func (e Ent) X(name, v string) Ent {
	m := map[string]string{name: v}
	for k, v := range e.Xattrs {
		if k != name {
			m[k] = v
		}
	}
	e.Xattrs = m
	return e
}

// Layer builds an uncompressed tar of ents; out replaces "$OUT", mtime is that of the entries
// that set none.
func Layer(t testing.TB, out string, mtime time.Time, ents []Ent) []byte {
	t.Helper()
	a := NewTar(t)
	for _, e := range ents {
		if e.Raw != nil {
			a.Raw(e.Raw)
			continue
		}
		h := tar.Header{
			Name:     strings.ReplaceAll(e.Name, "$OUT", out),
			Linkname: strings.ReplaceAll(e.Link, "$OUT", out),
			Typeflag: e.Type,
			Mode:     e.Mode,
			Uid:      e.UID,
			Gid:      e.GID,
			ModTime:  e.Mtime,
			Devmajor: e.Major,
			Devminor: e.Minor,
			Format:   e.Format,
		}
		if h.Mode == 0 {
			h.Mode = ZeroMode
		}
		if h.ModTime.IsZero() {
			h.ModTime = mtime
		}
		if len(e.Xattrs)+len(e.PAX) > 0 {
			h.PAXRecords = map[string]string{}
		}
		for k, v := range e.Xattrs {
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		for k, v := range e.PAX {
			h.PAXRecords[k] = v
		}
		a.Add(h, e.Body)
	}
	return a.Bytes()
}
