package attack

import (
	"testing"

	"github.com/rootsdev/roots/cmd/roots/e2e"
	"github.com/rootsdev/roots/fetch/registrytest"
)

func TestMain(m *testing.M) { e2e.Main(m) }

type reg = registrytest.Entry
