package cas

import (
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestTaggedImages: a repository's tag records, one per platform, without the records of
// pulls by digest or of the repositories below it.
func TestTaggedImages(t *testing.T) {
	c := openCache(t)
	d := func(s string) digest.Digest { return digest.FromString(s) }
	for _, rec := range []struct {
		name string
		r    ImageRecord
	}{
		{ImageName("h:5000", "app", "1", ""), ImageRecord{Digest: d("1 amd64"), Platform: "linux/amd64"}},
		{ImageName("h:5000", "app", "1", ""), ImageRecord{Digest: d("1 arm64"), Platform: "linux/arm64"}},
		{ImageName("h:5000", "app", "2", ""), ImageRecord{Digest: d("2"), Platform: "linux/amd64"}},
		{ImageName("h:5000", "app", "", d("by digest")), ImageRecord{Digest: d("by digest"), Platform: "linux/amd64"}},
		{ImageName("h:5000", "app/sub", "3", ""), ImageRecord{Digest: d("3"), Platform: "linux/amd64"}},
		{ImageName("h:5000", "other", "1", ""), ImageRecord{Digest: d("other"), Platform: "linux/amd64"}},
	} {
		if err := c.RecordImage(rec.name, rec.r); err != nil {
			t.Fatal(err)
		}
	}
	got := TaggedImages(c.Root(), "h:5000/app")
	var summary []string
	for tag, recs := range got {
		for _, r := range recs {
			summary = append(summary, tag+" "+r.Platform)
		}
	}
	sort.Strings(summary)
	if want := "1 linux/amd64, 1 linux/arm64, 2 linux/amd64"; strings.Join(summary, ", ") != want {
		t.Errorf("TaggedImages = %v, want %s", summary, want)
	}
	if got := TaggedImages(t.TempDir()+"/none", "h:5000/app"); len(got) != 0 {
		t.Errorf("no cache: %v", got)
	}
	if got := TaggedImages(c.Root(), "../escape"); len(got) != 0 {
		t.Errorf("a name out of images/: %v", got)
	}
}
