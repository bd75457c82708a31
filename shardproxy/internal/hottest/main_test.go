package hottest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
)

// shared is one two-shard topology the tests share (each in its own
// databases), so that the package's tests stay short.
var shared struct {
	once sync.Once
	topo *localdb.Topology
	err  error
	dir  string
}

func sharedTopo(t testing.TB) *localdb.Topology {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "hottest-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		cfg := localdb.TestConfig(2, 0)
		cfg.Root = dir
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.topo, shared.err = localdb.Start(ctx, cfg)
	})
	if shared.err != nil {
		t.Fatalf("localdb: %v", shared.err)
	}
	return shared.topo
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.topo != nil {
		if err := shared.topo.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "localdb stop:", err)
		}
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}
