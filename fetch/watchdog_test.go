package fetch

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestStalls: a registry that stops sending in the middle of a body, or trickles, never hangs a
// read: the stream is retried from where it broke (Range), and given up naming the host.
func TestStalls(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	data, desc := randomBlob(t, r, "blobs", 60_000)
	tests := []struct {
		name    string
		fault   registrytest.Fault
		opts    Options
		wantErr string // "" = the blob arrives whole
		ranges  int    // blob GETs with a Range header, at least
	}{
		{"StallTwiceThenWhole", registrytest.Fault{Kind: registrytest.StallAfter, Bytes: 10_000, Times: 2},
			Options{IdleTimeout: 300 * time.Millisecond}, "", 2},
		{"StallAlways", registrytest.Fault{Kind: registrytest.StallAfter, Bytes: 0},
			Options{IdleTimeout: 200 * time.Millisecond, Retries: 3}, "no data from", 0},
		{"StallAfterHeader", registrytest.Fault{Kind: registrytest.StallAfter, Bytes: 5000},
			Options{IdleTimeout: 200 * time.Millisecond, Retries: 2}, "no data from", 1},
		{"Trickle", registrytest.Fault{Kind: registrytest.Trickle, Delay: 50 * time.Millisecond},
			Options{IdleTimeout: 5 * time.Second, MinSpeed: 1000, SpeedTime: 300 * time.Millisecond, Retries: 2}, "less than 1000 bytes a second", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := r.FaultFront(t, tt.fault)
			o := tt.opts
			o.Transport, o.Backoff = r.Transport, time.Millisecond
			start := time.Now()
			got, err := readBlob(t, New(o), mustRef(t, front.Host+"/blobs"), desc)
			if elapsed := time.Since(start); elapsed > 20*time.Second {
				t.Errorf("took %v", elapsed)
			}
			if tt.wantErr == "" {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("err %v, %d bytes; want the whole blob", err, len(got))
				}
			} else {
				if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), tt.wantErr) ||
					!strings.Contains(err.Error(), front.Host) || !strings.Contains(err.Error(), desc.Digest.String()) {
					t.Fatalf("err %v; want ErrStalled naming %q, the host and the blob", err, tt.wantErr)
				}
			}
			n := 0
			for _, rg := range rangesAsked(settledLog(front.Requests, 1)) {
				if rg != "" {
					n++
				}
			}
			if n < tt.ranges {
				t.Errorf("%d requests with Range, want at least %d (a stall resumes)", n, tt.ranges)
			}
		})
	}
}

// TestStalledManifest: a manifest body that stops is an error naming the host, not a hang.
func TestStalledManifest(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{})
	r.Push(t, "img", "v1", hostImage(registrytest.OCI))
	front := r.FaultFront(t, registrytest.Fault{Kind: registrytest.StallAfter, Bytes: 10, Match: manifestGet("v1")})
	c := New(Options{Transport: r.Transport, Backoff: time.Millisecond, IdleTimeout: 200 * time.Millisecond})
	_, err := c.Resolve(t.Context(), mustRef(t, front.Host+"/img:v1"), nil)
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), front.Host) {
		t.Fatalf("err %v; want ErrStalled naming %s", err, front.Host)
	}
}
