package fetch

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestOfflineClient: a Client made with Offline refuses every request with ErrOffline, at
// once (no retry), whatever Transport says, and nothing reaches the registry that is up and
// would answer: neither it nor its token issuer logs a request.
func TestOfflineClient(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	kc, err := auth.NewKeychain(auth.Options{User: r.User + ":" + r.Password})
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{Transport: r.Transport, Keychain: kc, Offline: true})
	ref := mustRef(t, r.Host+"/app:1")
	d := digest.FromString("x")
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Resolve", func(ctx context.Context) error { _, err := c.Resolve(ctx, ref, nil); return err }},
		{"Digest", func(ctx context.Context) error { _, err := c.Digest(ctx, ref, nil); return err }},
		{"DigestPlatform", func(ctx context.Context) error {
			_, err := c.Digest(ctx, ref, mustPlatform(t, "linux/arm64"))
			return err
		}},
		{"OpenBlob", func(ctx context.Context) error {
			rc, err := c.OpenBlob(ctx, ref, ocispec.Descriptor{Digest: d, Size: 1})
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			return err
		}},
		{"ListTags", func(ctx context.Context) error { _, err := c.ListTags(ctx, ref); return err }},
		{"BlobExists", func(ctx context.Context) error { _, err := c.BlobExists(ctx, ref, d); return err }},
		{"PushManifest", func(ctx context.Context) error {
			_, err := c.PushManifest(ctx, ref, ocispec.MediaTypeImageManifest, []byte("{}"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(t.Context()); !errors.Is(err, ErrOffline) {
				t.Errorf("%v, want ErrOffline", err)
			}
		})
	}
	if n, m := len(r.Requests()), len(r.TokenRequests()); n+m != 0 {
		t.Errorf("the registry got %d requests and its token issuer %d, want none", n, m)
	}
}
