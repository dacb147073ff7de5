package roots

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// Purge removes from the cache what no lease or running command uses: everything, or what the
// policy selects. It waits until no other command uses the cache.
func Purge(ctx context.Context, cache string, pol cas.Policy) (cas.Report, error) {
	rep, err := cas.Purge(ctx, cache, pol)
	if err != nil {
		return rep, fmt.Errorf("purge %s: %w", cache, err)
	}
	return rep, nil
}

// Check hashes every blob of the cache against its digest and every tree against its
// fingerprint, and repairs what is wrong. It waits until no other command uses the cache.
func Check(ctx context.Context, cache string) (cas.CheckReport, error) {
	rep, err := cas.Check(ctx, cache)
	if err != nil {
		return rep, fmt.Errorf("check %s: %w", cache, err)
	}
	return rep, nil
}

// recordImage records in c what img resolved to (see cas.RecordImage), keeps its index, and
// remembers that its repository holds its blobs (for mounts). resolved is when the tag was
// resolved: zero is now; an offline pull gives the time of the record it resolved through.
func recordImage(c *cas.Cache, img *fetch.Image, resolved time.Time) error {
	rec := cas.ImageRecord{
		Reference: img.Ref.String(), Digest: img.Digest, MediaType: img.MediaType,
		Index: img.IndexDigest, IndexType: img.IndexType,
		Platform: img.Platform.String(), Size: compressedSize(img), Layers: img.DiffIDs,
		Resolved: resolved,
	}
	name := cas.ImageName(img.Ref.Domain, img.Ref.Path, img.Ref.Tag, img.Ref.Digest)
	for _, l := range cas.LocalImages(c.Root(), name) {
		if l.Digest == img.Digest { // a commit's image, pulled: still the cache's own
			rec.Local, rec.Reference = true, l.Reference
			return c.RecordImage(name, rec)
		}
	}
	blobs := []digest.Digest{img.Digest, img.ConfigDesc.Digest}
	if img.IndexDigest != "" && img.Index != nil { // nil: an offline pull's record names an index no longer cached
		if err := c.PutBlob(img.IndexDigest, img.Index); err != nil {
			return err
		}
		blobs = append(blobs, img.IndexDigest)
	}
	for _, l := range img.Layers {
		blobs = append(blobs, l.Digest)
	}
	if err := c.AddSource(img.Ref.Name(), blobs...); err != nil {
		return err
	}
	return c.RecordImage(name, rec)
}

// Listing is what the cache holds: its images, and the live destinations that use its trees.
type Listing struct {
	Images       []ListedImage `json:"images"`
	Destinations []Destination `json:"destinations"`
	// Disk is what the cache holds on disk: blobs, trees, fix-ups and records, in allocated
	// bytes (as du counts them), each inode once.
	Disk int64 `json:"disk"`
}

// ListedImage is one platform of an image recorded in the cache: a multi-platform image
// pulled for two platforms is two.
type ListedImage struct {
	Reference    string `json:"reference"`
	Digest       string `json:"digest"`             // what the reference resolves to: the index of a multi-platform image, as roots digest prints
	Manifest     string `json:"manifest,omitempty"` // the platform's manifest (the digest, for a single-platform image)
	Platform     string `json:"platform,omitempty"`
	Size         int64  `json:"size"` // of the compressed layers
	Layers       int    `json:"layers"`
	CachedLayers int    `json:"cachedLayers"` // how many of its layers are unpacked in the cache
	// Disk is what its blobs (manifest, index, config, layers) and unpacked layers hold on disk;
	// images that share layers each count them.
	Disk    int64     `json:"disk"`
	LastUse time.Time `json:"lastUse"`
}

// Destination is a destination a pull made with the cache (see cas.Lease): what it holds and
// how it was made.
type Destination struct {
	Dest   string    `json:"dest"`
	Mode   Mode      `json:"mode"`
	Image  string    `json:"image"`
	Digest string    `json:"digest"`          // its image's manifest: the last commit's, or the one pulled
	Upper  string    `json:"upper,omitempty"` // overlay: what was written into it
	Git    bool      `json:"git,omitempty"`   // also a git repository (pull -g)
	Since  time.Time `json:"since"`
	Live   bool      `json:"live"` // false: its mount or directory is gone (a reboot, umount(8), rm)
}

// List lists the cache's images and destinations. Alone in the cache, it releases the leases
// of destinations whose mount is gone.
func List(ctx context.Context, cache string) (*Listing, error) {
	c, err := cas.Open(ctx, cache)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", cache, err)
	}
	defer c.Close()
	out := &Listing{Images: []ListedImage{}, Destinations: []Destination{}}
	images, err := c.Images()
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", cache, err)
	}
	usage, err := c.Usage(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %s: disk usage: %w", cache, err)
	}
	out.Disk = usage.Total
	for _, o := range images {
		img := ListedImage{Reference: referenceOf(o.Name), LastUse: o.LastUse.UTC()}
		if r := o.Image; r != nil {
			img.Disk = imageDisk(c, r, usage)
			if r.Reference != "" {
				img.Reference = r.Reference
			}
			img.Digest, img.Manifest, img.Platform, img.Size, img.Layers = r.Digest.String(), r.Digest.String(), r.Platform, r.Size, len(r.Layers)
			if r.Index != "" {
				img.Digest = r.Index.String()
			}
			for _, d := range r.Layers {
				if c.HasTree(d) {
					img.CachedLayers++
				}
			}
		}
		out.Images = append(out.Images, img)
	}
	leases, err := c.Leases()
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", cache, err)
	}
	for _, ls := range leases {
		live, err := ls.Live()
		if err != nil {
			return nil, err
		}
		d := Destination{
			Dest: ls.Dest, Mode: Mode(ls.Mode), Image: ls.Image, Digest: ls.Digest.String(),
			Since: ls.Created.UTC(), Live: live, Git: ls.Git,
		}
		if ls.Overlay() {
			d.Mode, d.Upper = Overlay, filepath.Join(ls.State, "upper")
		}
		out.Destinations = append(out.Destinations, d)
	}
	return out, nil
}

// imageDisk is what the image r holds on disk (see ListedImage.Disk).
func imageDisk(c *cas.Cache, r *cas.ImageRecord, u *cas.Usage) int64 {
	n := u.Blobs[r.Digest]
	if r.Index != "" {
		n += u.Blobs[r.Index]
	}
	if b, ok := c.Blob(r.Digest); ok {
		var m ocispec.Manifest
		if json.Unmarshal(b, &m) == nil {
			n += u.Blobs[m.Config.Digest]
			for _, l := range m.Layers {
				n += u.Blobs[l.Digest]
			}
		}
	}
	for _, d := range r.Layers {
		n += u.Trees[d]
	}
	return n
}

// referenceOf turns an image record's name (registry/repository/tag, or
// registry/repository/sha256-HEX) back into a reference.
func referenceOf(name string) string {
	name, _ = cas.SplitImageName(name)
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return name
	}
	repo, tag := name[:i], name[i+1:]
	if d, ok := strings.CutPrefix(tag, "sha256-"); ok {
		return repo + "@sha256:" + d
	}
	return repo + ":" + tag
}
