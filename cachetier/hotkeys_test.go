package cachetier

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

func TestHotKeysZipf(t *testing.T) {
	clk := newFakeClock()
	cfg := DefaultConfig()
	cfg.HotKeys = 5
	c := testCache(t, cfg, clk)
	load := func(_ context.Context, row, _ string) (string, bool, error) { return row, true, nil }
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 1)), 1.2, 1, 100_000)
	ctx := context.Background()
	for range 50_000 {
		c.Get(ctx, strconv.FormatUint(z.Uint64(), 10), "", load)
	}
	for range 300 {
		c.Invalidate("w7", SourceLocal)
	}
	reads, writes := c.HotKeys(0)
	if len(reads) != 5 || reads[0].Row != "0" || reads[1].Row != "1" {
		t.Fatalf("read top = %+v, want 0, 1, … first", reads)
	}
	if len(writes) == 0 || writes[0].Row != "w7" || writes[0].Count < 300 {
		t.Fatalf("write top = %+v", writes)
	}
	// After a full window of silence and one of other traffic, the old keys are gone.
	clk.advance(cfg.HotWindow * 2)
	for range 100 {
		c.Get(ctx, "new", "", load)
	}
	reads, _ = c.HotKeys(0)
	if len(reads) != 1 || reads[0].Row != "new" {
		t.Fatalf("after the window: %+v, want only new", reads)
	}
}

func TestHotKeysWindowSlides(t *testing.T) {
	clk := newFakeClock()
	h := newHotTracker(3, 10*time.Second, clk.now)
	for range 100 {
		h.record("a")
	}
	clk.advance(6 * time.Second) // into the second half-window: a still counted
	for range 10 {
		h.record("b")
	}
	top := h.top(3)
	if len(top) != 2 || top[0].Row != "a" || top[0].Count < 100 {
		t.Fatalf("top = %+v", top)
	}
	clk.advance(5 * time.Second) // a's half-window has aged out
	h.record("b")
	top = h.top(3)
	if len(top) != 1 || top[0].Row != "b" {
		t.Fatalf("top after slide = %+v", top)
	}
}
