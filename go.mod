module github.com/rootsdev/roots

go 1.26.0

require (
	github.com/alecthomas/kong v1.17.0
	github.com/distribution/reference v0.6.0
	github.com/gofrs/flock v0.13.2
	github.com/klauspost/compress v1.20.3
	github.com/klauspost/pgzip v1.3.0
	github.com/opencontainers/go-digest v1.0.0
	github.com/opencontainers/image-spec v1.1.1
	github.com/opencontainers/runtime-spec v1.2.1
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0
)

require golang.org/x/sync v0.25.0

require github.com/BurntSushi/toml v1.6.0
