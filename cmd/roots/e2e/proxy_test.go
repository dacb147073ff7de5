package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

// TestMirrorPullThroughCache is the README's "Many hosts" recipe run for real: an upstream
// Distribution registry, a second one in proxy: mode in front of it, and roots on two "hosts"
// (two caches) pulling through the proxy with the same hosts.toml. The trees equal the
// upstream image pulled directly, file by file; the proxy's log shows the pulls; the second
// host pulls with the upstream stopped.
func TestMirrorPullThroughCache(t *testing.T) {
	NeedRoot(t)
	upstream := registrytest.Start(t, registrytest.Config{})
	upstream.Push(t, "library/app", "1.0", smallImage("through the proxy"))
	proxy := registrytest.Start(t, registrytest.Config{ProxyRemote: upstream.URL})
	ref := upstream.Host + "/library/app:1.0"

	direct := filepath.Join(t.TempDir(), "direct")
	MustPull(t, nil, "--cache", t.TempDir(), ref, direct)
	want := testtree.Scan(t, direct)
	upstream.ResetRequests()

	hostsDir := hostsToml(t, upstream.Host, fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", proxy.URL))
	env := []string{"ROOTS_HOSTS_DIR=" + hostsDir}
	pullOn := func(host string) {
		t.Helper()
		dest := filepath.Join(t.TempDir(), host)
		start := time.Now()
		r := Roots(t, env, "pull", "--verbose", "--cache", t.TempDir(), ref, dest)
		if r.Code != 0 {
			t.Fatalf("%s: exit %d: %s", host, r.Code, r.Stderr)
		}
		if strings.Contains(r.Stderr, "from http://"+upstream.Host) || !strings.Contains(r.Stderr, "from "+proxy.URL) {
			t.Errorf("%s: not everything came from the proxy:\n%s", host, r.Stderr)
		}
		SameTree(t, testtree.Scan(t, dest), want)
		t.Logf("%s: pulled through the proxy in %v; proxy: %s; upstream: %d requests", host, time.Since(start).Round(time.Millisecond), proxyCounts(proxy), len(upstream.Requests()))
	}

	pullOn("host1")
	if len(upstream.Requests()) == 0 {
		t.Errorf("the proxy did not go to the upstream")
	}
	upstream.Stop()
	proxy.ResetRequests()
	pullOn("host2") // the upstream is gone: the proxy serves from what it stored
	if c := proxyCounts(proxy); !strings.Contains(c, "blob GET 3") {
		t.Errorf("proxy log for host2: %s, want the config and both layers", c)
	}
}

// proxyCounts sums a registry's log by kind, 401s aside.
func proxyCounts(r *registrytest.Registry) string {
	c := registrytest.Count(r.Requests())
	var manifests int
	for _, q := range r.Requests() {
		if q.Method == "GET" && strings.Contains(q.Path, "/manifests/") {
			manifests++
		}
	}
	return fmt.Sprintf("manifest GET %d, HEAD %d, blob GET %d", manifests, c.Heads, c.BlobGets)
}
