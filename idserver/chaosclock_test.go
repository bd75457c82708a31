package idserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestChaosClock: with Config.ChaosClock the HTTP API moves the node's
// clock, and a step back makes snowflake requests fail (not repeat) until
// the clock has caught up; without it the endpoint does not exist.
func TestChaosClock(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ChaosClock = &ChaosClock{}
	s := startFakeServer(t, cfg, newFakeNode("n1", 1))
	h := s.Handler()
	do := func(method, url string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, url, nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	snow := func() ([]Range, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s.Snowflake(ctx, 10, 100, nil)
	}
	var first []Range
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if first, err = snow(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if code, body := do(http.MethodGet, "/debug/chaos/clock"); code != 200 || body != `{"offset_ms":0}` {
		t.Fatalf("GET: %d %s", code, body)
	}
	if code, body := do(http.MethodPut, "/debug/chaos/clock?offset=-2s"); code != 200 || body != `{"offset_ms":-2000}` {
		t.Fatalf("PUT: %d %s", code, body)
	}
	var cb *ClockBackwardsError
	if _, err := snow(); !errors.As(err, &cb) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("snowflake with the clock 2s back: %v, want a ClockBackwardsError", err)
	}
	if code, _ := do(http.MethodPut, "/debug/chaos/clock?offset=soon"); code != 400 {
		t.Fatalf("bad offset: %d, want 400", code)
	}
	if code, _ := do(http.MethodDelete, "/debug/chaos/clock"); code != 405 {
		t.Fatalf("DELETE: %d, want 405", code)
	}
	do(http.MethodPut, "/debug/chaos/clock?offset=0")
	rs, err := snow()
	if err != nil || rs[0].Start <= first[0].Start {
		t.Fatalf("after the clock came back: %v %v (first %v)", rs, err, first)
	}

	plain := startFakeServer(t, DefaultConfig(), newFakeNode("n2", 1))
	rec := httptest.NewRecorder()
	plain.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/debug/chaos/clock?offset=1s", nil))
	if rec.Code != 404 {
		t.Fatalf("without ChaosClock: %d, want 404", rec.Code)
	}
}
