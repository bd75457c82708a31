package hotrow

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A fake row: a round adds its requests' deltas under a lock and takes a
// while, as a statement holding the row lock would.
type fakeRow struct {
	mu     sync.Mutex
	value  int64
	rounds int
	check  func(v int64) bool
}

func (r *fakeRow) round(_ context.Context, reqs []int64) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	time.Sleep(time.Millisecond)
	v := r.value
	for _, d := range reqs {
		v += d
	}
	if r.check != nil && !r.check(v) {
		return 0, Alone(errors.New("check failed"))
	}
	r.value, r.rounds = v, r.rounds+1
	return 1, nil
}

func TestCombines(t *testing.T) {
	c, err := New[int64, int64](DefaultConfig(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	row := &fakeRow{}
	var acked atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				n, err := c.Do(context.Background(), "k", 1, row.round)
				if err != nil || n != 1 {
					t.Errorf("do: %d %v", n, err)
					return
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	if row.value != acked.Load() || row.value != 640 {
		t.Fatalf("value %d, acknowledged %d", row.value, acked.Load())
	}
	if row.rounds >= 640/2 {
		t.Errorf("%d rounds for 640 writes: little combining", row.rounds)
	}
	if len(c.rows) != 0 {
		t.Errorf("%d queues left", len(c.rows))
	}
	t.Logf("640 writes in %d rounds", row.rounds)
}

// A round that fails its check falls back: each caller runs alone, and
// exactly those whose own write fails get the error.
func TestFallback(t *testing.T) {
	c, _ := New[int64, int64](DefaultConfig(), nil)
	row := &fakeRow{value: 10, check: func(v int64) bool { return v >= 0 }}
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 30; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Do(context.Background(), "k", -1, row.round)
			if errors.Is(err, ErrFallback) {
				_, err = row.round(context.Background(), []int64{-1})
				var a *aloneErr
				if errors.As(err, &a) {
					err = a.err
				}
			}
			if err != nil {
				failed.Add(1)
			} else {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 10 || failed.Load() != 20 || row.value != 0 {
		t.Fatalf("%d ok, %d failed, value %d", ok.Load(), failed.Load(), row.value)
	}
}

func TestNilAndCancel(t *testing.T) {
	var c *Combiner[int64, int64]
	if _, err := c.Do(context.Background(), "k", 1, nil); !errors.Is(err, ErrFallback) {
		t.Fatal(err)
	}
	c, _ = New[int64, int64](DefaultConfig(), nil)
	block := make(chan struct{})
	go c.Do(context.Background(), "k", 1, func(context.Context, []int64) (int64, error) { <-block; return 1, nil })
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Do(ctx, "k", 1, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while queued: %v", err)
	}
	close(block)
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("max_batch 0 accepted")
	}
}
