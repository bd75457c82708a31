package edge

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/edge/client"
)

// loadResult is what a paced load run saw.
type loadResult struct {
	sent, ok, limited, other int64
	badRetry                 int64 // 429s without a whole-seconds Retry-After
	elapsed                  time.Duration
	// okAt are the 200s' arrival times since the start, for the steady
	// window (okIn).
	mu   sync.Mutex
	okAt []time.Duration
}

// okIn counts the 200s that arrived in [from, to).
func (r *loadResult) okIn(from, to time.Duration) int64 {
	n := int64(0)
	for _, d := range r.okAt {
		if d >= from && d < to {
			n++
		}
	}
	return n
}

// loadSpec is one stream of a load run: requests signed by signer, sent
// from local address ip, to edge base.
type loadSpec struct {
	base   string
	signer client.Signer
	ip     string
	path   string
	rate   float64
}

// runLoad sends every spec's stream at its rate for dur (paced, 256
// workers per stream, so a stall does not stop the offered load) and counts answers per stream.
func runLoad(t *testing.T, dur time.Duration, specs []loadSpec) []*loadResult {
	t.Helper()
	// Warm up: the edge's first request of a tag waits for the ID
	// service's first range, a stall no bucket should be measured over.
	for _, sp := range specs {
		req, _ := http.NewRequest("GET", sp.base+"/v1/ids/warmup", nil)
		sp.signer.Sign(req, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	res := make([]*loadResult, len(specs))
	for i := range res {
		res[i] = &loadResult{}
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i, sp := range specs {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 128,
			DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(sp.ip)}}).DialContext,
		}}
		work := make(chan struct{}, 1024)
		r := res[i]
		for range 256 {
			wg.Go(func() {
				for range work {
					req, _ := http.NewRequest("GET", sp.base+sp.path, nil)
					sp.signer.Sign(req, nil)
					resp, err := hc.Do(req)
					if err != nil {
						atomic.AddInt64(&r.other, 1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						atomic.AddInt64(&r.ok, 1)
						r.mu.Lock()
						r.okAt = append(r.okAt, time.Since(start))
						r.mu.Unlock()
					case 429:
						atomic.AddInt64(&r.limited, 1)
						if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
							atomic.AddInt64(&r.badRetry, 1)
						}
					default:
						atomic.AddInt64(&r.other, 1)
					}
				}
			})
		}
		wg.Go(func() {
			defer close(work)
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for now := range tick.C {
				el := now.Sub(start)
				if el >= dur {
					break
				}
				for float64(r.sent) < sp.rate*el.Seconds() {
					select {
					case work <- struct{}{}:
						r.sent++
					default:
						r.sent++ // the workers are behind: counted as sent, never sent
						atomic.AddInt64(&r.other, 1)
					}
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	for i := range res {
		res[i].elapsed = el
	}
	return res
}

// Steady window: answers that arrived from steadyFrom to dur-steadyTail
// count, so neither the first burst nor the drain at the end does.
const (
	steadyFrom = 500 * time.Millisecond
	steadyTail = 250 * time.Millisecond
)

// check judges one stream of a run. Too much admitted, a 429 without
// Retry-After, or nothing refused fail the test at once; too little
// admitted, or a load that fell short of twice the limit, is what a
// starved machine does (the edge's goroutines did not run while tokens
// accrued), so it is returned for the caller to run again.
func check(t *testing.T, what string, r *loadResult, rule Rule, dur time.Duration) (retry string) {
	t.Helper()
	t.Logf("%s: sent %d (%.0f/s), ok %d, 429 %d, other %d", what, r.sent, float64(r.sent)/r.elapsed.Seconds(), r.ok, r.limited, r.other)
	if r.badRetry > 0 {
		t.Errorf("%s: %d answers 429 without Retry-After", what, r.badRetry)
	}
	if offered := float64(r.sent-r.other) / r.elapsed.Seconds(); offered < 1.5*rule.Rate {
		return fmt.Sprintf("%s: the load reached only %.0f/s, not about twice the limit %.0f/s", what, offered, rule.Rate)
	}
	if r.limited == 0 {
		t.Errorf("%s: nothing was limited at twice the rate", what)
	}
	w := dur - steadyTail - steadyFrom
	accepted := r.okIn(steadyFrom, dur-steadyTail)
	got := float64(accepted) / w.Seconds()
	dev := (got - rule.Rate) / rule.Rate
	t.Logf("%s: accepted %d in the steady %v: %.1f/s against a limit of %.0f/s: %+.1f%% (whole run: %d in %v, burst %d)",
		what, accepted, w, got, rule.Rate, dev*100, r.ok, r.elapsed.Round(time.Millisecond), rule.Burst)
	switch {
	case dev > 0.05:
		t.Errorf("%s: accepted %.1f/s, %.1f%% over the limit %.0f/s (more than 5%%)", what, got, dev*100, rule.Rate)
	case dev < -0.05:
		return fmt.Sprintf("%s: accepted %.1f/s, %.1f%% under the limit %.0f/s", what, got, -dev*100, rule.Rate)
	}
	return ""
}

// attempts runs a load run up to 3 times while it comes out starved (see
// check), and fails if the last one still does.
func attempts(t *testing.T, run func() []string) {
	t.Helper()
	var why []string
	for i := 1; i <= 3; i++ {
		why = nil
		for _, w := range run() {
			if w != "" {
				why = append(why, w)
			}
		}
		if len(why) == 0 || t.Failed() {
			return
		}
		t.Logf("attempt %d looks starved (%s); the machine is busy: running again", i, strings.Join(why, "; "))
	}
	t.Errorf("still after 3 attempts: %s", strings.Join(why, "; "))
}

// TestLimits: at twice the configured rate, each app key's and each
// client IP's accepted rate is the limit (within 5%), every 429 says when
// to retry, and three edges sharing one limit admit the limit together.
func TestLimits(t *testing.T) {
	n := startIDNode(t)
	const dur = 3 * time.Second
	rule := Rule{Rate: 200, Burst: 20}

	t.Run("per key", func(t *testing.T) {
		cfg := testConfig(n.GRPCAddr)
		cfg.Apps = append(cfg.Apps, App{Name: "other", Secret: "other-secret-0123456"})
		cfg.Limits.App = rule
		attempts(t, func() []string {
			s := startEdge(t, cfg, Options{})
			defer s.Close()
			res := runLoad(t, dur, []loadSpec{
				{base: s.URL(), signer: client.Signer{Key: testApp, Secret: []byte(testSecret)}, ip: "127.0.0.1", path: "/v1/ids/warmup", rate: 2 * rule.Rate},
				{base: s.URL(), signer: client.Signer{Key: "other", Secret: []byte("other-secret-0123456")}, ip: "127.0.0.1", path: "/v1/ids/warmup", rate: 2 * rule.Rate},
			})
			return []string{check(t, "key shop", res[0], rule, dur), check(t, "key other", res[1], rule, dur)}
		})
	})

	t.Run("per IP", func(t *testing.T) {
		cfg := testConfig(n.GRPCAddr)
		cfg.Limits.Routes = map[string]RouteLimits{"ids": {IP: rule}}
		signer := client.Signer{Key: testApp, Secret: []byte(testSecret)}
		attempts(t, func() []string {
			s := startEdge(t, cfg, Options{})
			defer s.Close()
			res := runLoad(t, dur, []loadSpec{
				{base: s.URL(), signer: signer, ip: "127.0.0.2", path: "/v1/ids/warmup", rate: 2 * rule.Rate},
				{base: s.URL(), signer: signer, ip: "127.0.0.3", path: "/v1/ids/warmup", rate: 2 * rule.Rate},
			})
			return []string{check(t, "ip 127.0.0.2", res[0], rule, dur), check(t, "ip 127.0.0.3", res[1], rule, dur)}
		})
	})

	t.Run("fleet of 3", func(t *testing.T) {
		fleetRule := Rule{Rate: 300, Burst: 30}
		cfg := testConfig(n.GRPCAddr)
		cfg.Limits.App = fleetRule
		cfg.Limits.Fleet.Chunk = 5
		signer := client.Signer{Key: testApp, Secret: []byte(testSecret)}
		attempts(t, func() []string {
			quota := startEdge(t, cfg, Options{})
			defer quota.Close()
			member := cfg
			member.Limits.Fleet.LeaseFrom, member.Limits.Fleet.Key, member.Limits.Fleet.Secret = quota.URL(), testAdmin, testAdminS
			member.Limits.Fleet.Edges = 3
			e1, e2 := startEdge(t, member, Options{}), startEdge(t, member, Options{})
			defer e1.Close()
			defer e2.Close()
			var specs []loadSpec
			for _, s := range []*Server{quota, e1, e2} {
				specs = append(specs, loadSpec{base: s.URL(), signer: signer, ip: "127.0.0.1", path: "/v1/ids/warmup", rate: 2 * fleetRule.Rate / 3})
			}
			res := runLoad(t, dur, specs)
			total := &loadResult{}
			for i, r := range res {
				t.Logf("edge %d: sent %d, ok %d, 429 %d, other %d", i, r.sent, r.ok, r.limited, r.other)
				total.sent += r.sent
				total.ok += r.ok
				total.limited += r.limited
				total.other += r.other
				total.badRetry += r.badRetry
				total.elapsed = r.elapsed
				total.okAt = append(total.okAt, r.okAt...)
			}
			return []string{check(t, "fleet", total, fleetRule, dur)}
		})
	})
}

// TestLeaseFallback: while the quota server is away, a fleet member keeps
// to its share of the limit with a local bucket.
func TestLeaseFallback(t *testing.T) {
	f := newFleetLimiter(FleetConfig{LeaseFrom: "http://127.0.0.1:1", Key: "k", Secret: "0123456789abcdef", LeaseTTL: time.Second, Edges: 4}, time.Now)
	ok := 0
	for range 100 {
		if got, _ := f.take(context.Background(), "app/ids/x", Rule{Rate: 1, Burst: 40}); got {
			ok++
		}
	}
	if ok != 10 {
		t.Fatalf("fallback admitted %d of a burst of 40 shared by 4 edges, want 10", ok)
	}
}
