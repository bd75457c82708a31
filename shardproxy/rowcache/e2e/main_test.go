package e2e

import (
	"testing"

	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestMain stops the topology the tests of one shard share
// (proxytest.SharedTopology); the others start their own.
func TestMain(m *testing.M) { proxytest.Main(m) }
