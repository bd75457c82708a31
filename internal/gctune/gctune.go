package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config is a Tuner's settings.
type Config struct {
	// Base is the GC percentage for the heap other than the pinned bytes
	// (as GOGC).
	Base int
	// Min is the lowest percentage set, however much of the heap is
	// pinned: below it the collector would run for every few bytes
	// allocated.
	Min int
	// Every is how often the percentage is recomputed.
	Every time.Duration
}

// DefaultConfig is GOGC=400 for the short-lived heap, at least 10, every
// second.
func DefaultConfig() Config { return Config{Base: 400, Min: 10, Every: time.Second} }

// Percent is the GC percentage that lets a heap of live bytes, pinned of
// which stay, grow by base% of the rest: base×(live−pinned)/live, at
// least min.
func Percent(base, min int, live, pinned int64) int {
	if live <= 0 || pinned <= 0 {
		return base
	}
	if pinned > live {
		pinned = live
	}
	p := int(int64(base) * (live - pinned) / live)
	if p < min {
		p = min
	}
	return p
}

// Run sets the GC percentage from pinned (the bytes that stay, e.g. a
// cache's accounted size) every cfg.Every until ctx ends, then puts back
// cfg.Base.
func Run(ctx context.Context, cfg Config, pinned func() int64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	last := -1
	for {
		select {
		case <-ctx.Done():
			debug.SetGCPercent(cfg.Base)
			return
		case <-t.C:
		}
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 {
			continue
		}
		p := Percent(cfg.Base, cfg.Min, int64(s[0].Value.Uint64()), pinned())
		if p != last {
			debug.SetGCPercent(p)
			last = p
		}
	}
}
