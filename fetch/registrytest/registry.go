// Package registrytest runs a real CNCF Distribution registry (Debian's
// docker-registry 2.8) on 127.0.0.1 for tests, with the parts a test needs
// around it: basic or token authentication (the harness is its own token
// issuer), TLS with a throwaway CA, images built in memory and pushed to it,
// a request log, and fault proxies that cut, corrupt, slow down or refuse
// what the registry sends. Every registry-facing test in roots uses it, so
// that clients are tested against the real protocol, not a mock of it.
//
// It is imported only from _test.go files.
package registrytest

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is the registry the harness runs.
const RegistryBinary = "/usr/bin/docker-registry"

// idHeader is set by the registry on every answer (http.headers in its
// config) so that the start-up probe knows it reached this registry and not
// another one that took the same port.
const idHeader = "X-Registrytest-Id"

// Auth says how a started registry authenticates clients.
type Auth int

const (
	Anonymous Auth = iota // no authentication
	Basic                 // htpasswd (bcrypt), challenged with WWW-Authenticate: Basic
	Token                 // Docker token protocol with the harness as issuer
)

func (a Auth) String() string {
	switch a {
	case Anonymous:
		return "anonymous"
	case Basic:
		return "basic"
	case Token:
		return "token"
	}
	return "Auth(" + strconv.Itoa(int(a)) + ")"
}

// Config says what registry Start runs.
type Config struct {
	Auth Auth
	// TLS serves HTTPS (registry and token issuer) with a certificate from a
	// test CA made by the harness.
	TLS bool
	// ClientCerts (with TLS) makes the registry's address demand a client
	// certificate that the test CA issued (mutual TLS); ClientCertFile and
	// ClientKeyFile hold one.
	ClientCerts bool
	// Users maps user to password, accepted by Basic and by the Token issuer.
	// Default {"alice": "secret"} when Auth != Anonymous.
	Users map[string]string
	// TokenTTL is the lifetime of issued tokens (Token auth; default 5m).
	// Note that the registry accepts a token up to 60s after it expired
	// (its clock-skew leeway); IssueToken with a negative TTL makes one it refuses.
	TokenTTL time.Duration
	// AnonymousPull lets the Token issuer grant pull to anonymous clients
	// (like Docker Hub). Without it an anonymous client gets a token with no
	// access, and the registry answers 401 to it.
	AnonymousPull bool
	// ProxyRemote runs the registry as a pull-through cache of this registry URL
	// (Distribution's "proxy: remoteurl:"): it fetches what it lacks from there, stores
	// it, and refuses pushes.
	ProxyRemote string
}

// Registry is a running registry. Its address (Host, URL) is a recording
// front that forwards to the real registry process.
type Registry struct {
	Host   string // "127.0.0.1:PORT": what goes into an image reference
	URL    string // "http(s)://127.0.0.1:PORT"
	CAFile string // PEM of the test CA (TLS only), for a client's trust
	// ClientCertFile and ClientKeyFile are a client certificate the registry accepts
	// (ClientCerts only), in PEM.
	ClientCertFile, ClientKeyFile string
	Transport                     http.RoundTripper // trusts the CA; the base transport for clients under test
	// User and Password are a valid credential (the alphabetically first of
	// Users) when Auth != Anonymous.
	User, Password string
	Users          map[string]string // every accepted credential
	TokenRealm     string            // token issuer URL (Token auth)
	TokenService   string            // service named in challenges and tokens (Token auth)

	cfg        Config
	backend    *url.URL // the registry process, plain HTTP on loopback
	front      *Front
	issuer     *issuer
	issuerFnt  *Front
	serverCert *tls.Certificate // TLS only
	clientCAs  *x509.CertPool   // ClientCerts only: who may connect
	toBackend  *http.Transport  // used by fronts and by Push
	errLog     *log.Logger
	stopProc   func() // kills the registry process (once)
}

// Start runs a registry for the test and stops it when the test ends. It
// fails the test if the registry binary is missing or does not come up.
// Safe for parallel tests: every registry has its own ports, storage and keys.
func Start(t testing.TB, cfg Config) *Registry {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Fatalf("registrytest: %s is missing (%v); install it with: apt-get install docker-registry", RegistryBinary, err)
	}
	if cfg.Auth != Anonymous && len(cfg.Users) == 0 {
		cfg.Users = map[string]string{"alice": "secret"}
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 5 * time.Minute
	}
	dir := t.TempDir()
	r := &Registry{cfg: cfg, Users: cfg.Users}
	if cfg.Auth != Anonymous {
		names := make([]string, 0, len(cfg.Users))
		for u := range cfg.Users {
			names = append(names, u)
		}
		sort.Strings(names)
		r.User, r.Password = names[0], cfg.Users[names[0]]
	}

	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	// Registered first, so it runs last: after the process is gone.
	t.Cleanup(func() {
		logFile.Close()
		if t.Failed() {
			t.Logf("registrytest: registry log %s:\n%s", logPath, tail(logPath, 64<<10))
		}
	})
	r.errLog = log.New(logFile, "registrytest: ", log.LstdFlags|log.Lmicroseconds)

	r.setupTLS(t, dir)
	r.toBackend = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	t.Cleanup(r.toBackend.CloseIdleConnections)

	authYAML := r.setupAuth(t, dir)
	r.backend, r.stopProc = startProcess(t, dir, logFile, authYAML+proxyYAML(cfg.ProxyRemote))
	fnt := startFrontMutual(t, r.serverCert, r.clientCAs, newProxy(r.backend, r.toBackend, r.errLog), r.errLog)
	r.front = &Front{Host: fnt.host, URL: fnt.url, f: fnt}
	r.Host, r.URL = fnt.host, fnt.url
	return r
}

// proxyYAML is the config section of a pull-through cache of remote.
func proxyYAML(remote string) string {
	if remote == "" {
		return ""
	}
	return "\nproxy:\n  remoteurl: " + strconv.Quote(remote) + "\n"
}

// Requests returns a copy of the log of requests the registry's address
// received (Push talks to the registry directly and is not in it).
func (r *Registry) Requests() []Request { return r.front.Requests() }

// ResetRequests empties the request log.
func (r *Registry) ResetRequests() { r.front.ResetRequests() }

// TokenRequests returns a copy of the log of requests the token issuer
// received (Token auth; nil otherwise).
func (r *Registry) TokenRequests() []Request {
	if r.issuerFnt == nil {
		return nil
	}
	return r.issuerFnt.Requests()
}

// setupTLS makes the CA and the loopback server certificate, and the
// client transport that trusts them.
func (r *Registry) setupTLS(t testing.TB, dir string) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if r.cfg.TLS {
		ca, err := newCA()
		if err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		cert, err := ca.serverCert()
		if err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		r.serverCert = &cert
		r.CAFile = filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(r.CAFile, ca.pem, 0o644); err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: ca.pool(), MinVersion: tls.VersionTLS12}
		if r.cfg.ClientCerts {
			certPEM, keyPEM, err := ca.clientCert()
			if err != nil {
				t.Fatalf("registrytest: %v", err)
			}
			r.ClientCertFile, r.ClientKeyFile = filepath.Join(dir, "client.cert"), filepath.Join(dir, "client.key")
			if err := os.WriteFile(r.ClientCertFile, certPEM, 0o644); err != nil {
				t.Fatalf("registrytest: %v", err)
			}
			if err := os.WriteFile(r.ClientKeyFile, keyPEM, 0o600); err != nil {
				t.Fatalf("registrytest: %v", err)
			}
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatalf("registrytest: %v", err)
			}
			tr.TLSClientConfig.Certificates = []tls.Certificate{pair}
			r.clientCAs = ca.pool()
		}
	}
	t.Cleanup(tr.CloseIdleConnections)
	r.Transport = tr
}

// setupAuth writes what the configured Auth needs (htpasswd, the issuer's
// certificate), starts the issuer for Token, and returns the registry
// config's auth section.
func (r *Registry) setupAuth(t testing.TB, dir string) string {
	t.Helper()
	switch r.cfg.Auth {
	case Anonymous:
		return ""
	case Basic:
		var b strings.Builder
		for _, u := range sortedKeys(r.cfg.Users) {
			hash, err := bcrypt.GenerateFromPassword([]byte(r.cfg.Users[u]), bcrypt.MinCost)
			if err != nil {
				t.Fatalf("registrytest: htpasswd: %v", err)
			}
			fmt.Fprintf(&b, "%s:%s\n", u, hash)
		}
		path := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		return fmt.Sprintf("auth:\n  htpasswd:\n    realm: %s\n    path: %s\n", strconv.Quote("registrytest"), strconv.Quote(path))
	case Token:
		is, err := newIssuer(r.cfg)
		if err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		r.issuer = is
		fnt := startFront(t, r.serverCert, is, r.errLog)
		r.issuerFnt = &Front{Host: fnt.host, URL: fnt.url, f: fnt}
		r.TokenRealm = fnt.url + "/token"
		r.TokenService = is.service
		bundle := filepath.Join(dir, "token-signer.pem")
		if err := os.WriteFile(bundle, pemCert(is.certDER), 0o644); err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		return fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			strconv.Quote(r.TokenRealm), strconv.Quote(is.service), strconv.Quote(is.name), strconv.Quote(bundle))
	}
	t.Fatalf("registrytest: unknown Auth %v", r.cfg.Auth)
	return ""
}

// startProcess runs the registry on a free loopback port and waits until it
// answers. A port taken between picking and binding is retried.
func startProcess(t testing.TB, dir string, logFile *os.File, authYAML string) (*url.URL, func()) {
	t.Helper()
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	const attempts = 10
	for attempt := 1; ; attempt++ {
		addr, err := freePort()
		if err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		id := randomHex(16)
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(registryConfig(addr, storage, id, authYAML)), 0o644); err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		offset, _ := logFile.Seek(0, 2)
		cmd := exec.Command(RegistryBinary, "serve", cfgPath)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir} // no REGISTRY_* overrides from the caller
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = procAttr()
		if err := cmd.Start(); err != nil {
			t.Fatalf("registrytest: start %s: %v", RegistryBinary, err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cmd.Process.Kill()
				<-exited
			})
		}
		err = waitReady(addr, id, exited)
		if err == nil {
			t.Cleanup(stop)
			return &url.URL{Scheme: "http", Host: addr}, stop
		}
		stop()
		out := readFrom(logFile.Name(), offset)
		if strings.Contains(out, "address already in use") && attempt < attempts {
			continue
		}
		t.Fatalf("registrytest: registry did not start: %v\n%s", err, out)
	}
}

// waitReady polls GET /v2/ until the registry with this id answers (any
// status: 401 is an answer), the process exits, or a minute passes.
func waitReady(addr, id string, exited <-chan struct{}) error {
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-exited:
			return fmt.Errorf("registry exited")
		default:
		}
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.Header.Get(idHeader) == id {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s after a minute (last error: %v)", addr, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("registry exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// registryConfig is the registry's YAML: filesystem storage, deletes
// allowed, no health checks, upload purging or notifications.
func registryConfig(addr, storage, id, authYAML string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  headers:
    %s: [%s]
health:
  storagedriver:
    enabled: false
%s`, strconv.Quote(storage), addr, randomHex(16), idHeader, id, authYAML)
}

// freePort returns a loopback address whose port was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tail returns at most the last n bytes of a file.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		return "[...]\n" + string(b)
	}
	return string(b)
}

func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	return string(b[offset:])
}
