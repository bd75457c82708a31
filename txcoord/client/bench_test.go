package client_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-db/strata/txcoord"
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

// BenchmarkDecidePaced records commit decisions as a proxy's sessions ask
// for them: 16 callers, each pausing between decisions as a session runs
// its transaction's statements (about 700 decisions/s in all, as in
// `strata bench txn`), through a 3-node group in this process. It reports
// the CPU this process (the three nodes and the client) spent per decision,
// which is what the coordinator costs a cross-shard transfer when it shares
// the machine.
func BenchmarkDecidePaced(b *testing.B) {
	for _, proposers := range []int{1, 2, 8} {
		b.Run(fmt.Sprintf("proposers=%d", proposers), func(b *testing.B) {
			g := txcoord.NewTestGroup(b, 3, func(int) []txcoord.Module {
				cfg := txcoord.DefaultXAConfig()
				cfg.Proposers = proposers
				x, err := txcoord.NewXA(cfg)
				if err != nil {
					panic(err)
				}
				return []txcoord.Module{x}
			})
			cfg := client.DefaultConfig()
			cfg.Addrs, cfg.Owner = g.GRPCAddrs(), "bench"
			c, err := client.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			const callers = 16
			var n atomic.Int64
			var lat atomic.Int64
			cpu0 := cpuTime()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n.Add(1) <= int64(b.N) {
						time.Sleep(18 * time.Millisecond)
						id, err := c.NextTxID(ctx)
						if err != nil {
							b.Error(err)
							return
						}
						t := time.Now()
						if _, err := c.Decide(ctx, id, client.Commit, []string{"s0", "s1"}); err != nil {
							b.Error(err)
							return
						}
						lat.Add(int64(time.Since(t)))
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(b.N), "cpu-us/decision")
			b.ReportMetric(float64(lat.Load())/1e6/float64(b.N), "ms/decision")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

// cpuTime is this process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
