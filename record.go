package roots

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/rootsdev/roots/cas"
	"github.com/rootsdev/roots/fetch"
)

// recordDest records in the cache the hardlink or copy destination this pull has just put in
// place (see cas.Lease): what it holds, and its directory's device and inode, so that the
// record lives while that directory is at dest. (An overlay's record is its lease, taken
// before it mounts.)
func (p *puller) recordDest(ctx context.Context, img *fetch.Image) error {
	var st unix.Stat_t
	if err := unix.Lstat(p.dest, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", p.dest, err)
	}
	c, err := cas.Open(ctx, p.opts.Cache)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Lease(&cas.Lease{
		Dest: p.dest, Mode: string(p.opts.Mode), Image: p.ref.String(), Digest: img.Digest, Index: img.IndexDigest,
		Platform: img.Platform.String(), Trees: img.DiffIDs, Git: p.opts.Git, Dev: uint64(st.Dev), Ino: st.Ino,
	})
}

// resolve finds the image to pull: an image of the cache's own making (roots commit --tag)
// that was not pushed since is the cache's, read with no request; anything else is the
// registry's, or offline the cache's record of it (see offline.go).
func (p *puller) resolve(ctx context.Context) (*fetch.Image, error) {
	if p.opts.Offline {
		img, at, err := offlineImage(p.opts.Cache, p.ref, p.opts.Platform)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", p.ref, err)
		}
		p.recorded = at
		return img, nil
	}
	if p.opts.Cache != "" {
		for _, r := range cas.LocalImages(p.opts.Cache, cas.ImageName(p.ref.Domain, p.ref.Path, p.ref.Tag, p.ref.Digest)) {
			plat, err := fetch.ParsePlatform(r.Platform)
			if err != nil || p.opts.Platform != nil && !p.opts.Platform.Match(plat) || p.ref.Digest != "" && p.ref.Digest != r.Digest {
				continue
			}
			return fetch.LocalImage(cas.BlobDir(p.opts.Cache), p.ref, r.Digest)
		}
	}
	return p.client.Resolve(ctx, p.ref, p.opts.Platform)
}
