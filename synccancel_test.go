package roots_test

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// cancelAfterBlobs cancels a context once the target has accepted a number of blob uploads:
// a SIGTERM arriving between a manifest's blobs, or after the last of them.
type cancelAfterBlobs struct {
	next   http.RoundTripper
	host   string
	after  int32
	n      atomic.Int32
	cancel context.CancelFunc
}

func (c *cancelAfterBlobs) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusCreated && req.Method == http.MethodPut && req.URL.Host == c.host && strings.Contains(req.URL.Path, "/blobs/uploads/") {
		if c.n.Add(1) == c.after {
			c.cancel()
		}
	}
	return resp, err
}

// TestSyncCancelled: a sync cancelled after some or all of a manifest's blobs are uploaded
// writes no manifest: the target's tag never names an image whose blobs it lacks.
func TestSyncCancelled(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	src.Push(t, "app", "1", registrytest.Image{Layers: []registrytest.Layer{registrytest.GzipLayer(registrytest.File("a", "a\n"))}})
	for _, tt := range []struct {
		name  string
		after int32
	}{{"BetweenBlobs", 1}, {"AfterTheLastBlob", 2}} {
		t.Run(tt.name, func(t *testing.T) {
			dst := registrytest.Start(t, registrytest.Config{})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			// Jobs 1: one blob at a time, so that the cancellation comes between the two.
			tr := &cancelAfterBlobs{next: http.DefaultTransport.(*http.Transport).Clone(), host: dst.Host, after: tt.after, cancel: cancel}
			sum, err := roots.Sync(ctx, mustSpecs(t, src.Host+"/app"), roots.SyncOptions{To: dst.Host, Prefix: "/", Jobs: 1, Registry: fetch.Options{Transport: tr}})
			if !errors.Is(err, context.Canceled) || sum.Copied != 0 {
				t.Errorf("sync: %+v, %v; want it cancelled, nothing copied", sum, err)
			}
			if n := registrytest.Count(dst.Requests()); n.ManifestPuts != 0 || n.BlobPuts != int(tt.after) {
				t.Errorf("target requests %+v: want %d blob uploads and no manifest PUT", n, tt.after)
			}
		})
	}
}

// TestSyncEveryFlat: a hundred daemon passes leave no goroutine and no memory behind (each
// pass's connections are closed; results are not kept).
func TestSyncEveryFlat(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	dst := registrytest.Start(t, registrytest.Config{})
	src.Push(t, "app", "1", registrytest.Image{Layers: []registrytest.Layer{registrytest.GzipLayer(registrytest.File("a", "a\n"))}})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var passes int
	var goroutines [2]int
	var heap [2]uint64
	measure := func(i int) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		goroutines[i], heap[i] = runtime.NumGoroutine(), m.HeapAlloc
	}
	err := roots.SyncEvery(ctx, mustSpecs(t, src.Host+"/app"), time.Millisecond, roots.SyncOptions{To: dst.Host, Prefix: "/"},
		func(s *roots.SyncSummary, err error) {
			if err != nil || s.Failed != 0 {
				t.Errorf("pass %d: %+v, %v", passes, s, err)
			}
			src.ResetRequests() // the harness's logs are this process's memory too
			dst.ResetRequests()
			switch passes++; passes {
			case 20:
				measure(0)
			case 120:
				measure(1)
				cancel()
			}
		})
	if err != nil || passes != 120 {
		t.Fatalf("SyncEvery: %v after %d passes", err, passes)
	}
	t.Logf("after 20 passes: %d goroutines, %d bytes of heap; after 120: %d, %d", goroutines[0], heap[0], goroutines[1], heap[1])
	if goroutines[1] > goroutines[0]+4 || heap[1] > heap[0]+512<<10 {
		t.Errorf("100 passes grew goroutines %d → %d, heap %d → %d", goroutines[0], goroutines[1], heap[0], heap[1])
	}
}
