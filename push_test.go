package roots_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// pullHello pulls the test registry's example/hello:1 into a new cache, as a push or a copy
// from the cache needs it, and returns its reference, the cache and what the pull says.
func pullHello(t *testing.T) (src, cache string, pulled *roots.Pulled) {
	t.Helper()
	tmp := t.TempDir()
	src, cache = registry+"/example/hello:1", filepath.Join(tmp, "cache")
	pulled, err := roots.Pull(t.Context(), src, filepath.Join(tmp, "src"), roots.PullOptions{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	return src, cache, pulled
}

// TestPush: a pulled image pushed to an empty repository uploads each blob once and then its
// manifest; pushed again it sends no blob, only the manifest; pushed to another repository of
// the same registry it mounts every blob from the first; chunked, it PATCHes; pulled back it
// is the image pulled, file for file, under the same digest.
func TestPush(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	src := registry + "/example/hello:1"
	pulled, err := roots.Pull(t.Context(), src, filepath.Join(tmp, "src"), roots.PullOptions{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	dst := registrytest.Start(t, registrytest.Config{})
	blobs := 1 + len(pulled.Layers)
	tests := []struct {
		name  string
		dest  string
		chunk int64
		want  registrytest.Counts
	}{
		{"Empty", dst.Host + "/app:1", 0, registrytest.Counts{Heads: blobs, Posts: blobs, BlobPuts: blobs, ManifestPuts: 1}},
		{"Again", dst.Host + "/app:1", 0, registrytest.Counts{Heads: blobs, ManifestPuts: 1}},
		{"OtherRepository", dst.Host + "/other/app:1", 0, registrytest.Counts{Heads: blobs, Mounts: blobs, ManifestPuts: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst.ResetRequests()
			var events []roots.BlobResult
			pushed, err := roots.Push(t.Context(), src, tt.dest, roots.PushOptions{Cache: cache, ChunkSize: tt.chunk, Jobs: 1,
				Progress: func(b roots.BlobResult) { events = append(events, b) }})
			if err != nil {
				t.Fatal(err)
			}
			if pushed.Digest != pulled.Digest || len(pushed.Blobs) != blobs || len(events) != blobs {
				t.Errorf("pushed %+v, %d events; want digest %s and %d blobs", pushed, len(events), pulled.Digest, blobs)
			}
			if got := registrytest.Count(dst.Requests()); got != tt.want {
				t.Errorf("requests %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("Chunked", func(t *testing.T) {
		other := registrytest.Start(t, registrytest.Config{}) // where nothing can be mounted from
		if _, err := roots.Push(t.Context(), src, other.Host+"/chunked:1", roots.PushOptions{Cache: cache, ChunkSize: 64}); err != nil {
			t.Fatal(err)
		}
		n := registrytest.Count(other.Requests())
		if n.Patches < blobs || n.Posts != blobs || n.BlobPuts != blobs {
			t.Errorf("requests %+v: want PATCHes, one session per blob", n)
		}
	})
	back, err := roots.Pull(t.Context(), dst.Host+"/app:1", filepath.Join(tmp, "back"), roots.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if back.Digest != pulled.Digest {
		t.Errorf("pulled back %s, pushed %s", back.Digest, pulled.Digest)
	}
	sameFiles(t, filepath.Join(tmp, "src"), filepath.Join(tmp, "back"))
}

// sameFiles compares the regular files and symlinks of two trees by content.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	n := 0
	filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, errA := os.ReadFile(p)
		y, errB := os.ReadFile(filepath.Join(b, rel))
		if errA != nil || errB != nil || string(x) != string(y) {
			t.Errorf("%s differs: %v, %v", rel, errA, errB)
		}
		n++
		return nil
	})
	if n == 0 {
		t.Errorf("%s holds no file", a)
	}
}

// TestPushFormat: --format docker rewrites media types only (the layers keep their digests),
// and a zstd layer cannot become Docker: refused before anything is sent.
func TestPushFormat(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	dst := registrytest.Start(t, registrytest.Config{})
	pl, _ := fetch.ParsePlatform("linux/amd64")
	multi := registry + "/example/multi:1"
	pulled, err := roots.Pull(t.Context(), multi, filepath.Join(tmp, "m"), roots.PullOptions{Cache: cache, Platform: &pl})
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := roots.Push(t.Context(), multi, dst.Host+"/docker:1", roots.PushOptions{Cache: cache, Platform: &pl, Format: roots.FormatDocker})
	if err != nil {
		t.Fatal(err)
	}
	if pushed.MediaType != fetch.MediaTypeDockerManifest || pushed.Digest == pulled.Digest {
		t.Errorf("pushed %s %s, want a Docker manifest of another digest than %s", pushed.MediaType, pushed.Digest, pulled.Digest)
	}
	got := map[digest.Digest]bool{}
	for _, b := range pushed.Blobs {
		got[b.Digest] = true
	}
	for _, l := range pulled.Layers {
		if !got[l.Digest] {
			t.Errorf("layer %s was not pushed under its digest", l.Digest)
		}
	}
	back, err := roots.Pull(t.Context(), dst.Host+"/docker:1", filepath.Join(tmp, "back"), roots.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, filepath.Join(tmp, "m"), filepath.Join(tmp, "back"))
	if back.Digest != pushed.Digest {
		t.Errorf("pulled back %s, pushed %s", back.Digest, pushed.Digest)
	}

	hello := registry + "/example/hello:1" // its second layer is zstd
	if _, err := roots.Pull(t.Context(), hello, filepath.Join(tmp, "h"), roots.PullOptions{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	dst.ResetRequests()
	_, err = roots.Push(t.Context(), hello, dst.Host+"/zstd:1", roots.PushOptions{Cache: cache, Format: roots.FormatDocker})
	if !errors.Is(err, roots.ErrFormat) {
		t.Fatalf("err = %v, want ErrFormat", err)
	}
	if n := len(dst.Requests()); n != 0 {
		t.Errorf("%d requests sent before the refusal", n)
	}
	if _, err := roots.Push(t.Context(), registry+"/example/never:1", "", roots.PushOptions{Cache: cache}); !errors.Is(err, roots.ErrNotInCache) {
		t.Errorf("push of an image never pulled: %v, want ErrNotInCache", err)
	}
}

// TestPushCutUpload: an upload whose connection is cut half way starts a new session and the
// push ends with the image whole in the target.
func TestPushCutUpload(t *testing.T) {
	src, cache, pulled := pullHello(t)
	dst := registrytest.Start(t, registrytest.Config{})
	cut := dst.FaultFront(t, registrytest.Fault{Kind: registrytest.CutRequest, Bytes: 10, Times: 1})
	pushed, err := roots.Push(t.Context(), src, cut.Host+"/app:1", roots.PushOptions{Cache: cache, Jobs: 1,
		Registry: fetch.Options{Backoff: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest != pulled.Digest {
		t.Errorf("pushed %s, want %s", pushed.Digest, pulled.Digest)
	}
	if n := registrytest.Count(cut.Requests()); n.Posts != len(pulled.Layers)+2 {
		t.Errorf("requests %+v: want one session more than blobs (%d)", n, len(pulled.Layers)+1)
	}
	backDir := filepath.Join(t.TempDir(), "back")
	back, err := roots.Pull(t.Context(), cut.Host+"/app:1", backDir, roots.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if back.Digest != pulled.Digest {
		t.Errorf("pulled back %s", back.Digest)
	}
	sameFiles(t, pulled.Dest, backDir)
}

// TestPushCorruptCache: a cached blob that no longer hashes to its digest fails the push with
// ErrDigestMismatch, and the manifest that lists it is never PUT.
func TestPushCorruptCache(t *testing.T) {
	src, cache, pulled := pullHello(t)
	l := pulled.Layers[len(pulled.Layers)-1]
	path := filepath.Join(cache, "blobs", "sha256", l.Digest.Encoded())
	os.Chmod(path, 0o644)
	if err := os.WriteFile(path, make([]byte, l.Size), 0o644); err != nil { // rot: same length, other bytes
		t.Fatal(err)
	}
	dst := registrytest.Start(t, registrytest.Config{})
	_, err := roots.Push(t.Context(), src, dst.Host+"/app:1", roots.PushOptions{Cache: cache, Registry: fetch.Options{Backoff: time.Millisecond}})
	if !errors.Is(err, fetch.ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
	if n := registrytest.Count(dst.Requests()); n.ManifestPuts != 0 {
		t.Errorf("requests %+v: a manifest was PUT over a blob that is not there", n)
	}
}
