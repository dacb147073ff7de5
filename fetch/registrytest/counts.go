package registrytest

import "strings"

// Counts are the requests of a log by kind, the authentication challenges (401) aside: what
// push and copy tests state ("a second push sends one HEAD per blob and the manifest").
type Counts struct {
	Heads, Posts, Mounts, Patches, BlobPuts, ManifestPuts, BlobGets int
}

// Count sorts reqs (Registry.Requests, Front.Requests) into Counts.
func Count(reqs []Request) Counts {
	var n Counts
	for _, q := range reqs {
		switch {
		case q.Status == 401:
		case q.Method == "HEAD":
			n.Heads++
		case q.Method == "POST" && strings.Contains(q.Query, "mount="):
			n.Mounts++
		case q.Method == "POST":
			n.Posts++
		case q.Method == "PATCH":
			n.Patches++
		case q.Method == "PUT" && strings.Contains(q.Path, "/blobs/uploads/"):
			n.BlobPuts++
		case q.Method == "PUT" && strings.Contains(q.Path, "/manifests/"):
			n.ManifestPuts++
		case q.Method == "GET" && strings.Contains(q.Path, "/blobs/"):
			n.BlobGets++
		}
	}
	return n
}
