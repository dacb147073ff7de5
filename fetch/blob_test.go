package fetch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// randomBlob pushes size incompressible bytes to repo and returns them with
// their descriptor.
func randomBlob(t *testing.T, r *registrytest.Registry, repo string, size int) ([]byte, ocispec.Descriptor) {
	t.Helper()
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(size)})
	rng.Read(data)
	d := r.PushBlob(t, repo, data)
	return data, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(size)}
}

func readBlob(t *testing.T, c *Client, ref Reference, d ocispec.Descriptor) ([]byte, error) {
	t.Helper()
	rc, err := c.OpenBlob(t.Context(), ref, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// rangesAsked lists the Range headers of the blob GETs in a request log.
func rangesAsked(log []registrytest.Request) []string {
	var out []string
	for _, r := range log {
		if r.Method == http.MethodGet && strings.Contains(r.Path, "/blobs/") {
			out = append(out, r.Header.Get("Range"))
		}
	}
	return out
}

func TestOpenBlobFaults(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	const size = 300_000
	data, desc := randomBlob(t, r, "blobs", size)

	tests := []struct {
		name   string
		faults []registrytest.Fault
		ranges []string // Range headers of the blob GETs, in order
		status []int    // their statuses
	}{
		{
			name:   "ResumesAfterCut",
			faults: []registrytest.Fault{{Kind: registrytest.CutAfter, Bytes: 100_000, Times: 1}},
			ranges: []string{"", "bytes=100000-"},
			status: []int{200, 206},
		},
		{
			name:   "ResumesTwice",
			faults: []registrytest.Fault{{Kind: registrytest.CutAfter, Bytes: 70_000, Times: 2}},
			ranges: []string{"", "bytes=70000-", "bytes=140000-"},
			status: []int{200, 206, 206},
		},
		{
			name:   "CutBeforeAnyByte",
			faults: []registrytest.Fault{{Kind: registrytest.CutAfter, Bytes: 0, Times: 1}},
			ranges: []string{"", ""},
			status: []int{200, 200},
		},
		{
			name: "RegistryIgnoresRangeAfterCut",
			faults: []registrytest.Fault{
				{Kind: registrytest.CutAfter, Bytes: 123_457, Times: 1},
				{Kind: registrytest.IgnoreRange},
			},
			ranges: []string{"", "bytes=123457-"},
			status: []int{200, 200},
		},
		{
			name:   "ServiceUnavailableTwice",
			faults: []registrytest.Fault{{Kind: registrytest.Status, Code: 503, Times: 2}},
			ranges: []string{"", "", ""},
			status: []int{503, 503, 200},
		},
		{
			name:   "TooManyRequestsThenResume",
			faults: []registrytest.Fault{{Kind: registrytest.Status, Code: 429, Times: 2}, {Kind: registrytest.CutAfter, Bytes: 1000, Times: 1}},
			ranges: []string{"", "", "", "bytes=1000-"},
			status: []int{429, 429, 200, 206},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := r.FaultFront(t, tt.faults...)
			c := newTestClient(t, r, nil)
			got, err := readBlob(t, c, mustRef(t, front.Host+"/blobs"), desc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes (digest %s), want the %d bytes pushed", len(got), digest.FromBytes(got), len(data))
			}
			log := settledLog(front.Requests, len(tt.ranges))
			ranges := rangesAsked(log)
			if strings.Join(ranges, ",") != strings.Join(tt.ranges, ",") {
				t.Errorf("Range headers %q, want %q:%s", ranges, tt.ranges, requests(log))
			}
			var status []int
			for _, req := range log {
				if strings.Contains(req.Path, "/blobs/") {
					status = append(status, req.Status)
				}
			}
			if len(status) != len(tt.status) {
				t.Fatalf("statuses %v, want %v", status, tt.status)
			}
			for i := range status {
				if status[i] != tt.status[i] {
					t.Errorf("statuses %v, want %v", status, tt.status)
					break
				}
			}
		})
	}
}

func TestOpenBlobGivesUpWithoutProgress(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	_, desc := randomBlob(t, r, "blobs", 50_000)
	front := r.FaultFront(t, registrytest.Fault{Kind: registrytest.CutAfter, Bytes: 0})
	c := New(Options{Transport: r.Transport, Retries: 3, Backoff: time.Millisecond})
	_, err := readBlob(t, c, mustRef(t, front.Host+"/blobs"), desc)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
	if !strings.HasPrefix(err.Error(), "fetch blob "+desc.Digest.String()+": ") {
		t.Errorf("message %q does not start with the digest", err)
	}
	if n := len(rangesAsked(settledLog(front.Requests, 3))); n != 3 {
		t.Errorf("%d blob requests, want 3 (Retries)", n)
	}
}

func TestOpenBlobKeepsGoingWhileProgressing(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	data, desc := randomBlob(t, r, "blobs", 40_000)
	// Every answer is cut after 5000 bytes: eight requests, far more than
	// Retries, but each one brings new bytes.
	front := r.FaultFront(t, registrytest.Fault{Kind: registrytest.CutAfter, Bytes: 5000})
	c := New(Options{Transport: r.Transport, Retries: 2, Backoff: time.Millisecond})
	got, err := readBlob(t, c, mustRef(t, front.Host+"/blobs"), desc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
}

func TestOpenBlobWrongBytesPassThrough(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	data, desc := randomBlob(t, r, "blobs", 10_000)
	front := r.FaultFront(t, registrytest.Fault{Kind: registrytest.WrongBytes, Bytes: 1234})
	got, err := readBlob(t, newTestClient(t, r, nil), mustRef(t, front.Host+"/blobs"), desc)
	if err != nil {
		t.Fatalf("OpenBlob verifies digests? %v", err)
	}
	want := bytes.Clone(data)
	want[1234] ^= 0xff
	if !bytes.Equal(got, want) {
		t.Error("the flipped byte did not come through unchanged")
	}
}

func TestOpenBlobRefusesOversize(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	_, desc := randomBlob(t, r, "blobs", 10_000)
	c := newTestClient(t, r, nil)
	ref := mustRef(t, r.Host+"/blobs")

	// The registry announces the real length, more than the descriptor says.
	small := desc
	small.Size = 9_999
	if _, err := readBlob(t, c, ref, small); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Content-Length above the size: got %v, want ErrTooLarge", err)
	}

	// A registry that streams without Content-Length is stopped at the
	// first byte past the size. (A hand-written handler: the fault is a
	// chunked body longer than the descriptor, which Distribution never sends.)
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		chunk := bytes.Repeat([]byte("z"), 32<<10)
		for i := 0; i < 1000 && req.Context().Err() == nil; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(endless.Close)
	hostRef := mustRef(t, strings.TrimPrefix(endless.URL, "http://")+"/blobs")
	rc, err := New(Options{}).OpenBlob(t.Context(), hostRef, desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if n != desc.Size {
		t.Errorf("delivered %d bytes, want exactly the %d the descriptor allows", n, desc.Size)
	}
}

func TestOpenBlobShorterThanDescriptor(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	_, desc := randomBlob(t, r, "blobs", 10_000)
	for _, size := range []int64{10_001, math.MaxInt64} {
		d := desc
		d.Size = size
		_, err := readBlob(t, New(Options{Transport: r.Transport, Backoff: time.Millisecond}), mustRef(t, r.Host+"/blobs"), d)
		if err == nil || !strings.Contains(err.Error(), "blob ended after 10000 bytes") {
			t.Errorf("size %d: got %v, want the blob to end early", size, err)
		}
	}
}

func TestOpenBlobNotFound(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	missing := ocispec.Descriptor{Digest: digest.FromString("missing"), Size: 7}
	_, err := newTestClient(t, r, nil).OpenBlob(t.Context(), mustRef(t, r.Host+"/blobs"), missing)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	if want := "fetch blob " + missing.Digest.String() + ": blob unknown: " + r.Host + "/blobs not found"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if log := settledLog(r.Requests, 1); len(log) != 1 {
		t.Errorf("404 was retried:%s", requests(log))
	}
}

func TestOpenBlobRefusesBadDescriptor(t *testing.T) {
	c := New(Options{})
	ref := Reference{Domain: "127.0.0.1:1", Path: "x", Tag: "latest"}
	for _, d := range []ocispec.Descriptor{
		{Digest: "sha256:../../../etc/passwd", Size: 1},
		{Digest: "", Size: 1},
		{Digest: digest.FromString("x"), Size: -1},
	} {
		if _, err := c.OpenBlob(t.Context(), ref, d); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%+v: got %v, want ErrInvalidManifest", d, err)
		}
	}
}

func TestOpenBlobStopsWithContext(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	_, desc := randomBlob(t, r, "blobs", 200_000)
	host := r.FaultProxy(t, registrytest.Fault{Kind: registrytest.Slow, Delay: time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	rc, err := newTestClient(t, r, nil).OpenBlob(ctx, mustRef(t, host+"/blobs"), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v to stop after cancel", d)
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	data, desc := randomBlob(t, r, "blobs", 1000)
	host := r.FaultProxy(t, registrytest.Fault{Kind: registrytest.Status, Code: 429, Delay: time.Second, Times: 1})
	start := time.Now()
	got, err := readBlob(t, newTestClient(t, r, nil), mustRef(t, host+"/blobs"), desc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %v, want Retry-After: 1 honoured", d)
	}
}
