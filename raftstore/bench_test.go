package raftstore

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// countFSM is the cheapest FSM, so the benchmark measures Raft: the round
// trip to a follower and bolt's fsync on both.
type countFSM struct{ n atomic.Uint64 }

func (f *countFSM) Apply(uint64, []byte) any  { return f.n.Add(1) }
func (f *countFSM) Snapshot() ([]byte, error) { return u64(f.n.Load()), nil }
func (f *countFSM) Restore([]byte) error      { return nil }

// BenchmarkApply measures committed Applies on the leader of a 3-node cluster
// over loopback TCP: one client at a time (latency), and 32 per CPU at once
// (throughput, with Raft batching concurrent commands into one append),
// on each log store.
func BenchmarkApply(b *testing.B) {
	for _, store := range []string{LogStoreBolt, LogStoreWAL} {
		b.Run(store, func(b *testing.B) { benchmarkApply(b, store) })
	}
}

func benchmarkApply(b *testing.B, store string) {
	c := NewTestCluster(b, 3, func(string) FSM { return &countFSM{} }, WithConfig(func(_ int, c *Config) { c.LogStore = store }))
	leader := c.Leader(b, 10*time.Second)
	cmd := make([]byte, 64)
	ctx := context.Background()

	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := leader.Apply(ctx, cmd); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(32) // 32 clients per GOMAXPROCS
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := leader.Apply(ctx, cmd); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
	})
}
