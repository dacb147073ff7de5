// Command warmfloor is the least a warm overlay pull must do, for the bench to time beside
// roots on the same cache: GET the image's manifest from the registry, read the cache's record
// of the image, stat its trees, write and fsync a lease, and mount the trees under the image's
// fix-up as an overlay at DEST, with the lease and the overlay's upper and work directories in
// STATE (which it creates). It verifies nothing and handles an error only by exiting: it is a
// floor, not a tool. With -exit it exits at once, to time what starting a Go program of its size
// costs on the machine.
//
//	warmfloor [-exit] MANIFEST-URL CACHE RECORD DEST STATE
//
// RECORD is the image's record under CACHE/images without its platform (host/repository/tag);
// the fix-up is the one CACHE holds (the bench's overlay caches hold one image each).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-exit" {
		return
	}
	if len(os.Args) != 6 {
		fail(fmt.Errorf("usage: warmfloor [-exit] MANIFEST-URL CACHE RECORD DEST STATE"))
	}
	url, cache, record, dest, state := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]

	req, err := http.NewRequest("GET", url, nil)
	check(err)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	check(err)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	check(err)
	if resp.StatusCode != http.StatusOK {
		fail(fmt.Errorf("GET %s: %s", url, resp.Status))
	}

	recs, err := filepath.Glob(filepath.Join(cache, "images", record+"@*"))
	check(err)
	if len(recs) != 1 {
		fail(fmt.Errorf("%d records of %s in %s, want 1", len(recs), record, cache))
	}
	b, err := os.ReadFile(recs[0])
	check(err)
	var rec struct{ Layers []string }
	check(json.Unmarshal(b, &rec))

	fixups := filepath.Join(cache, "fixups", "sha256")
	ents, err := os.ReadDir(fixups)
	check(err)
	var lowers []string
	for _, e := range ents {
		if e.IsDir() {
			lowers = append(lowers, filepath.Join(fixups, e.Name()))
		}
	}
	if len(lowers) != 1 {
		fail(fmt.Errorf("%d fix-ups in %s, want 1", len(lowers), cache))
	}
	for i := len(rec.Layers) - 1; i >= 0; i-- { // top first
		d := filepath.Join(cache, "trees", strings.Replace(rec.Layers[i], ":", "/", 1))
		_, err := os.Stat(d)
		check(err)
		lowers = append(lowers, d)
	}

	check(os.Mkdir(state, 0o700))
	tmp := filepath.Join(state, "lease.tmp")
	f, err := os.Create(tmp)
	check(err)
	_, err = fmt.Fprintf(f, "{\"dest\":%q,\"trees\":%q}\n", dest, rec.Layers)
	check(err)
	check(f.Sync())
	check(f.Close())
	check(os.Rename(tmp, filepath.Join(state, "lease.json")))
	check(os.Mkdir(filepath.Join(state, "upper"), 0o755))
	check(os.Mkdir(filepath.Join(state, "work"), 0o700))
	check(os.Mkdir(dest, 0o755))
	opts := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + state + "/upper,workdir=" + state + "/work"
	check(syscall.Mount("overlay", dest, "overlay", 0, opts))
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "warmfloor: %v\n", err)
	os.Exit(1)
}
