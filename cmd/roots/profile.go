package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// profile starts the profiles that ROOTS_PPROF=DIR asks for (a developer's
// switch, used by bench/: see bench/README.md): a CPU profile, and profiles
// of where goroutines block and wait on mutexes, and an execution trace. The
// function it returns writes them into DIR as cpu.pprof, block.pprof,
// mutex.pprof and trace.out (go tool trace: which goroutine ran on which core
// and when, what each waited for).
func profile(dir string) (stop func(), err error) {
	if dir == "" {
		return func() {}, nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory: make it first (the profiles are written into it)", dir)
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err == nil {
		err = pprof.StartCPUProfile(cpu)
	}
	if err != nil {
		return nil, err
	}
	runtime.SetBlockProfileRate(10_000) // a sample per 10 µs blocked
	runtime.SetMutexProfileFraction(10)
	tr, err := os.Create(filepath.Join(dir, "trace.out"))
	if err == nil {
		if err = trace.Start(tr); err != nil {
			tr.Close()
			tr = nil
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "roots: ROOTS_PPROF: %v\n", err)
	}
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		if tr != nil {
			trace.Stop()
			tr.Close()
		}
		for _, name := range []string{"block", "mutex"} {
			f, err := os.Create(filepath.Join(dir, name+".pprof"))
			if err == nil {
				err = pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "roots: ROOTS_PPROF: %v\n", err)
			}
		}
	}, nil
}
