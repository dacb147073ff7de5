package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rootsdev/roots/fetch/auth"
)

// authFiles says where credentials files are, from the environment, in the order they
// are asked after --user and --auth: $REGISTRY_AUTH_FILE, docker's config.json, then
// podman's default auth.json files (read only when REGISTRY_AUTH_FILE is unset, as podman
// does).
func authFiles(e *env) auth.Options {
	o := auth.Options{RegistryAuthFile: e.getenv("REGISTRY_AUTH_FILE"), DockerConfig: dockerConfigPath(e)}
	if o.RegistryAuthFile == "" {
		o.PodmanAuthFiles = podmanAuthFiles(e)
	}
	return o
}

// podmanAuthFiles are podman's auth.json files in podman's order (containers-auth.json(5)):
// ${XDG_RUNTIME_DIR}/containers/auth.json, or /run/containers/UID/auth.json without
// XDG_RUNTIME_DIR, then ${XDG_CONFIG_HOME}/containers/auth.json, or
// $HOME/.config/containers/auth.json without XDG_CONFIG_HOME.
func podmanAuthFiles(e *env) []string {
	var files []string
	if d := e.getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	} else {
		files = append(files, fmt.Sprintf("/run/containers/%d/auth.json", os.Getuid()))
	}
	if d := e.getenv("XDG_CONFIG_HOME"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	} else if home := homeDir(e); home != "" {
		files = append(files, filepath.Join(home, ".config", "containers", "auth.json"))
	}
	return files
}

// dockerConfigPath is docker's config.json: $DOCKER_CONFIG/config.json or ~/.docker/config.json.
func dockerConfigPath(e *env) string {
	if d := e.getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	if home := homeDir(e); home != "" {
		return filepath.Join(home, ".docker", "config.json")
	}
	return ""
}

// homeDir is $HOME, or the home directory the OS knows; "" when neither is.
func homeDir(e *env) string {
	if h := e.getenv("HOME"); h != "" {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

// existingAuthFiles are the credential files of o that exist, for the hint that says where
// credentials were looked for.
func existingAuthFiles(o auth.Options) []string {
	var files []string
	if o.RegistryAuthFile != "" {
		files = append(files, "REGISTRY_AUTH_FILE "+o.RegistryAuthFile)
	}
	for _, p := range append([]string{o.DockerConfig}, o.PodmanAuthFiles...) {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	return files
}
