package fetch

import (
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/fetch/registrytest"
)

func keychain(t *testing.T, user, password string) auth.Keychain {
	t.Helper()
	kc, err := auth.NewKeychain(auth.Options{User: user + ":" + password})
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

// pullAll resolves ref and reads every layer, as a pull would.
func pullAll(t *testing.T, c *Client, ref Reference) error {
	t.Helper()
	img, err := c.Resolve(t.Context(), ref, nil)
	if err != nil {
		return err
	}
	for _, l := range img.Layers {
		rc, err := c.OpenBlob(t.Context(), ref, l)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name string
		cfg  registrytest.Config
	}{
		{"Basic", registrytest.Config{Auth: registrytest.Basic}},
		{"Token", registrytest.Config{Auth: registrytest.Token}},
		{"TokenOverTLS", registrytest.Config{Auth: registrytest.Token, TLS: true}},
		{"BasicOverTLS", registrytest.Config{Auth: registrytest.Basic, TLS: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registrytest.Start(t, tt.cfg)
			r.Push(t, "private/app", "v1", hostImage(registrytest.OCI))
			ref := mustRef(t, r.Host+"/private/app:v1")

			if err := pullAll(t, newTestClient(t, r, keychain(t, r.User, r.Password)), ref); err != nil {
				t.Fatalf("with credentials: %v", err)
			}
			for name, kc := range map[string]auth.Keychain{
				"Anonymous":     nil,
				"WrongPassword": keychain(t, r.User, r.Password+"x"),
			} {
				_, err := newTestClient(t, r, kc).Resolve(t.Context(), ref, nil)
				if !errors.Is(err, ErrUnauthorized) {
					t.Errorf("%s: got %v, want ErrUnauthorized", name, err)
				}
			}
		})
	}
}

func TestTokenIsReusedPerRepository(t *testing.T) {
	r := registrytest.Start(t, registrytest.Config{Auth: registrytest.Token})
	r.Push(t, "a", "latest", hostImage(registrytest.OCI))
	r.Push(t, "b", "latest", hostImage(registrytest.Docker))
	c := newTestClient(t, r, keychain(t, r.User, r.Password))

	// Many pulls of one repository, some at once, take one token.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- pullAll(t, c, mustRef(t, r.Host+"/a")) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Digest(t.Context(), mustRef(t, r.Host+"/a"), nil); err != nil {
		t.Fatal(err)
	}
	if n := len(settledLog(r.TokenRequests, 1)); n != 1 {
		t.Errorf("%d token requests for one repository, want 1", n)
	}
	// Another repository has a scope of its own.
	if err := pullAll(t, c, mustRef(t, r.Host+"/b")); err != nil {
		t.Fatal(err)
	}
	if n := len(settledLog(r.TokenRequests, 2)); n != 2 {
		t.Errorf("%d token requests for two repositories, want 2", n)
	}
}
