// Package fetch speaks the registry v2 protocol for pulling: it parses image
// references with Docker's rules, resolves a tag or digest to the manifest of
// one platform (through indexes and manifest lists), and streams blobs with
// retry and transparent resume. It hands the cache raw bytes and digests and
// knows nothing of how they are stored; verifying a blob's digest while it is
// written is the cache's job.
package fetch
