package roots_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"testing"

	"github.com/rootsdev/roots"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// registry is the host of the registry the examples and tests pull from: a real CNCF
// Distribution registry on loopback, holding example/hello:1 and the two-platform index
// example/multi:1 (linux/amd64, linux/arm64); testRegistry is that registry.
var (
	registry     string
	testRegistry *registrytest.Registry
)

func TestMain(m *testing.M) {
	tb, done := registrytest.Main("roots")
	r := registrytest.Start(tb, registrytest.Config{})
	r.Push(tb, "example/hello", "1", registrytest.Image{Layers: []registrytest.Layer{
		{Entries: []registrytest.Entry{{Name: "etc/", Type: '5'}, {Name: "etc/os-release", Body: []byte("NAME=hello\n")}}},
		{Compression: registrytest.Zstd, Entries: []registrytest.Entry{{Name: "hello.txt", Body: []byte("hello, world\n")}}},
	}})
	r.PushIndex(tb, "example/multi", "1", registrytest.OCI,
		registrytest.Image{OS: "linux", Arch: "amd64", Layers: []registrytest.Layer{{Entries: []registrytest.Entry{{Name: "arch", Body: []byte("amd64\n")}}}}},
		registrytest.Image{OS: "linux", Arch: "arm64", Layers: []registrytest.Layer{{Entries: []registrytest.Entry{{Name: "arch", Body: []byte("arm64\n")}}}}},
	)
	registry, testRegistry = r.Host, r
	code := m.Run()
	done()
	os.Exit(code)
}

// Pull an image into a new directory, with a cache that later pulls reuse.
func Example() {
	tmp, err := os.MkdirTemp("", "roots-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	pulled, err := roots.Pull(context.Background(), registry+"/example/hello:1", filepath.Join(tmp, "rootfs"), roots.PullOptions{
		Cache: filepath.Join(tmp, "cache"),
		Mode:  roots.Hardlink,
	})
	if err != nil {
		log.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(pulled.Dest, "hello.txt"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d layers, %s mode: %s", len(pulled.Layers), pulled.Mode, b)
	// Output: 2 layers, hardlink mode: hello, world
}
