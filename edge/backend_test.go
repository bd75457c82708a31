package edge

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/edge/client"
	idclient "github.com/strata-db/strata/idserver/client"
)

// TestBreaker: with the ID service gone, the edge stops waiting for it
// after a few failures and answers 503 circuit_open at once, with
// Retry-After.
func TestBreaker(t *testing.T) {
	n := startIDNode(t)
	cfg := testConfig(n.GRPCAddr)
	cfg.IDServer.Timeout = 300 * time.Millisecond
	cfg.Breaker = BreakerConfig{Failures: 3, OpenFor: 2 * time.Second}
	s := startEdge(t, cfg, Options{})
	c := appClient(s)
	ctx := ctxT(t, time.Minute)
	if _, err := c.Do(ctx, "GET", "/v1/ids/b?ordered=true", nil); err != nil {
		t.Fatal(err)
	}
	n.Close()
	var last *client.Error
	for i := range 3 {
		_, err := c.Do(ctx, "GET", "/v1/ids/b?ordered=true", nil)
		if !errors.As(err, &last) || last.Status/100 != 5 || last.Reason == "circuit_open" {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	t.Logf("while the breaker was closed: %v", last)
	req, _ := c.NewRequest(ctx, "GET", "/v1/ids/b?ordered=true", nil)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(start)
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 503 || resp.Header.Get("X-Strata-Reason") != "circuit_open" || ra < 1 || took > time.Second {
		t.Fatalf("open breaker: %d %s Retry-After %q in %v", resp.StatusCode, resp.Header.Get("X-Strata-Reason"), resp.Header.Get("Retry-After"), took)
	}
	t.Logf("open breaker answered in %v", took)
	if st := s.idsG.state(); st != "open" {
		t.Fatalf("breaker %s", st)
	}
}

// slowIDs is an IDSource that holds every call until released: a backend
// that has stopped answering, for the concurrency limit.
type slowIDs struct {
	release   chan struct{}
	mu        sync.Mutex
	now, most int
}

func (f *slowIDs) Next(ctx context.Context, _ string) (uint64, error) {
	f.mu.Lock()
	f.now++
	f.most = max(f.most, f.now)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	select {
	case <-f.release:
		return 1, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
func (f *slowIDs) Fetch(ctx context.Context, tag string, _ uint64) ([]idclient.Range, error) {
	_, err := f.Next(ctx, tag)
	return []idclient.Range{{Start: 1, Count: 1}}, err
}
func (f *slowIDs) Snowflake(ctx context.Context, _ uint64) ([]idclient.Range, error) {
	return f.Fetch(ctx, "", 1)
}

// TestConcurrencyLimit: past MaxInFlight calls, a request waits at most
// the timeout for a slot and gets 503 backend_busy; a call over its
// timeout is 504 backend_timeout.
func TestConcurrencyLimit(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	cfg.IDServer.MaxInFlight = 2
	cfg.IDServer.Timeout = 200 * time.Millisecond
	cfg.Breaker.Failures = 100
	ids := &slowIDs{release: make(chan struct{})}
	s := startEdge(t, cfg, Options{IDs: ids})
	c := appClient(s)
	ctx := ctxT(t, 30*time.Second)
	reasons := make([]string, 6)
	var wg sync.WaitGroup
	for i := range reasons {
		wg.Go(func() {
			_, err := c.Do(ctx, "GET", "/v1/ids/slow", nil)
			var e *client.Error
			if errors.As(err, &e) {
				reasons[i] = e.Reason
			}
		})
	}
	wg.Wait()
	count := map[string]int{}
	for _, r := range reasons {
		count[r]++
	}
	// Two hold the slots until their timeout; the others wait for a slot
	// as long (busy), or get one as it frees before their own deadline
	// (timeout); never more than two at the backend.
	if count["backend_timeout"] < 2 || count["backend_timeout"]+count["backend_busy"] != 6 || ids.most > 2 {
		t.Fatalf("6 requests at a limit of 2 against a backend that does not answer: %v, at most %d at once", count, ids.most)
	}
}
