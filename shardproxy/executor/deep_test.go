package executor

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDeepStacks runs work from many goroutines at once, some of it deep,
// and checks each call returns after its own work.
func TestDeepStacks(t *testing.T) {
	d := newDeepStacks()
	var deep func(n int) int
	deep = func(n int) int {
		var pad [512]byte
		pad[n%512] = byte(n)
		if n == 0 {
			return int(pad[0])
		}
		return deep(n-1) + int(pad[n%512]&1)
	}
	var wg sync.WaitGroup
	var sum atomic.Int64
	for g := range 32 {
		wg.Go(func() {
			for i := range 50 {
				var got int
				d.run(func() { got = deep(100) + g*0 + i*0 })
				sum.Add(int64(got))
				var p any
				d.run(func() {
					defer func() { p = recover() }()
					panic("x")
				})
				if p != "x" {
					t.Errorf("panic not recovered by the work: %v", p)
				}
			}
		})
	}
	wg.Wait()
	if want := int64(32 * 50 * deep(100)); sum.Load() != want {
		t.Fatalf("sum %d, want %d", sum.Load(), want)
	}
	// The last worker counts itself idle just after its caller returned.
	for deadline := time.Now().Add(5 * time.Second); d.idle.Load() < 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := d.idle.Load(); n < 1 || n > d.maxIdle {
		t.Fatalf("%d idle workers, want 1..%d", n, d.maxIdle)
	}
	d.stop()
	ran := false
	d.run(func() { ran = true }) // after stop: still runs
	if !ran {
		t.Fatal("work after stop did not run")
	}
}

// BenchmarkDeepStacks is the hand-over's cost: a call of nothing on a
// worker.
func BenchmarkDeepStacks(b *testing.B) {
	d := newDeepStacks()
	defer d.stop()
	n := 0
	for b.Loop() {
		d.run(func() { n++ })
	}
}
