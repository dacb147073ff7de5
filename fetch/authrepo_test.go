package fetch

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rootsdev/roots/fetch/auth"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// TestAuthRepositoryKeys pulls with credentials that podman's auth.json files
// under one repository: the client's transports say which repository they are
// for, so the credential goes to that repository's pulls and to no other's.
func TestAuthRepositoryKeys(t *testing.T) {
	for _, mode := range []registrytest.Auth{registrytest.Basic, registrytest.Token} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			r := registrytest.Start(t, registrytest.Config{Auth: mode})
			r.Push(t, "private/app", "v1", hostImage(registrytest.OCI))
			r.Push(t, "private/other", "v1", hostImage(registrytest.OCI))
			path := filepath.Join(t.TempDir(), "auth.json")
			pair := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
			if err := os.WriteFile(path, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.Host+"/private/app", pair)), 0o600); err != nil {
				t.Fatal(err)
			}
			kc, err := auth.NewKeychain(auth.Options{PodmanAuthFiles: []string{path}})
			if err != nil {
				t.Fatal(err)
			}
			c := newTestClient(t, r, kc)
			if err := pullAll(t, c, mustRef(t, r.Host+"/private/app:v1")); err != nil {
				t.Fatalf("repository with a key: %v", err)
			}
			if _, err := c.Resolve(t.Context(), mustRef(t, r.Host+"/private/other:v1"), nil); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("repository without a key: got %v, want ErrUnauthorized", err)
			}
		})
	}
}
