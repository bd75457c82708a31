package client_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/strata-db/strata/txcoord/client"
)

// BenchmarkDecide records commit decisions through a 3-node group from
// parallel callers (-cpu sets how many goroutines per CPU: go test
// -bench Decide -cpu 1,8,32 ./txcoord/client).
func BenchmarkDecide(b *testing.B) {
	g, _ := newGroupTB(b)
	cfg := client.DefaultConfig()
	cfg.Addrs, cfg.Owner = g.GRPCAddrs(), "bench"
	c, err := client.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id, err := c.NextTxID(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Decide(ctx, id, client.Commit, []string{"s0", "s1"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	b.ReportMetric(float64(8*runtime.GOMAXPROCS(0))*b.Elapsed().Seconds()*1000/float64(b.N), "ms/decision")
}
