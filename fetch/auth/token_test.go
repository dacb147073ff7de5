package auth

import (
	"net/http"
	"testing"
	"time"
)

func TestTokenRenewAt(t *testing.T) {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		resp tokenResponse
		want time.Duration // renewAt - start
	}{
		{"NoExpiresInMeansSixtySeconds", tokenResponse{}, 48 * time.Second},
		{"FiveMinutesRenewedThirtySecondsEarly", tokenResponse{ExpiresIn: 300}, 270 * time.Second},
		{"ShortTokenRenewedAtFourFifths", tokenResponse{ExpiresIn: 2}, 1600 * time.Millisecond},
		{"FractionalExpiresIn", tokenResponse{ExpiresIn: 2.5}, 2 * time.Second},
		{"NegativeExpiresInIgnored", tokenResponse{ExpiresIn: -5}, 48 * time.Second},
		{"AbsurdExpiresInBounded", tokenResponse{ExpiresIn: 1e30}, maxTokenLifetime - maxRenewMargin},
		{"IssuedEarlierCountsFromIssue", tokenResponse{ExpiresIn: 300, IssuedAt: "2025-06-01T11:59:00Z"}, 210 * time.Second},
		{"IssuedLaterIgnored", tokenResponse{ExpiresIn: 300, IssuedAt: "2025-06-01T12:10:00Z"}, 270 * time.Second},
		{"IssuedLongAgoIsSkewIgnored", tokenResponse{ExpiresIn: 300, IssuedAt: "2025-06-01T10:00:00Z"}, 270 * time.Second},
		{"BadIssuedAtIgnored", tokenResponse{ExpiresIn: 300, IssuedAt: "yesterday"}, 270 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.resp.renewAt(start).Sub(start); got != tt.want {
				t.Fatalf("renewAt = start+%v, want start+%v", got, tt.want)
			}
		})
	}
}

func TestTransportHost(t *testing.T) {
	tests := []struct {
		host, url string
		want      bool
	}{
		{"127.0.0.1:5000", "http://127.0.0.1:5000/v2/", true},
		{"127.0.0.1:5000", "http://127.0.0.1:5001/v2/", false},
		{"127.0.0.1:5000", "http://127.0.0.1/v2/", false},
		{"ghcr.io", "https://GHCR.IO/v2/", true},
		{"ghcr.io", "https://ghcr.io:443/v2/", true},
		{"ghcr.io:443", "https://ghcr.io/v2/", true},
		{"ghcr.io", "http://ghcr.io:443/v2/", false},
		{"ghcr.io", "https://ghcr.io.evil.example/v2/", false},
		{"ghcr.io", "https://pkg-containers.githubusercontent.com/blob", false},
		{"docker.io", "https://registry-1.docker.io/v2/", true},
		{"registry-1.docker.io", "https://index.docker.io/v2/", true},
		{"registry-1.docker.io", "https://production.cloudflare.docker.com/blob", false},
		{"[::1]:5000", "http://[::1]:5000/v2/", true},
		{"[::1]", "https://[::1]:443/v2/", true},
	}
	for _, tt := range tests {
		t.Run(tt.host+" "+tt.url, func(t *testing.T) {
			tr := NewTransport(nil, tt.host, nil, nil).(*transport)
			req, err := http.NewRequest(http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.isHost(req.URL); got != tt.want {
				t.Fatalf("isHost = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRepositoryFromPath(t *testing.T) {
	tests := map[string]string{
		"/v2/library/debian/manifests/bookworm": "library/debian",
		"/v2/a/blobs/sha256:abc":                "a",
		"/v2/a/b/c/tags/list":                   "a/b/c",
		"/v2/blobs/manifests/x":                 "blobs",
		"/v2/":                                  "",
		"/v2/a/blobs/uploads/":                  "a",
		"/other/x/manifests/y":                  "",
	}
	for path, want := range tests {
		if got := repository(path); got != want {
			t.Errorf("repository(%q) = %q, want %q", path, got, want)
		}
	}
}
