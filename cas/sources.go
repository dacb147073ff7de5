package cas

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/opencontainers/go-digest"
)

// The cache remembers, per blob it holds, the repositories known to hold that blob too
// ("registry/repository": pulled from, pushed to), so that a push to the same registry can
// mount it instead of uploading it. The record is sources/sha256/<hex>, a JSON list written
// through tmp/ and a rename; purge removes it with its blob. It is a hint: a repository may
// have lost the blob since, and two commands that add at once may lose one of their names.

// maxSources bounds a blob's record: the most recent names are kept.
const maxSources = 16

func (c *Cache) sourcesPath(d digest.Digest) string {
	return c.path("sources", d.Algorithm().String(), d.Encoded())
}

// Sources returns the repositories ("registry/repository") known to hold blob d, most
// recently recorded first.
func (c *Cache) Sources(d digest.Digest) []string {
	if checkDigest(d) != nil {
		return nil
	}
	b, err := os.ReadFile(c.sourcesPath(d))
	if err != nil {
		return nil
	}
	var repos []string
	if json.Unmarshal(b, &repos) != nil {
		return nil
	}
	return repos
}

// AddSource records that repo ("registry/repository") holds each of ds. A blob the cache does
// not hold gets no record (nothing would remove it).
func (c *Cache) AddSource(repo string, ds ...digest.Digest) error {
	for _, d := range ds {
		if err := checkDigest(d); err != nil {
			return err
		}
		if !exists(c.blobPath(d)) {
			continue
		}
		old := c.Sources(d)
		if len(old) > 0 && old[0] == repo {
			continue
		}
		repos := append([]string{repo}, slices.DeleteFunc(old, func(s string) bool { return s == repo })...)
		b, _ := json.Marshal(repos[:min(len(repos), maxSources)])
		if err := c.writeFile(c.sourcesPath(d), b); err != nil {
			return fmt.Errorf("record sources of blob %s: %w", d, err)
		}
	}
	return nil
}

// OpenBlob opens the cached blob d to read it whole, if the cache has it. The caller verifies
// what it reads against d: a final path is complete, but no proof against rot.
func (c *Cache) OpenBlob(d digest.Digest) (*os.File, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	f, err := os.Open(c.blobPath(d))
	if err != nil {
		return nil, err
	}
	touch(c.blobPath(d))
	return f, nil
}
