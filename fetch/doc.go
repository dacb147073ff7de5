// Package fetch speaks the registry v2 protocol, both sides of it. For pulling, it parses image
// references with Docker's rules, resolves a tag or digest to the manifest of one platform
// (through indexes and manifest lists), and streams blobs with retry and transparent resume.
// For pushing, it checks which blobs a repository has (HEAD), mounts blobs from another
// repository of the same registry, uploads blobs in one PUT or in PATCH chunks (a failed upload
// session starts over, it is never resumed), and stores manifests byte for byte. It hands the
// cache raw bytes and digests and takes streams from it, and knows nothing of how they are
// stored; verifying a blob's digest while it is written is the cache's job, and the registry's
// when it receives one.
package fetch
