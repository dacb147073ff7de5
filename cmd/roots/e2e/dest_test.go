package e2e

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// TestDestinationsRefused: a DEST that names the current directory, one of its parents, the
// root, the cache (or a directory inside it or holding it), or a tree below which something is
// mounted is refused before anything changes, --force or not, in every mode.
func TestDestinationsRefused(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "img", "v1", registrytest.Image{Layers: []registrytest.Layer{{Entries: []reg{{Name: "a", Body: []byte("a")}}}}})
	ref := r.Host + "/img:v1"

	base := t.TempDir()
	work := filepath.Join(base, "work", "here") // the command's current directory
	cache := filepath.Join(base, "cache")
	for _, d := range []string{work, cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(work, "precious"), filepath.Join(base, "work", "precious")} {
		os.WriteFile(f, []byte("keep me"), 0o644)
	}
	MustPull(t, nil, "--cache", cache, ref, filepath.Join(base, "warm")) // the cache holds trees now

	tests := []struct{ name, dest, want string }{
		{"Dot", ".", "current directory"},
		{"DotDot", "..", "current directory"},
		{"DotDotViaName", "x/..", "current directory"},
		{"Empty", "", `DEST is ""`},
		{"Root", "/", "root directory"},
		{"AncestorOfCwd", base, "current directory"},
		{"TheCache", cache, "is the cache"},
		{"InsideTheCache", filepath.Join(cache, "trees"), "inside the cache"},
		{"HoldsTheCache", filepath.Join(base), "current directory"},
	}
	for _, tt := range tests {
		for _, mode := range []string{"hardlink", "copy", "overlay"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				before := testtree.Scan(t, base)
				res := RootsIn(t, work, Deadline, nil, "pull", "--cache", cache, "--mode", mode, "--force", ref, tt.dest)
				if res.Code != 2 || !strings.HasPrefix(res.Stderr, "roots: ") || !strings.Contains(res.Stderr, tt.want) || strings.Count(res.Stderr, "\n") != 1 {
					t.Errorf("exit %d, stderr %q; want exit 2 and one line with %q", res.Code, res.Stderr, tt.want)
				}
				Unchanged(t, before, testtree.Scan(t, base))
			})
		}
	}

	// Mounts below DEST: a chroot's /dev bound to a directory of ours, a tmpfs.
	for _, kind := range []string{"bind", "tmpfs"} {
		for _, mode := range []string{"hardlink", "copy", "overlay"} {
			t.Run("MountBelow/"+kind+"/"+mode, func(t *testing.T) {
				parent := t.TempDir()
				dest := filepath.Join(parent, "rootfs")
				MustPull(t, nil, "--cache", cache, ref, dest)
				mnt := filepath.Join(dest, "dev")
				os.MkdirAll(mnt, 0o755)
				switch kind {
				case "bind":
					src := filepath.Join(parent, "host-dev")
					os.Mkdir(src, 0o755)
					os.WriteFile(filepath.Join(src, "null"), []byte("the host's"), 0o644)
					if err := unix.Mount(src, mnt, "", unix.MS_BIND, ""); err != nil {
						t.Fatal(err)
					}
				case "tmpfs":
					if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
						t.Fatal(err)
					}
					os.WriteFile(filepath.Join(mnt, "null"), []byte("the host's"), 0o644)
				}
				t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
				res := Roots(t, nil, "pull", "--cache", cache, "--mode", mode, "--force", ref, dest)
				if res.Code != 1 || !strings.Contains(res.Stderr, "mounted below it") || !strings.Contains(res.Stderr, mnt) {
					t.Errorf("exit %d, stderr %q; want exit 1 naming the mount %s", res.Code, res.Stderr, mnt)
				}
				if b, err := os.ReadFile(filepath.Join(mnt, "null")); err != nil || string(b) != "the host's" {
					t.Errorf("the mount's file: %q, %v", b, err)
				}
				if b, err := os.ReadFile(filepath.Join(dest, "a")); err != nil || string(b) != "a" {
					t.Errorf("the old DEST changed: a = %q, %v", b, err)
				}
				AssertNoStaging(t, parent)
			})
		}
	}
}

// TestMessagesQuotePaths: a DEST with control characters is shown quoted, so that the error
// stays one line and a terminal shows no escape sequence.
func TestMessagesQuotePaths(t *testing.T) {
	NeedRoot(t)
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "img", "v1", registrytest.Image{Layers: []registrytest.Layer{{Entries: []reg{{Name: "a", Body: []byte("a")}}}}})
	dest := filepath.Join(t.TempDir(), "bad\x1b[31mname\nline")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	res := Roots(t, nil, "pull", "--cache", t.TempDir(), r.Host+"/img:v1", dest)
	if res.Code != 1 || strings.Count(res.Stderr, "\n") != 1 || strings.ContainsRune(res.Stderr, 0x1b) ||
		!strings.Contains(res.Stderr, `bad\x1b[31mname\nline`) {
		t.Errorf("exit %d, stderr %q; want one line with the path quoted", res.Code, res.Stderr)
	}
}

// TestNoLibraryLogLines: a registry that sends bytes past its Content-Length makes Go's
// net/http log "Unsolicited response received on idle HTTP channel"; no such line reaches
// stderr, which holds roots' one error line only.
func TestNoLibraryLogLines(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") // unsolicited
		buf.Flush()
		time.Sleep(200 * time.Millisecond)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	res := Roots(t, nil, "digest", host+"/img:v1")
	if res.Code == 0 || strings.Count(res.Stderr, "\n") != 1 || !strings.HasPrefix(res.Stderr, "roots: ") || strings.Contains(res.Stderr, "Unsolicited") {
		t.Errorf("exit %d, stderr %q; want one roots: line and no library log", res.Code, res.Stderr)
	}
}
