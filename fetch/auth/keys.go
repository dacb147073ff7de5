package auth

import "strings"

// authKey turns a config.json "auths" key into the key the credential is filed
// under, and says whether it names a namespace or repository rather than a
// whole host. A bare host and a URL (docker's legacy keys such as
// "https://index.docker.io/v1/" or "http://host:5000/v2/") name the host; a key
// with a path and no scheme, as podman writes for "podman login
// quay.io/org/repo", names that repository: "quay.io/org/repo".
func authKey(k string) (key string, scoped bool) {
	s := strings.TrimSpace(k)
	if strings.Contains(s, "://") {
		return normalizeHost(s), false
	}
	host, path, _ := strings.Cut(s, "/")
	path = strings.Trim(path, "/")
	if path == "" {
		return normalizeHost(host), false
	}
	return normalizeHost(host) + "/" + path, true
}

// authKeys lists the keys that may hold the credential for repo on host, most
// specific first, as podman looks them up: "quay.io/org/team/repo",
// "quay.io/org/team", "quay.io/org", then the host "quay.io". host is
// normalized; repo "" lists the host alone. A key is never a prefix match on a
// name ("quay.io/org" does not answer for "quay.io/organ/x") nor on another
// host.
func authKeys(host, repo string) []string {
	repo = strings.Trim(repo, "/")
	if repo == "" {
		return []string{host}
	}
	keys := []string{host + "/" + repo}
	for i := len(repo) - 1; i > 0; i-- {
		if repo[i] == '/' {
			keys = append(keys, host+"/"+repo[:i])
		}
	}
	return append(keys, host)
}
