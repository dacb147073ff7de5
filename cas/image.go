package cas

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// PutBlob stores a small blob (a manifest, a config) after checking its digest. A cached copy
// that differs from b (it rotted, or was written over) is replaced.
func (c *Cache) PutBlob(d digest.Digest, b []byte) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	if got := digest.NewDigestFromBytes(digest.SHA256, sha256Sum(b)); got != d {
		return fmt.Errorf("blob %s: %w: got %s", d, ErrDigestMismatch, got)
	}
	path := c.blobPath(d)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		touch(path)
		return nil
	} // else absent, or rotted or replaced since: (written) again, so that an offline read finds it sound
	if err := c.writeFile(path, b); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	return nil
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// ImageRecord is what the cache remembers of a resolved image reference.
type ImageRecord struct {
	Reference string          `json:"reference,omitempty"` // as the user named it, normalized
	Digest    digest.Digest   `json:"digest"`              // of the platform's manifest
	MediaType string          `json:"mediaType,omitempty"` // of the platform's manifest
	Index     digest.Digest   `json:"index,omitempty"`     // of the index it was chosen from, if any
	IndexType string          `json:"indexType,omitempty"` // media type of Index
	Platform  string          `json:"platform,omitempty"`  // os/arch[/variant]
	Size      int64           `json:"size,omitempty"`      // of the compressed layers
	Layers    []digest.Digest `json:"layers,omitempty"`    // diff ids, bottom first
	Resolved  time.Time       `json:"resolved"`
	// Local: the image was made here (roots commit) and has not been pushed since; purge
	// keeps it, its blobs and its trees.
	Local bool `json:"local,omitempty"`
}

// ImageName is the cache's name for an image reference: registry/repository/tag, or
// registry/repository/sha256-<hex> for a reference by digest alone. RecordImage takes it.
func ImageName(registry, repository, tag string, d digest.Digest) string {
	if tag == "" {
		tag = strings.Replace(d.String(), ":", "-", 1)
	}
	return registry + "/" + repository + "/" + tag
}

// RecordImage remembers that name (see ImageName) resolved to r.Digest for r.Platform now: one
// record per name and platform (images/<name>@<os-arch[-variant]>), so that every platform
// pulled of a multi-platform image has its own. A record of the same platform written before
// records had platforms in their names (images/<name>) is replaced. The record's mtime is the
// image's last use.
func (c *Cache) RecordImage(name string, r ImageRecord) error {
	if err := checkDigest(r.Digest); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	legacy := c.path("images", filepath.FromSlash(name))
	if r.Platform != "" {
		if b, err := os.ReadFile(legacy); err == nil {
			var old ImageRecord
			if json.Unmarshal(b, &old) != nil || old.Platform == r.Platform || old.Platform == "" {
				os.Remove(legacy)
			}
		}
		name = platformName(name, r.Platform)
	}
	path := c.path("images", filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("record image %s: %w", name, err)
	}
	if r.Resolved.IsZero() {
		r.Resolved = time.Now().UTC()
	}
	b, _ := json.Marshal(r)
	if err := c.writeFile(path, b); err != nil {
		return fmt.Errorf("record image %s: %w", name, err)
	}
	return nil
}

// ImageRecordOf reads the record of name (see ImageName) for platform, if the cache has one.
func (c *Cache) ImageRecordOf(name, platform string) (ImageRecord, bool) {
	if checkName(name) != nil {
		return ImageRecord{}, false
	}
	b, err := os.ReadFile(c.path("images", filepath.FromSlash(platformName(name, platform))))
	if err != nil {
		return ImageRecord{}, false
	}
	var r ImageRecord
	if json.Unmarshal(b, &r) != nil {
		return ImageRecord{}, false
	}
	return r, true
}

// platformName is the name of the record of name (see ImageName) for platform (os/arch[/variant]).
func platformName(name, platform string) string {
	return name + "@" + strings.ReplaceAll(platform, "/", "-")
}

// SplitImageName splits the name of an image record (Object.Name) into the name ImageName
// made and the platform part, "" for a record written before records had platforms.
func SplitImageName(name string) (image, platform string) {
	image, platform, _ = strings.Cut(name, "@")
	return image, platform
}

// checkName refuses a name that could leave images/: empty, absolute, or with
// "." or ".." components.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") {
		return fmt.Errorf("image name %q: not a relative path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("image name %q: bad component %q", name, part)
		}
	}
	return nil
}

// maxLocalBlob bounds what Blob reads: it serves manifests and configs.
const maxLocalBlob = 16 << 20

// Blob returns the cached blob d (a manifest or a config, at most 16 MiB), if
// the cache has it. The caller checks what it gets against d: Blob only
// reads a final path, which is complete, but is no proof against rot.
func (c *Cache) Blob(d digest.Digest) ([]byte, bool) { return BlobDir(c.root).Blob(d) }

// BlobDir reads the blobs of the cache at its root without opening the cache
// (and waits for no lock): a blob at its final path is complete, and a purge
// that takes it meanwhile makes Blob report that it has none.
type BlobDir string

// Blob is Cache.Blob.
func (b BlobDir) Blob(d digest.Digest) ([]byte, bool) {
	if checkDigest(d) != nil {
		return nil, false
	}
	f, err := os.Open(filepath.Join(string(b), "blobs", d.Algorithm().String(), d.Encoded()))
	if err != nil {
		return nil, false
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxLocalBlob+1))
	if err != nil || len(body) > maxLocalBlob {
		return nil, false
	}
	return body, true
}

// LocalImages returns the records of name (see ImageName) that a commit made and that were
// not pushed since (ImageRecord.Local), one per platform, from the cache at root without
// opening it: records are replaced by renames, so a read sees a whole one.
func LocalImages(root, name string) []ImageRecord {
	if checkName(name) != nil {
		return nil
	}
	path := filepath.Join(root, "images", filepath.FromSlash(name))
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil
	}
	base := filepath.Base(path)
	var out []ImageRecord
	for _, e := range ents {
		if n := e.Name(); !e.Type().IsRegular() || n != base && !strings.HasPrefix(n, base+"@") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(filepath.Dir(path), e.Name()))
		if err != nil {
			continue
		}
		var r ImageRecord
		if json.Unmarshal(b, &r) == nil && r.Local && checkDigest(r.Digest) == nil {
			out = append(out, r)
		}
	}
	return out
}

// MarkPushed clears Local on every record of the image d (its manifest's digest): it is in a
// registry now, and purge may remove it like any other.
func (c *Cache) MarkPushed(d digest.Digest) error {
	imgs, err := c.Images()
	if err != nil {
		return err
	}
	for _, o := range imgs {
		if o.Image == nil || !o.Image.Local || o.Image.Digest != d {
			continue
		}
		r := *o.Image
		r.Local = false
		name, _ := SplitImageName(o.Name)
		if err := c.RecordImage(name, r); err != nil {
			return err
		}
	}
	return nil
}

// TaggedImages returns the records of repository's tags (repository as ImageName takes it:
// registry/repository), by tag, one per platform pulled, from the cache at root without
// opening it, as LocalImages does. Records of pulls by digest are left out; a cache that
// does not exist has none.
func TaggedImages(root, repository string) map[string][]ImageRecord {
	out := map[string][]ImageRecord{}
	if checkName(repository) != nil {
		return out
	}
	dir := filepath.Join(root, "images", filepath.FromSlash(repository))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		tag, _ := SplitImageName(e.Name())
		if !e.Type().IsRegular() || strings.HasPrefix(tag, "sha256-") || strings.HasPrefix(tag, "sha512-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var r ImageRecord
		if json.Unmarshal(b, &r) == nil && checkDigest(r.Digest) == nil {
			out[tag] = append(out[tag], r)
		}
	}
	return out
}
