package gctune

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live, pinned int64
		want         int
	}{
		{100 << 20, 0, 400},        // nothing pinned: the base
		{0, 0, 400},                // no figure yet
		{100 << 20, 50 << 20, 200}, // half pinned: growth by 4× the other half
		{100 << 20, 90 << 20, 40},
		{100 << 20, 99 << 20, 10},  // floor
		{100 << 20, 200 << 20, 10}, // pinned above live (accounting lags): floor
	} {
		if got := Percent(400, 10, c.live, c.pinned); got != c.want {
			t.Errorf("Percent(400, 10, %d, %d) = %d, want %d", c.live, c.pinned, got, c.want)
		}
	}
}

// TestRunLowersTheGoal: with most of a real live heap pinned, Run lowers
// the process's GC percentage, and puts the base back when it stops.
func TestRunLowersTheGoal(t *testing.T) {
	old := debug.SetGCPercent(400)
	defer debug.SetGCPercent(old)
	keep := make([]byte, 64<<20)
	for i := range keep {
		keep[i] = byte(i)
	}
	runtime.GC()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, Config{Base: 400, Min: 10, Every: 10 * time.Millisecond}, func() int64 { return int64(len(keep)) })
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	var p int
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		p = debug.SetGCPercent(400)
		debug.SetGCPercent(p)
		if p < 200 {
			break
		}
	}
	if p >= 200 {
		t.Errorf("GC percentage %d with 64 MiB of a live heap pinned, want it lowered below 200", p)
	}
	cancel()
	<-done
	if p := debug.SetGCPercent(400); p != 400 {
		t.Errorf("after Run stopped the percentage is %d, want the base 400", p)
	}
	runtime.KeepAlive(keep)
}
