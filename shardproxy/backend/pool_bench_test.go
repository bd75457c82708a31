package backend

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
)

// BenchmarkPoolGetPut is the pool's own cost per statement, on every
// statement's path: GetFor of an idle connection and Put, from parallel
// sessions (each with its owner id, as the proxy's sessions), no statement
// run. It needs a server only to open the connections. On the shared
// machine wall-clock ns/op also counts the time other processes held the
// cores: cpu-ns/op is the process's own CPU per Get and Put.
func BenchmarkPoolGetPut(b *testing.B) {
	topo := localdb.StartForTest(b, localdb.TestConfig(1, 0))
	o := DefaultOptions()
	o.User = localdb.AppUser
	o.HealthCheckInterval = time.Minute
	c, err := NewCluster([]ShardSpec{{Name: "s0", Primary: topo.Shards()[0].Primary().Addr()}}, o)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := c.Shard("s0").Primary
	ctx := context.Background()
	var owners atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		owner := owners.Add(1)
		for pb.Next() {
			conn, err := p.GetFor(ctx, nil, owner)
			if err != nil {
				b.Error(err)
				return
			}
			p.Put(conn)
		}
	})
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}

// processCPU is the process's CPU time, user and system, every thread.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
