package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/rootsdev/roots/fetch"
	"github.com/rootsdev/roots/fetch/hosts"
)

// The places docker, podman and containerd keep mirrors and trust.
const (
	rootsHostsDir      = "/etc/roots/hosts.d"
	containerdHostsDir = "/etc/containerd/certs.d"
	registriesConf     = "/etc/containers/registries.conf"
	registriesConfDir  = "/etc/containers/registries.conf.d"
)

var certsDirs = []string{"/etc/docker/certs.d", "/etc/containers/certs.d"}

// mirrors loads the mirror and trust configuration into o: the hosts.toml
// directory, registries.conf (CONTAINERS_REGISTRIES_CONF alone when set,
// as podman reads it, else the file and its drop-ins), certs.d and
// --mirror. --verbose reports which host served what.
func (f registryFlags) mirrors(e *env, o *fetch.Options) error {
	cfg := hosts.Config{CertsDirs: certsDirs, Mirrors: f.Mirror, RegistriesConf: registriesConf, RegistriesConfDir: registriesConfDir}
	switch {
	case f.HostsDir != "":
		if st, err := os.Stat(f.HostsDir); err != nil || !st.IsDir() {
			return usagef("--hosts-dir %s (or ROOTS_HOSTS_DIR): not a directory", f.HostsDir)
		}
		cfg.HostsDir = f.HostsDir
	case isDir(rootsHostsDir):
		cfg.HostsDir = rootsHostsDir
	default:
		cfg.HostsDir = containerdHostsDir
	}
	if p, ok := lookupEnv(e, "CONTAINERS_REGISTRIES_CONF"); ok {
		cfg.RegistriesConf, cfg.RegistriesConfDir = p, ""
	}
	w := &lineWriter{w: e.stderr}
	cfg.Warn = func(s string) { w.printf("roots: %s\n", s) }
	if f.Verbose {
		cfg.Note = func(s string) { w.printf("roots: %s\n", s) }
		o.Served = func(s fetch.Served) { w.printf("roots: %s %s from %s\n", s.Kind, s.Name, s.Host) }
	}
	set, err := hosts.Load(cfg)
	if err != nil {
		if errors.Is(err, hosts.ErrConfig) {
			return usageError{err}
		}
		return err
	}
	o.Endpoints, o.Trust = set.Endpoints, set.Trust
	return nil
}

// lookupEnv is getenv that tells an unset variable from an empty one.
func lookupEnv(e *env, name string) (string, bool) {
	v := e.getenv(name)
	return v, v != ""
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// lineWriter writes whole lines from concurrent blob streams.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}
