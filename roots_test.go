package roots_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/assemble"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// TestPullEvents: a cold pull reports the image, every layer's bytes and its end; a warm pull
// reports every layer cached; both say what was pulled.
func TestPullEvents(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	ref := registry + "/example/hello:1"
	for _, tt := range []struct {
		name string
		want roots.EventKind // how every layer ends
	}{{"Cold", roots.LayerDone}, {"Warm", roots.LayerCached}} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var events []roots.Event
			pulled, err := roots.Pull(t.Context(), ref, filepath.Join(tmp, tt.name), roots.PullOptions{
				Cache: cache,
				Progress: func(e roots.Event) {
					mu.Lock()
					events = append(events, e)
					mu.Unlock()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(events) == 0 || events[0].Kind != roots.Resolved || events[0].Image.Digest != pulled.Digest {
				t.Fatalf("first event %+v, want Resolved of %s", events[0], pulled.Digest)
			}
			read := make([]int64, len(pulled.Layers))
			ends := 0
			for _, e := range events[1:] {
				switch e.Kind {
				case roots.Read:
					read[e.Layer] += e.Bytes
				case tt.want:
					ends++
				default:
					t.Errorf("unexpected event %+v", e)
				}
			}
			if ends != len(pulled.Layers) {
				t.Errorf("%d layers ended with %v, want %d", ends, tt.want, len(pulled.Layers))
			}
			for i, l := range pulled.Layers {
				want := l.Size
				if tt.want == roots.LayerCached {
					want = 0
				}
				if read[i] != want {
					t.Errorf("layer %d: read %d bytes, want %d", i, read[i], want)
				}
			}
			if pulled.Mode != roots.Hardlink || pulled.Size == 0 || len(pulled.DiffIDs) != 2 || pulled.Platform.OS == "" {
				t.Errorf("pulled %+v", pulled)
			}
		})
	}
	list, err := roots.List(t.Context(), cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Images) != 1 || list.Images[0].Reference != ref || list.Images[0].CachedLayers != 2 {
		t.Errorf("List: %+v", list.Images)
	}
	rep, err := roots.Check(t.Context(), cache)
	if err != nil || len(rep.Findings) != 0 || rep.Trees != 2 {
		t.Errorf("Check: %+v, %v", rep, err)
	}
	if len(list.Destinations) != 2 || list.Destinations[0].Mode != roots.Hardlink || !list.Destinations[0].Live {
		t.Errorf("List: destinations %+v, want Cold and Warm, hardlink, live", list.Destinations)
	}
	// The destinations are on disk: purge takes the trees but keeps the image's blobs and record
	// (a commit or push --from of them reads them); once they are gone, it takes everything.
	if _, err := roots.Purge(t.Context(), cache, cas.Policy{}); err != nil {
		t.Fatal(err)
	}
	if list, err := roots.List(t.Context(), cache); err != nil || len(list.Images) != 1 || list.Images[0].CachedLayers != 0 {
		t.Errorf("List after Purge, destinations live: %+v, %v", list, err)
	}
	os.RemoveAll(filepath.Join(tmp, "Cold"))
	os.RemoveAll(filepath.Join(tmp, "Warm"))
	if _, err := roots.Purge(t.Context(), cache, cas.Policy{}); err != nil {
		t.Fatal(err)
	}
	if list, err := roots.List(t.Context(), cache); err != nil || len(list.Images) != 0 || len(list.Destinations) != 0 {
		t.Errorf("List after Purge, destinations gone: %+v, %v", list, err)
	}
}

// TestPullRefused: what the options or the destination forbid fails before anything changes,
// with an error the caller can tell apart.
func TestPullRefused(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	exists := filepath.Join(tmp, "exists")
	for _, d := range []string{exists, cache} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ref := registry + "/example/hello:1"
	tests := []struct {
		name string
		dest string
		opts roots.PullOptions
		want error
	}{
		{"Exists", exists, roots.PullOptions{Cache: cache}, roots.ErrExists},
		{"ExistsNoCache", exists, roots.PullOptions{}, roots.ErrExists},
		{"Root", "/", roots.PullOptions{Cache: cache}, roots.ErrInvalidDest},
		{"Empty", "", roots.PullOptions{}, roots.ErrInvalidDest},
		{"TheCache", cache, roots.PullOptions{Cache: cache}, roots.ErrInvalidDest},
		{"InsideTheCache", filepath.Join(cache, "x"), roots.PullOptions{Cache: cache}, roots.ErrInvalidDest},
		{"OverlayNoCache", filepath.Join(tmp, "o"), roots.PullOptions{Mode: roots.Overlay}, roots.ErrOverlayNeedsCache},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := roots.Pull(t.Context(), ref, tt.dest, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if fi, err := os.Stat(exists); err != nil || !fi.IsDir() {
				t.Errorf("%s changed: %v", exists, err)
			}
		})
	}
	if _, err := roots.Pull(t.Context(), ref, filepath.Join(tmp, "bad"), roots.PullOptions{Mode: "tarball"}); err == nil {
		t.Error("mode tarball: no error")
	}
	if _, err := os.Lstat(filepath.Join(tmp, "bad")); err == nil {
		t.Error("a refused pull left its destination")
	}
}

// TestUnmountNotOverlay: Unmount refuses a directory that is no overlay destination and leaves it.
func TestUnmountNotOverlay(t *testing.T) {
	dir := t.TempDir()
	if _, err := roots.Unmount(context.Background(), dir, false); err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// TestSharedErrors: an error that several packages report is one value, so that a caller tells
// it apart with one errors.Is whichever package failed.
func TestSharedErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		a, b error
	}{
		{"DigestMismatch", cas.ErrDigestMismatch, fetch.ErrDigestMismatch},
		{"Exists", roots.ErrExists, assemble.ErrExists},
		{"OverlayCannotShow", roots.ErrOverlayCannotShow, assemble.ErrOverlayCannotShow},
	} {
		if tt.a != tt.b {
			t.Errorf("%s: two errors", tt.name)
		}
	}
}
