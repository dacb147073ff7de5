package testtree

import (
	"fmt"
	"sort"
	"time"
)

// Aspect is one part of an Entry that Diff compares and reports on its own line.
type Aspect int

const (
	Exists    Aspect = iota // the path is on both sides (only for Excuse)
	Type                    // Entry.Type
	Mode                    // Entry.Mode
	Owner                   // UID and GID
	Size                    // Size
	Content                 // Hash
	Target                  // Link
	Device                  // Rdev
	Mtime                   // Mtime
	Xattrs                  // Xattrs
	Hardlinks               // Hardlinks
	Identity                // Ctime, Dev, Ino, Nlink, Blocks: the very same file, untouched
)

// Basic are the aspects of File, Dir and Symlink: what the end-to-end tests expect.
var Basic = []Aspect{Type, Mode, Owner, Size, Content, Target}

// Image are the aspects an image defines: Diff compares them unless told otherwise.
var Image = []Aspect{Type, Mode, Owner, Size, Content, Target, Device, Mtime, Xattrs, Hardlinks}

// All is Image and Identity: nothing changed at all.
var All = append(append([]Aspect(nil), Image...), Identity)

var aspectNames = [...]string{"exists", "type", "mode", "owner", "size", "content", "link", "rdev", "mtime", "xattrs", "hardlinks", "identity"}

func (a Aspect) String() string { return aspectNames[a] }

// value is a's part of e, as Diff shows it.
func (a Aspect) value(e Entry) string {
	switch a {
	case Type:
		return e.Type
	case Mode:
		return e.Mode.String()
	case Owner:
		return fmt.Sprintf("%d:%d", e.UID, e.GID)
	case Size:
		return fmt.Sprint(e.Size)
	case Content:
		return e.Hash
	case Target:
		return fmt.Sprintf("%q", e.Link)
	case Device:
		return e.Rdev
	case Mtime:
		return nanoTime(e.Mtime)
	case Xattrs:
		return "{" + e.Xattrs + "}"
	case Hardlinks:
		return fmt.Sprintf("%q", e.Hardlinks)
	case Identity:
		return fmt.Sprintf("ctime=%s dev=%d ino=%d nlink=%d blocks=%d", nanoTime(e.Ctime), e.Dev, e.Ino, e.Nlink, e.Blocks)
	}
	return ""
}

// DiffOption changes what Diff compares.
type DiffOption func(*differ)

// Only compares these aspects instead of Image.
func Only(aspects ...Aspect) DiffOption { return func(d *differ) { d.aspects = aspects } }

// Excuse lets aspect a of path differ (Exists: path may be on one side only).
func Excuse(path string, a Aspect) DiffOption {
	return func(d *differ) { d.excused[excuse{path, a}] = true }
}

// DirMtimesFrom leaves out the mtime of a directory when both sides have one at or after
// since: a time the tree was made at, not one from the image (an implicit parent's).
func DirMtimesFrom(since time.Time) DiffOption { return func(d *differ) { d.since = since } }

type excuse struct {
	path   string
	aspect Aspect
}

type differ struct {
	aspects []Aspect
	excused map[excuse]bool
	since   time.Time
}

// Diff lists how got differs from want, one line a path and aspect, sorted; none when they
// agree.
func Diff(want, got map[string]Entry, opts ...DiffOption) []string {
	d := differ{aspects: Image, excused: map[excuse]bool{}}
	for _, o := range opts {
		o(&d)
	}
	var out []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			if !d.excused[excuse{p, Exists}] {
				out = append(out, fmt.Sprintf("%q: missing (want %v)", p, w))
			}
			continue
		}
		for _, a := range d.aspects {
			if a == Mtime && !d.since.IsZero() && w.Type == "d" && g.Type == "d" &&
				w.Mtime >= d.since.UnixNano() && g.Mtime >= d.since.UnixNano() {
				continue
			}
			if gv, wv := a.value(g), a.value(w); gv != wv && !d.excused[excuse{p, a}] {
				out = append(out, fmt.Sprintf("%q: %s %s, want %s", p, a, gv, wv))
			}
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok && !d.excused[excuse{p, Exists}] {
			out = append(out, fmt.Sprintf("%q: unexpected (%v)", p, g))
		}
	}
	sort.Strings(out)
	return out
}
