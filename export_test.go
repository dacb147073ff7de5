package roots

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// GitHead is gitHead for the tests of package roots_test.
func GitHead(ctx context.Context, dest string) (n int, blob digest.Digest, top bool, err error) {
	h, top, err := gitHead(ctx, dest)
	return h.N, h.Blob, top, err
}

// GitCommitLayer is gitCommitLayer for the tests of package roots_test.
var GitCommitLayer = gitCommitLayer

// GitScratchTrees sets whether a git pull makes its scratch rootfs from the cached trees (as
// root) or from the blobs, until the test ends.
func GitScratchTrees(t interface{ Cleanup(func()) }, on bool) {
	old := gitScratchTrees
	gitScratchTrees = on
	t.Cleanup(func() { gitScratchTrees = old })
}

// ErrKilled stops a commit dead at a step of CommitHook, as if the process were killed there.
var ErrKilled = errKilled

// CommitHook has fn run after each step of Commit that writes (see commitHook), until the test
// ends.
func CommitHook(t interface{ Cleanup(func()) }, fn func(step string) error) {
	commitHook = fn
	t.Cleanup(func() { commitHook = nil })
}
