package registrytest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// Main returns a testing.TB for a TestMain, whose registries outlive single tests (an
// Example, which gets no testing.T, pulls from one). Fatalf prints, runs the cleanups and
// exits 1; done runs the cleanups, last first.
func Main(name string) (tb testing.TB, done func()) {
	ctx, cancel := context.WithCancel(context.Background())
	m := &mainTB{name: name, ctx: ctx}
	m.Cleanup(cancel)
	return m, m.done
}

// mainTB implements what this package uses of testing.TB; the embedded nil TB is never called.
type mainTB struct {
	testing.TB
	name string
	ctx  context.Context

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

func (m *mainTB) Helper()                         {}
func (m *mainTB) Name() string                    { return m.name }
func (m *mainTB) Context() context.Context        { return m.ctx }
func (m *mainTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func (m *mainTB) Errorf(format string, args ...any) {
	m.mu.Lock()
	m.failed = true
	m.mu.Unlock()
	m.Logf(format, args...)
}

func (m *mainTB) Fatalf(format string, args ...any) {
	m.Errorf(format, args...)
	m.done()
	os.Exit(1)
}

func (m *mainTB) Fatal(args ...any) { m.Fatalf("%s", fmt.Sprint(args...)) }

func (m *mainTB) Failed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed
}

func (m *mainTB) Cleanup(f func()) {
	m.mu.Lock()
	m.cleanups = append(m.cleanups, f)
	m.mu.Unlock()
}

func (m *mainTB) TempDir() string {
	dir, err := os.MkdirTemp("", m.name+"-")
	if err != nil {
		m.Fatalf("TempDir: %v", err)
	}
	m.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// done runs the cleanups, last first, once.
func (m *mainTB) done() {
	for {
		m.mu.Lock()
		n := len(m.cleanups)
		if n == 0 {
			m.mu.Unlock()
			return
		}
		f := m.cleanups[n-1]
		m.cleanups = m.cleanups[:n-1]
		m.mu.Unlock()
		f()
	}
}
