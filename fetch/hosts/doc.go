// Package hosts reads the mirror and trust configuration that containerd
// and podman users already keep, and turns it into what fetch needs: the
// ordered hosts (fetch.Endpoint) that may serve a repository, and each
// host's TLS settings (fetch.HostTrust).
//
// Three sources, in this order of precedence for one registry:
//
//   - containerd's hosts.toml tree: DIR/<host[:port]>/hosts.toml (or
//     containerd's DIR/<host>_<port>_/), "docker.io" for Docker Hub;
//   - containers-registries.conf(5) v2: [[registry]] with prefix, location,
//     insecure, blocked and [[registry.mirror]];
//   - DIR/_default/hosts.toml, for registries neither names.
//
// Mirrors given on the command line (Config.Mirrors) come first for every
// registry. Trust comes from docker's and podman's certs.d layout
// (certs.d/HOST[:PORT]/*.crt CAs, *.cert/*.key client pairs) and from the
// hosts.toml entries naming the host (ca, client, skip_verify).
//
// Unknown keys and files that do not parse are errors naming the file and
// the key: a mirror that is silently ignored is worse than a refusal.
package hosts
