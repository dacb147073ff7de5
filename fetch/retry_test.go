package fetch

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name, v string
		min     time.Duration
		max     time.Duration
		ok      bool
	}{
		{"Absent", "", 0, 0, false},
		{"Seconds", "2", 2 * time.Second, 2 * time.Second, true},
		{"Zero", "0", 0, 0, true},
		{"Negative", "-5", 0, 0, true},
		{"CappedSeconds", "86400", maxRetryAfter, maxRetryAfter, true},
		{"HugeSeconds", "99999999999999999", maxRetryAfter, maxRetryAfter, true},
		{"Date", time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat), 3 * time.Second, 5 * time.Second, true},
		{"PastDate", "Mon, 02 Jan 2006 15:04:05 GMT", 0, 0, true},
		{"Garbage", "soon", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := retryAfter(tt.v)
			if ok != tt.ok || d < tt.min || d > tt.max {
				t.Errorf("retryAfter(%q) = %v, %v; want %v..%v, %v", tt.v, d, ok, tt.min, tt.max, tt.ok)
			}
		})
	}
}

func TestBackoffDelayGrowsWithJitterAndCap(t *testing.T) {
	base := 100 * time.Millisecond
	for attempt, want := range map[int]time.Duration{1: base, 2: 2 * base, 3: 4 * base, 20: maxBackoff} {
		for range 20 {
			d := backoffDelay(base, attempt)
			if d < want/2 || d >= want*3/2 {
				t.Fatalf("backoffDelay(%v, %d) = %v, want within [%v, %v)", base, attempt, d, want/2, want*3/2)
			}
		}
	}
}

func TestRetryableStatus(t *testing.T) {
	for code, want := range map[int]bool{
		200: false, 404: false, 401: false, 403: false, 400: false, 416: false,
		408: true, 429: true, 500: true, 502: true, 503: true, 504: true, 501: false,
	} {
		if got := retryable(&http.Response{StatusCode: code}, nil); got != want {
			t.Errorf("retryable(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		v            string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */200", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes -1-2/3", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		start, total, err := parseContentRange(tt.v)
		if (err == nil) != tt.ok || tt.ok && (start != tt.start || total != tt.total) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", tt.v, start, total, err)
		}
	}
}
