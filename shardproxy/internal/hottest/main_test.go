package hottest

import (
	"testing"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// sharedTopo is one two-shard topology the tests share (each in its own
// databases), so that the package's tests stay short.
func sharedTopo(t testing.TB) *localdb.Topology { return proxytest.SharedTopology(t) }

func TestMain(m *testing.M) { proxytest.Main(m) }
