package hosts

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rootsdev/roots/fetch"
)

type trustEntry struct {
	trust fetch.HostTrust
	err   error
}

// Trust returns how to reach hostport over TLS: the system's CAs plus the
// *.crt files of each certs.d root's HOST[:PORT] directory and the ca files
// of the hosts.toml entries for that host; client pairs (*.cert with its
// *.key, and client entries); skip_verify, with one warning. registries.conf's
// insecure allows plain HTTP and unverified TLS, as podman does.
func (s *Set) Trust(hostport string) (fetch.HostTrust, error) {
	s.mu.Lock()
	if e, ok := s.trusts[hostport]; ok {
		s.mu.Unlock()
		return e.trust, e.err
	}
	s.mu.Unlock()
	t, err := s.trust(hostport)
	s.mu.Lock()
	s.trusts[hostport] = trustEntry{t, err}
	s.mu.Unlock()
	return t, err
}

func (s *Set) trust(hostport string) (fetch.HostTrust, error) {
	var t fetch.HostTrust
	var cas []string
	var pairs [][2]string
	var skipFrom string
	for _, root := range s.certRoots() {
		dir := filepath.Join(root, hostport)
		t.Places = append(t.Places, dir+"/*.crt")
		c, p, err := certsDir(dir)
		if err != nil {
			return t, err
		}
		cas, pairs = append(cas, c...), append(pairs, p...)
	}
	for _, h := range s.hostsFor(hostport) {
		cas, pairs = append(cas, h.ca...), append(pairs, h.clients...)
		t.Places = append(t.Places, h.ca...)
		if h.skipVerify != nil && *h.skipVerify {
			skipFrom = "skip_verify = true in " + h.file
		}
		if h.dialTimeout > 0 {
			t.DialTimeout = h.dialTimeout
		}
	}
	if s.insecure(hostport) {
		t.Insecure = true
		skipFrom = "insecure = true in registries.conf"
	}
	if len(cas) == 0 && len(pairs) == 0 && skipFrom == "" {
		return t, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cas) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, f := range cas {
			pem, err := os.ReadFile(f)
			if err != nil {
				return t, fmt.Errorf("CA for %s: %w", hostport, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return t, fmt.Errorf("CA for %s: %s holds no PEM certificate: %w", hostport, f, ErrConfig)
			}
		}
		cfg.RootCAs = pool
	}
	for _, p := range pairs {
		cert, err := loadPair(p)
		if err != nil {
			return t, fmt.Errorf("client certificate for %s: %w", hostport, err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	if skipFrom != "" {
		cfg.InsecureSkipVerify = true
		s.tell(s.cfg.Warn, "skip "+hostport, fmt.Sprintf("warning: TLS certificates of %s are not verified (%s)", hostport, skipFrom))
	}
	t.TLS = cfg
	return t, nil
}

// certRoots are the certs.d roots, then the hosts directory.
func (s *Set) certRoots() []string {
	roots := append([]string(nil), s.cfg.CertsDirs...)
	if s.cfg.HostsDir != "" {
		roots = append(roots, s.cfg.HostsDir)
	}
	return roots
}

// certsDir lists dir's CAs (*.crt) and client pairs (*.cert with the *.key
// of the same name), as docker reads certs.d. A missing dir is empty.
func certsDir(dir string) (cas []string, pairs [][2]string, err error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("certificates: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		f := filepath.Join(dir, n)
		switch {
		case strings.HasSuffix(n, ".crt"):
			cas = append(cas, f)
		case strings.HasSuffix(n, ".cert"):
			key := strings.TrimSuffix(f, ".cert") + ".key"
			if _, err := os.Stat(key); err != nil {
				return nil, nil, fmt.Errorf("client certificate %s has no key %s: %w", f, key, ErrConfig)
			}
			pairs = append(pairs, [2]string{f, key})
		case strings.HasSuffix(n, ".key"):
			if _, err := os.Stat(strings.TrimSuffix(f, ".key") + ".cert"); err != nil {
				return nil, nil, fmt.Errorf("key %s has no client certificate %s.cert: %w", f, strings.TrimSuffix(f, ".key"), ErrConfig)
			}
		}
	}
	return cas, pairs, nil
}

// loadPair loads a client certificate and its key (key "" = in the cert file).
func loadPair(p [2]string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(p[0])
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM := certPEM
	if p[1] != "" {
		if keyPEM, err = os.ReadFile(p[1]); err != nil {
			return tls.Certificate{}, err
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", p[0], err)
	}
	return cert, nil
}

// hostsFor lists the hosts.toml entries that name hostport: hosts, servers,
// and the top level of a registry's own file.
func (s *Set) hostsFor(hostport string) []host {
	var out []host
	names := make([]string, 0, len(s.files))
	for n := range s.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := s.files[n]
		for _, h := range f.hosts {
			if h.addr == hostport {
				out = append(out, h)
			}
		}
		srv := f.server
		if srv.addr == hostport || (srv.addr == "" && n != "_default" && apiHost(n) == hostport) {
			out = append(out, srv)
		}
	}
	return out
}

// insecure tells whether registries.conf marks hostport insecure (a
// registry's location or a mirror).
func (s *Set) insecure(hostport string) bool {
	for _, r := range s.regs {
		if r.insecure && !strings.HasPrefix(r.prefix, "*") {
			loc := r.location
			if loc == "" {
				loc = r.prefix
			}
			if h, _, _ := strings.Cut(loc, "/"); apiHost(h) == hostport {
				return true
			}
		}
		for _, m := range r.mirrors {
			if h, _, _ := strings.Cut(m.location, "/"); m.insecure && apiHost(h) == hostport {
				return true
			}
		}
	}
	return false
}
