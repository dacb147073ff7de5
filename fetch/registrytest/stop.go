package registrytest

import (
	"net"
	"sync/atomic"
	"testing"
)

// Stop takes the registry off the network before the test ends, as if its host went down:
// its address (Host) and the token issuer's stop listening, and the registry process is
// killed. A client then finds the connection refused, and the test may listen on Host's port
// itself (to count what still tries to connect). Stop is harmless to call again; the test's
// cleanup calls it anyway.
func (r *Registry) Stop() {
	r.front.f.stop()
	if r.issuerFnt != nil {
		r.issuerFnt.f.stop()
	}
	r.stopProc()
}

// Listener counts the connections made to an address, accepting and closing each: put on a
// stopped registry's Host, it tells whether a client that should stay offline tried.
type Listener struct {
	ln    net.Listener
	count atomic.Int64
	done  chan struct{}
}

// Listen listens on host ("127.0.0.1:PORT", a stopped registry's Host) until the test ends.
func Listen(t testing.TB, host string) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", host)
	if err != nil {
		t.Fatalf("registrytest: listen on %s: %v", host, err)
	}
	l := &Listener{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.count.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-l.done
	})
	return l
}

// Connections is how many connections were made so far.
func (l *Listener) Connections() int { return int(l.count.Load()) }
