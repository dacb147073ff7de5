package cas

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/rootsdev/roots/internal/disk"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
)

// A fix-up is a small directory made from an image's trees, that goes on top
// of them in an overlay mount so that the mount shows what hardlink assembly
// would (see assemble.OverlayFixup). It depends only on the trees, in order, so
// it is keyed by them and made once for every image that has the same layers.

// FixupKey names the fix-up of trees (diff ids, bottom first).
func FixupKey(trees []digest.Digest) digest.Digest {
	var b strings.Builder
	fmt.Fprintf(&b, "roots overlay fix-up v2, trees v%d\n", treeFormat)
	for _, d := range trees {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return digest.FromString(b.String())
}

// fixupRecord is a fix-up's .json.
type fixupRecord struct {
	Trees       []digest.Digest `json:"trees"`
	Fingerprint string          `json:"fingerprint,omitempty"` // see fingerprint: a fix-up links trees' files
	// Private says that the fix-up holds no file of a tree, only directories
	// and whiteouts of its own: nothing outside the cache shares them (an
	// overlay's lower layers are read-only), so it is never walked on reuse.
	// A fix-up that does link trees' files is checked on every reuse: a
	// hardlinked destination of one of those trees may have written them.
	Private bool `json:"private,omitempty"`
}

// Fixup returns the directory of the fix-up of trees (diff ids, bottom first),
// making it with build if the cache lacks it. build gets an empty directory
// on the cache's filesystem, under tmp/, and fills it; the directory is then
// published. Like trees, a fix-up is made once when several processes need it,
// and one that changed since it was made (it holds hard links to trees'
// files, which a hardlinked destination may have written) is made again.
func (c *Cache) Fixup(ctx context.Context, trees []digest.Digest, build func(ctx context.Context, dir string) error) (string, error) {
	for _, d := range trees {
		if err := checkDigest(d); err != nil {
			return "", err
		}
	}
	key := FixupKey(trees)
	final := c.fixupPath(key)
	if ok, err := c.cachedFixup(ctx, final, false); ok || err != nil {
		return final, err
	}
	lk, err := c.locks.Exclusive(ctx, c.path("tmp", "fixup-"+key.Encoded()+".lock"))
	if err != nil {
		return "", err
	}
	defer lk.Release()
	if ok, err := c.cachedFixup(ctx, final, false); ok || err != nil {
		return final, err
	}
	if _, err := c.retireDir(final, key); err != nil {
		return "", err
	}
	os.Remove(final + ".json")
	tmp, err := os.MkdirTemp(c.path("tmp"), "fixup-"+key.Encoded()[:12]+"-")
	if err != nil {
		return "", err
	}
	defer disk.RemoveAll(tmp)
	dir := tmp + "/fixup"
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := build(ctx, dir); err != nil {
		return "", fmt.Errorf("overlay fix-up %s: %w", key, err)
	}
	rec := fixupRecord{Trees: trees}
	w, err := walkFingerprint(ctx, dir, "")
	if err != nil {
		return "", fmt.Errorf("overlay fix-up %s: %w", key, err)
	}
	rec.Fingerprint, rec.Private = w.fp(), w.shared == 0
	b, _ := json.Marshal(rec)
	if err := c.writeFile(final+".json", b); err != nil {
		return "", fmt.Errorf("overlay fix-up %s: %w", key, err)
	}
	if err := disk.Syncfs(dir); err != nil {
		return "", fmt.Errorf("overlay fix-up %s: sync: %w", key, err)
	}
	if err := os.Rename(dir, final); err != nil {
		return "", fmt.Errorf("overlay fix-up %s: %w", key, err)
	}
	return final, nil
}

// cachedFixup reports whether the fix-up at dir is there and unchanged, and
// marks it used. A private fix-up is walked only when all is true (check).
func (c *Cache) cachedFixup(ctx context.Context, dir string, all bool) (bool, error) {
	if !exists(dir) || !ownObject(dir) {
		return false, nil
	}
	b, err := os.ReadFile(dir + ".json")
	if err != nil {
		return false, nil
	}
	var rec fixupRecord
	if json.Unmarshal(b, &rec) != nil {
		return false, nil
	}
	if rec.Fingerprint != "" && (all || !rec.Private) {
		same, err := fingerprintMatches(ctx, dir, rec.Fingerprint)
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil || !same {
			return false, nil
		}
	}
	touch(dir + ".json")
	return true, nil
}
