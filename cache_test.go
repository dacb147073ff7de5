package roots_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// TestListPlatforms: each platform pulled of a multi-platform image is its own row of List,
// under the digest the tag resolves to (the index's, as roots digest prints); the index is kept
// in the cache, every blob remembers the repository it came from, and purge takes both away.
func TestListPlatforms(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	ref := registry + "/example/multi:1"
	r, _ := fetch.ParseReference(ref)
	index, err := fetch.New(fetch.Options{}).Digest(t.Context(), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	manifests := map[string]digest.Digest{}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		pl, _ := fetch.ParsePlatform(p)
		pulled, err := roots.Pull(t.Context(), ref, filepath.Join(tmp, filepath.Base(p)), roots.PullOptions{Cache: cache, Platform: &pl})
		if err != nil {
			t.Fatal(err)
		}
		if pulled.Index != index {
			t.Errorf("%s: index %s, want %s", p, pulled.Index, index)
		}
		manifests[p] = pulled.Digest
	}
	list, err := roots.List(t.Context(), cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Images) != 2 {
		t.Fatalf("List: %+v, want two rows", list.Images)
	}
	for _, img := range list.Images {
		if img.Reference != ref || img.Digest != index.String() || img.Manifest != manifests[img.Platform].String() {
			t.Errorf("row %+v: want %s, digest %s, manifest %s", img, ref, index, manifests[img.Platform])
		}
	}
	c, err := cas.Open(t.Context(), cache)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Blob(index); !ok {
		t.Error("the index is not in the cache")
	}
	for _, d := range []digest.Digest{index, manifests["linux/arm64"]} {
		if got := c.Sources(d); len(got) != 1 || got[0] != r.Name() {
			t.Errorf("sources of %s: %q, want [%s]", d, got, r.Name())
		}
	}
	c.Close()
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		os.RemoveAll(filepath.Join(tmp, filepath.Base(p))) // a live destination keeps its image's blobs
	}
	if _, err := roots.Purge(t.Context(), cache, cas.Policy{}); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(filepath.Join(cache, "sources", "sha256")); err != nil || len(ents) != 0 {
		t.Errorf("sources after purge: %v, %v", ents, err)
	}
}

// TestListLegacyRecord: a record written before records had platforms in their names is still
// listed, and a new pull of its platform replaces it instead of adding a row.
func TestListLegacyRecord(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	ref := registry + "/example/hello:1"
	pulled, err := roots.Pull(t.Context(), ref, filepath.Join(tmp, "a"), roots.PullOptions{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "images", registry, "example", "hello")
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("records: %v, %v", ents, err)
	}
	if err := os.Rename(filepath.Join(dir, ents[0].Name()), filepath.Join(dir, "1")); err != nil {
		t.Fatal(err)
	}
	list, err := roots.List(t.Context(), cache)
	if err != nil || len(list.Images) != 1 || list.Images[0].Reference != ref || list.Images[0].Digest != pulled.Digest.String() {
		t.Fatalf("List of the old record: %+v, %v", list, err)
	}
	if _, err := roots.Pull(t.Context(), ref, filepath.Join(tmp, "b"), roots.PullOptions{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	if list, err := roots.List(t.Context(), cache); err != nil || len(list.Images) != 1 || list.Images[0].Reference != ref {
		t.Fatalf("List after a new pull: %+v, %v", list, err)
	}
}

// TestListDisk: the disk List reports for the whole cache is what du counts (each inode once:
// a hardlink DEST's files and an overlay fix-up's links to the trees do not count twice), and
// an image's is at least its blobs' and unpacked layers' bytes.
func TestListDisk(t *testing.T) {
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")
	modes := []roots.Mode{roots.Hardlink}
	if os.Geteuid() == 0 {
		modes = append(modes, roots.Overlay)
	}
	for _, mode := range modes {
		dest := filepath.Join(tmp, string(mode))
		if _, err := roots.Pull(t.Context(), registry+"/example/hello:1", dest, roots.PullOptions{Cache: cache, Mode: mode}); err != nil {
			t.Fatal(err)
		}
		if mode == roots.Overlay {
			t.Cleanup(func() { roots.Unmount(t.Context(), dest, false) })
		}
	}
	l, err := roots.List(t.Context(), cache)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("du", "-s", "--block-size=1", "-x", cache).Output()
	if err != nil {
		t.Fatal(err)
	}
	var du int64
	fmt.Sscan(string(out), &du)
	if l.Disk != du {
		t.Errorf("List says the cache holds %d bytes, du says %d", l.Disk, du)
	}
	if len(l.Images) != 1 || l.Images[0].Disk < l.Images[0].Size || l.Images[0].Disk > l.Disk {
		t.Errorf("images %+v: want one, holding at least its compressed size and at most the cache", l.Images)
	}
}
