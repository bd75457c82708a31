package shardproxy_test

import (
	"testing"

	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestMain stops the topology the package's tests share
// (proxytest.SharedTopology) after them.
func TestMain(m *testing.M) { proxytest.Main(m) }
