//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// registryBinary is the CNCF Distribution registry (Debian docker-registry).
const registryBinary = "/usr/bin/docker-registry"

// registry is a Distribution registry serving plain HTTP on loopback. It is
// started here rather than with fetch/registrytest, whose recording front
// (a Go proxy in front of the registry) would be part of every figure.
type registry struct {
	host    string // 127.0.0.1:PORT
	storage string
	cmd     *exec.Cmd
	exited  chan struct{}
	client  *http.Client
}

// startRegistry runs the registry with its storage and log under dir.
func startRegistry(ctx context.Context, dir string) (*registry, error) {
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a port: %w", err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(registryConfig(addr, storage)), 0o644); err != nil {
			return nil, err
		}
		cmd := exec.Command(registryBinary, "serve", cfgPath)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir}
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", registryBinary, err)
		}
		r := &registry{host: addr, storage: storage, cmd: cmd, exited: make(chan struct{}),
			client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, DisableCompression: true}}}
		go func() {
			cmd.Wait()
			close(r.exited)
		}()
		if err := r.waitReady(ctx); err != nil {
			r.stop()
			if attempt < 5 {
				continue
			}
			return nil, fmt.Errorf("registry did not start (log: %s): %w", log.Name(), err)
		}
		return r, nil
	}
}

func registryConfig(addr, storage string) string {
	secret := make([]byte, 16)
	rand.Read(secret)
	return fmt.Sprintf(`version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
health:
  storagedriver:
    enabled: false
`, strconv.Quote(storage), addr, hex.EncodeToString(secret))
}

func (r *registry) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.host+"/v2/", nil)
		resp, err := r.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case <-r.exited:
			return fmt.Errorf("registry exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

func (r *registry) stop() {
	r.cmd.Process.Kill()
	<-r.exited
}

// push uploads the image's blobs and manifest and sets img.ref.
func (r *registry) push(ctx context.Context, img *image) error {
	for _, l := range img.layers {
		if err := r.pushBlob(ctx, img.repo, l.digest, l.size, func() (io.ReadCloser, error) { return os.Open(l.gz) }); err != nil {
			return err
		}
	}
	cfg := img.config
	if err := r.pushBlob(ctx, img.repo, digest.FromBytes(cfg), int64(len(cfg)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(cfg)), nil }); err != nil {
		return err
	}
	u := fmt.Sprintf("http://%s/v2/%s/manifests/%s", r.host, img.repo, img.tag)
	resp, err := r.do(ctx, http.MethodPut, u, ocispec.MediaTypeImageManifest, int64(len(img.manifest)), bytes.NewReader(img.manifest))
	if err != nil {
		return fmt.Errorf("push manifest %s:%s: %w", img.repo, img.tag, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("push manifest %s:%s: %s", img.repo, img.tag, resp.Status)
	}
	img.ref = r.host + "/" + img.repo + ":" + img.tag
	return nil
}

func (r *registry) pushBlob(ctx context.Context, repo string, d digest.Digest, size int64, open func() (io.ReadCloser, error)) error {
	resp, err := r.do(ctx, http.MethodPost, fmt.Sprintf("http://%s/v2/%s/blobs/uploads/", r.host, repo), "", 0, nil)
	if err != nil {
		return fmt.Errorf("push blob %s: %w", d, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("push blob %s: start upload: %s", d, resp.Status)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("push blob %s: upload location: %w", d, err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	body, err := open()
	if err != nil {
		return err
	}
	defer body.Close()
	resp, err = r.do(ctx, http.MethodPut, loc.String(), "application/octet-stream", size, body)
	if err != nil {
		return fmt.Errorf("push blob %s: %w", d, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("push blob %s: %s", d, resp.Status)
	}
	return nil
}

// do sends one request and returns the answer with its body drained.
func (r *registry) do(ctx context.Context, method, rawURL, contentType string, size int64, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// blobURL is where a client GETs a blob of repo.
func (r *registry) blobURL(repo string, d digest.Digest) string {
	u := url.URL{Scheme: "http", Host: r.host, Path: "/v2/" + repo + "/blobs/" + d.String()}
	return u.String()
}
