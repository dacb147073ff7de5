package roots_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestCopyIndex: a multi-platform index (two images, two attestations) copied to another
// registry keeps its digest and sends each blob once; copied again it costs one HEAD per side;
// copied within the target registry it mounts every blob; one platform copied alone is that
// platform's manifest, byte for byte.
func TestCopyIndex(t *testing.T) {
	src := registry + "/example/multi:1"
	r, _ := fetch.ParseReference(src)
	client := fetch.New(fetch.Options{})
	index, err := client.Digest(t.Context(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst := registrytest.Start(t, registrytest.Config{})
	to := dst.Host + "/mirror/multi:1"

	copied, err := roots.CopyImage(t.Context(), src, to, roots.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if copied.Digest != index || len(copied.Manifests) != 5 {
		t.Errorf("copied %s with %d manifests, want %s and 5", copied.Digest, len(copied.Manifests), index)
	}
	uploaded := map[digest.Digest]int{}
	for _, b := range copied.Blobs {
		if b.Action != roots.BlobUploaded {
			t.Errorf("blob %s: %s, want pushed", b.Digest, b.Action)
		}
		uploaded[b.Digest]++
	}
	n := registrytest.Count(dst.Requests())
	if n.BlobPuts != len(uploaded) || n.ManifestPuts != 5 || n.Mounts != 0 {
		t.Errorf("first copy: requests %+v, want %d blob PUTs, 5 manifest PUTs", n, len(uploaded))
	}
	if got, err := client.Digest(t.Context(), fetch.Reference{Domain: dst.Host, Path: "mirror/multi", Tag: "1"}, nil); err != nil || got != index {
		t.Errorf("target's digest %s, %v; want %s", got, err, index)
	}

	dst.ResetRequests()
	testRegistry.ResetRequests()
	again, err := roots.CopyImage(t.Context(), src, to, roots.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Unchanged || again.Digest != index {
		t.Errorf("second copy: %+v, want unchanged", again)
	}
	for _, reg := range []*registrytest.Registry{testRegistry, dst} {
		if reqs := reg.Requests(); len(reqs) != 1 || reqs[0].Method != "HEAD" {
			t.Errorf("second copy sent %v, want one HEAD", reqs)
		}
	}

	dst.ResetRequests()
	within, err := roots.CopyImage(t.Context(), to, dst.Host+"/other:1", roots.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := registrytest.Count(dst.Requests()); within.Digest != index || n.Posts != 0 || n.BlobPuts != 0 || n.Mounts != len(uploaded) {
		t.Errorf("copy within the registry: %s, requests %+v; want %d mounts and no upload", within.Digest, n, len(uploaded))
	}

	pl, _ := fetch.ParsePlatform("linux/arm64")
	one, err := roots.CopyImage(t.Context(), src, dst.Host+"/arm64:1", roots.CopyOptions{Platform: &pl})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := client.Digest(t.Context(), r, &pl)
	if one.Digest != want || len(one.Manifests) != 1 {
		t.Errorf("platform copy: %s with %d manifests, want %s alone", one.Digest, len(one.Manifests), want)
	}
}

// TestPushIndex: a push of a multi-platform image pulled for one platform writes the index
// and every platform (the others' manifests and blobs from the source), so that the target's
// digest is the one ls shows; the platform pulled uploads from the cache.
func TestPushIndex(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	src := registry + "/example/multi:1"
	pl, _ := fetch.ParsePlatform("linux/amd64")
	pulled, err := roots.Pull(t.Context(), src, filepath.Join(tmp, "m"), roots.PullOptions{Cache: cache, Platform: &pl})
	if err != nil {
		t.Fatal(err)
	}
	dst := registrytest.Start(t, registrytest.Config{})
	pushed, err := roots.Push(t.Context(), src, dst.Host+"/multi:1", roots.PushOptions{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest != pulled.Index {
		t.Errorf("pushed %s, want the index %s", pushed.Digest, pulled.Index)
	}
	cached := 0
	for _, b := range pushed.Blobs {
		if b.Cached {
			cached++
		}
	}
	if cached != 1+len(pulled.Layers) {
		t.Errorf("%d blobs from the cache, want %d", cached, 1+len(pulled.Layers))
	}
	for _, tt := range []struct {
		name, image string
		platform    *fetch.Platform
	}{
		{"ByManifestDigest", registry + "/example/multi@" + pulled.Digest.String(), nil},
		{"ByPlatform", src, &pl},
	} {
		t.Run(tt.name, func(t *testing.T) {
			one, err := roots.Push(t.Context(), tt.image, dst.Host+"/one:"+strings.ToLower(tt.name), roots.PushOptions{Cache: cache, Platform: tt.platform})
			if err != nil {
				t.Fatal(err)
			}
			if one.Digest != pulled.Digest || len(one.Manifests) != 1 {
				t.Errorf("pushed %s with %d manifests, want the platform's manifest %s alone", one.Digest, len(one.Manifests), pulled.Digest)
			}
		})
	}
}

// TestCopyFromCache: a copy whose blobs the cache holds uploads them from it; the source is
// asked for its manifest's digest only.
func TestCopyFromCache(t *testing.T) {
	src, cache, pulled := pullHello(t)
	dst := registrytest.Start(t, registrytest.Config{})
	testRegistry.ResetRequests()
	copied, err := roots.CopyImage(t.Context(), src, dst.Host+"/hello:1", roots.CopyOptions{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if copied.Digest != pulled.Digest || len(copied.Blobs) != 1+len(pulled.Layers) {
		t.Fatalf("copied %+v", copied)
	}
	for _, b := range copied.Blobs {
		if b.Action != roots.BlobUploaded || !b.Cached {
			t.Errorf("blob %s: %s, cached %v; want pushed from the cache", b.Digest, b.Action, b.Cached)
		}
	}
	if reqs := testRegistry.Requests(); len(reqs) != 1 || reqs[0].Method != "HEAD" {
		t.Errorf("the source was sent %+v, want one HEAD", reqs)
	}
}

// TestCopyHolders: two images that share a base layer, copied from one registry into two
// repositories of another with one Holders and no cache: the second copy mounts the base
// layer from the first repository instead of uploading it again. Without Holders it uploads.
func TestCopyHolders(t *testing.T) {
	src := registrytest.Start(t, registrytest.Config{})
	base := registrytest.Layer{Compression: registrytest.Gzip, Entries: []registrytest.Entry{registrytest.File("base", "shared base\n")}}
	for _, name := range []string{"one", "two"} {
		top := registrytest.Layer{Compression: registrytest.Gzip, Entries: []registrytest.Entry{registrytest.File(name, name+"\n")}}
		src.Push(t, "app/"+name, "1", registrytest.Image{Layers: []registrytest.Layer{base, top}})
	}
	for _, tt := range []struct {
		name    string
		holders *roots.Holders
		mounts  int
	}{{"Holders", &roots.Holders{}, 1}, {"None", nil, 0}} {
		t.Run(tt.name, func(t *testing.T) {
			dst := registrytest.Start(t, registrytest.Config{})
			for _, name := range []string{"one", "two"} {
				dst.ResetRequests()
				_, err := roots.CopyImage(t.Context(), src.Host+"/app/"+name+":1", dst.Host+"/mirror/"+name+":1", roots.CopyOptions{Holders: tt.holders})
				if err != nil {
					t.Fatal(err)
				}
			}
			// The second copy: the base layer mounted (or not), its own layer and config uploaded.
			if n := registrytest.Count(dst.Requests()); n.Mounts != tt.mounts || n.BlobPuts != 3-tt.mounts {
				t.Errorf("second copy: requests %+v, want %d mounts and %d blob uploads", n, tt.mounts, 3-tt.mounts)
			}
		})
	}
}
