package hosts_test

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/rootsdev/roots/fetch/hosts"
	"github.com/rootsdev/roots/fetch/registrytest"
)

// blackhole is a loopback address that never completes a connection: a
// listener with a backlog of 0 that accepts nothing, its one queue slot
// taken, so that the kernel drops every further SYN (a host that is down
// behind a firewall, as a connect sees it).
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	c, err := net.DialTimeout("tcp", addr, time.Second) // fills the queue
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c2, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c2.Close()
		t.Fatal("this kernel completed a connection past a full listen backlog: the test needs a host that never completes a connect")
	}
	return addr
}

// TestMirrorConnectTimeout: a mirror that does not answer the connect is given up after the
// 5 s connect timeout, once (not retried: the server takes over, and the mirror is not tried
// again in this run).
func TestMirrorConnectTimeout(t *testing.T) {
	server := registrytest.Start(t, registrytest.Config{})
	want := server.Push(t, "team/app", "v1", testImage("slow"))
	hole := blackhole(t)
	dir := hostsDir(t, map[string]string{server.Host: fmt.Sprintf("[host.\"http://%s\"]\n", hole)})
	rec := &served{}
	set, err := hosts.Load(hosts.Config{HostsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(set, rec, 5) // the default attempts: none is spent on the dead connect
	start := time.Now()
	img, err := pull(t, c, server.Host+"/team/app:v1")
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != want.Digest {
		t.Errorf("digest %s, want %s", img.Digest, want.Digest)
	}
	if took < 4*time.Second || took > 9*time.Second {
		t.Errorf("took %v, want one 5 s connect timeout", took)
	}
	if got, want := counts(server), "manifest GET 1, HEAD 0, blob GET 3, other 0"; got != want {
		t.Errorf("server: %s, want %s", got, want)
	}
	t.Logf("blackholed mirror %s given up after one connect timeout; pull took %v; server: %s", hole, took.Round(time.Millisecond), counts(server))
}
