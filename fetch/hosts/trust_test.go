package hosts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certPEM makes a self-signed certificate and its key, PEM encoded.
func certPEM(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func TestHostsTrust(t *testing.T) {
	cert, key := certPEM(t)
	tests := []struct {
		name      string
		files     map[string]string // under the certs.d root
		hosts     map[string]string // under the hosts dir
		host      string
		wantCerts int  // client certificates
		wantRoots bool // a pool of its own
		wantSkip  bool
		wantErr   string
	}{
		{name: "nothing configured: the system's", host: "reg.example:5000"},
		{name: "ca.crt", files: map[string]string{"reg.example:5000/ca.crt": cert}, host: "reg.example:5000", wantRoots: true},
		{name: "another host's ca is not this one's", files: map[string]string{"other.example/ca.crt": cert}, host: "reg.example:5000"},
		{name: "client pair", files: map[string]string{"reg.example/client.cert": cert, "reg.example/client.key": key}, host: "reg.example", wantCerts: 1},
		{name: "cert without key", files: map[string]string{"reg.example/client.cert": cert}, host: "reg.example", wantErr: "has no key"},
		{name: "a crt that is not PEM", files: map[string]string{"reg.example/ca.crt": "nope"}, host: "reg.example", wantErr: "no PEM certificate"},
		{name: "hosts.toml client and skip_verify", hosts: map[string]string{
			"reg.example/hosts.toml": "[host.\"https://m.example\"]\n  skip_verify = true\n  client = [[\"c.pem\", \"k.pem\"]]\n",
			"reg.example/c.pem":      cert, "reg.example/k.pem": key,
		}, host: "m.example", wantCerts: 1, wantSkip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certs := write(t, filepath.Join(dir, "certs.d"), tt.files)
			var warned []string
			s, err := Load(Config{CertsDirs: []string{certs}, HostsDir: write(t, filepath.Join(dir, "hosts.d"), tt.hosts), Warn: func(w string) { warned = append(warned, w) }})
			if err != nil {
				t.Fatal(err)
			}
			tr, err := s.Trust(tt.host)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(certs, tt.host) + "/*.crt"; len(tr.Places) == 0 || tr.Places[0] != want {
				t.Errorf("places %q, want %s first", tr.Places, want)
			}
			if tr.TLS == nil {
				if tt.wantCerts > 0 || tt.wantRoots || tt.wantSkip {
					t.Fatal("no TLS configuration")
				}
				return
			}
			if len(tr.TLS.Certificates) != tt.wantCerts || (tr.TLS.RootCAs != nil) != tt.wantRoots || tr.TLS.InsecureSkipVerify != tt.wantSkip {
				t.Errorf("certs %d, own roots %v, skip %v", len(tr.TLS.Certificates), tr.TLS.RootCAs != nil, tr.TLS.InsecureSkipVerify)
			}
			s.Trust(tt.host)
			if tt.wantSkip != (len(warned) == 1) {
				t.Errorf("warnings %q", warned)
			}
		})
	}
}

// FuzzHostsFile: no hosts.toml makes the reader panic; what it accepts has hosts with a
// scheme and an address.
func FuzzHostsFile(f *testing.F) {
	f.Add("server = \"https://r.example\"\n[host.\"http://127.0.0.1:5000\"]\n  capabilities = [\"pull\"]\n  ca = [\"a\", \"b\"]\n  client = [[\"c\", \"k\"]]\n  override_path = true\n  [host.\"http://127.0.0.1:5000\".header]\n    x = [\"1\"]\n")
	f.Add("[host.\"x\"]\nskip_verify = 1\n")
	f.Fuzz(func(t *testing.T, body string) {
		dir := write(t, t.TempDir(), map[string]string{"hosts.toml": body})
		hf, err := readHostsFile(filepath.Join(dir, "hosts.toml"))
		if err != nil {
			return
		}
		for _, h := range hf.hosts {
			if h.scheme == "" || h.addr == "" {
				t.Errorf("accepted a host without scheme or address: %+v", h)
			}
		}
	})
}
