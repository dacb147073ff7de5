package fidelity

import (
	"testing"

	"github.com/rootsdev/roots/cmd/roots/e2e"
	"github.com/rootsdev/roots/fetch/registrytest"
	"github.com/rootsdev/roots/internal/testtree"
)

func TestMain(m *testing.M) { e2e.Main(m) }

type (
	entry = testtree.Entry
	reg   = registrytest.Entry
)
