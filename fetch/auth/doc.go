// Package auth finds registry credentials and speaks the registry's authentication
// protocol, so that the rest of fetch can issue plain HTTP requests.
//
// A Keychain answers "which credential for this registry host?" from the places users
// keep them: --user, an --auth file (docker config.json or a Google service-account
// key), $REGISTRY_AUTH_FILE, docker's config.json, podman's auth.json files, and their
// credential helpers. A RepositoryKeychain also answers for one repository, for
// podman's auth.json keys that name a repository or namespace ("quay.io/org/repo").
//
// NewTransport wraps an http.RoundTripper for one registry host. It answers the
// registry's 401 challenges (Bearer token or Basic), caches tokens and presents them
// pre-emptively, and never lets a credential or token leave that host: blob
// redirects to CDNs and object stores go out bare.
package auth
