//go:build linux

package main

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/pgzip"
)

// The machine limits that no installed tool measures alone are measured by
// this same binary, run as a child like every other row so that its CPU
// time and RSS come from the same rusage: `rootsbench -helper fetch URL...`
// and `rootsbench -helper gunzip-go|gunzip-klauspost|gunzip-pgzip FILE...`.
func runHelper(ctx context.Context, name string, args []string) error {
	switch name {
	case "fetch":
		return eachParallel(args, func(u string) error { return fetchToDiscard(ctx, u) })
	case "gunzip-go":
		return eachParallel(args, func(p string) error {
			return gunzipFile(p, func(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) })
		})
	case "gunzip-klauspost":
		return eachParallel(args, func(p string) error {
			return gunzipFile(p, func(r io.Reader) (io.ReadCloser, error) { return kgzip.NewReader(r) })
		})
	case "gunzip-pgzip":
		return eachParallel(args, func(p string) error {
			return gunzipFile(p, func(r io.Reader) (io.ReadCloser, error) { return pgzip.NewReader(r) })
		})
	}
	return fmt.Errorf("unknown helper %q", name)
}

// eachParallel runs f on every arg, as many at once as there are CPUs.
func eachParallel(args []string, f func(string) error) error {
	sem := make(chan struct{}, runtime.NumCPU())
	errs := make([]error, len(args))
	var wg sync.WaitGroup
	for i, a := range args {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f(a)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func fetchToDiscard(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{Proxy: nil, DisableCompression: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("GET %s: %d bytes, want %d", u, n, resp.ContentLength)
	}
	return nil
}

func gunzipFile(p string, open func(io.Reader) (io.ReadCloser, error)) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := open(f)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer zr.Close()
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}
