package e2e

// The suites of the command line: pulls in every mode, the cache, destinations, faults,
// overlay mounts, many processes at once, and roots against umoci.

import (
	"testing"

	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

func TestMain(m *testing.M) { Main(m) }

// entry is one file of a root filesystem as the tests compare it.
type entry = testtree.Entry

// reg is a shorthand for a registrytest entry.
type reg = registrytest.Entry
