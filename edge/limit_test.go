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

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strata-db/strata/edge/client"
)

// loadResult is what a paced load run saw.
type loadResult struct {
	sent, ok, limited, other int64
	badRetry                 int64 // 429s without a whole-seconds Retry-After
	elapsed                  time.Duration
	// steady is how many requests the edge admitted in the steady window,
	// counted by the edge itself (loadSpec.admitted read at both ends), so
	// neither the client's scheduling nor the answers' travel moves a
	// request across the window's edges.
	steady float64
}

// loadSpec is one stream of a load run: requests signed by signer, sent
// from local address ip, to edge base.
type loadSpec struct {
	base   string
	signer client.Signer
	ip     string
	path   string
	rate   float64
	// admitted reads the edge's count of this stream's admitted requests.
	admitted func() float64
}

// admittedOf reads s's count of app's answered 200s on /v1/ids.
func admittedOf(s *Server, app string) func() float64 {
	c := s.m.requests.WithLabelValues("ids", app, "200", variantStable)
	return func() float64 { return testutil.ToFloat64(c) }
}

// runLoad sends every spec's stream at its rate for dur (paced, 64
// workers per stream), counts
// answers per stream, and reads each stream's admissions at the edge over
// the steady window.
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
		for range 64 {
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
			time.Sleep(time.Until(start.Add(steadyFrom)))
			from := sp.admitted()
			time.Sleep(time.Until(start.Add(dur - steadyTail)))
			r.steady = sp.admitted() - from
		})
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

// Steady window: admissions from steadyFrom to dur-steadyTail count, so
// neither the first burst nor the drain at the end does.
const (
	steadyFrom = 500 * time.Millisecond
	steadyTail = 250 * time.Millisecond
)

// check judges one stream of a run. A 429 without Retry-After, or nothing
// refused, fails the test at once. An admitted rate off the limit by more
// than 5%, or a load that fell short of twice the limit, is returned for
// the caller to run again: a starved machine (the edge's goroutines not
// running while tokens accrue, then a full bucket drained at once) moves
// a short window's count either way; a wrong limiter stays off run after
// run.
func check(t *testing.T, what string, r *loadResult, rule Rule, dur time.Duration) (retry string) {
	t.Helper()
	t.Logf("%s: sent %d (%.0f/s), ok %d, 429 %d, other %d", what, r.sent, float64(r.sent)/r.elapsed.Seconds(), r.ok, r.limited, r.other)
	if r.badRetry > 0 {
		t.Errorf("%s: %d answers 429 without Retry-After", what, r.badRetry)
	}
	// Answered, not sent: an edge that could not even answer 1.5 times
	// the limit was starved of CPU, and its admitted count says nothing.
	if answered := float64(r.ok+r.limited) / r.elapsed.Seconds(); answered < 1.5*rule.Rate {
		return fmt.Sprintf("%s: %s only %.0f/s answered, not about twice the limit %.0f/s", what, starved, answered, rule.Rate)
	}
	if r.limited == 0 {
		t.Errorf("%s: nothing was limited at twice the rate", what)
	}
	w := dur - steadyTail - steadyFrom
	accepted := r.steady
	got := accepted / w.Seconds()
	dev := (got - rule.Rate) / rule.Rate
	t.Logf("%s: admitted %.0f in the steady %v: %.1f/s against a limit of %.0f/s: %+.1f%% (whole run: %d in %v, burst %d)",
		what, accepted, w, got, rule.Rate, dev*100, r.ok, r.elapsed.Round(time.Millisecond), rule.Burst)
	if dev > 0.05 || dev < -0.05 {
		return fmt.Sprintf("%s: admitted %.1f/s, %+.1f%% off the limit %.0f/s", what, got, dev*100, rule.Rate)
	}
	return ""
}

// starved marks a run in which the machine, not the edge, was the limit.
const starved = "machine too busy:"

// attempts runs a load run up to 3 times while it comes out off (see
// check). If the last is off while the edge kept up with the load, the
// test fails; if the machine could not even carry the load in any of the
// three, the test is skipped, saying so, as it measured nothing.
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
		t.Logf("attempt %d: %s; running again (a busy machine moves a short window)", i, strings.Join(why, "; "))
	}
	for _, w := range why {
		if !strings.Contains(w, starved) {
			t.Errorf("still after 3 attempts: %s", strings.Join(why, "; "))
			return
		}
	}
	t.Skipf("the machine could not carry twice the limit in 3 attempts: %s", strings.Join(why, "; "))
}

// TestLimits: at twice the configured rate, each app key's and each
// client IP's accepted rate is the limit (within 5%), every 429 says when
// to retry, and three edges sharing one limit admit the limit together.
func TestLimits(t *testing.T) {
	n := startIDNode(t)
	const dur = 3 * time.Second
	rule := Rule{Rate: 100, Burst: 10}

	t.Run("per key", func(t *testing.T) {
		cfg := testConfig(n.GRPCAddr)
		cfg.Apps = append(cfg.Apps, App{Name: "other", Secret: "other-secret-0123456"})
		cfg.Limits.App = rule
		attempts(t, func() []string {
			s := startEdge(t, cfg, Options{})
			defer s.Close()
			res := runLoad(t, dur, []loadSpec{
				{base: s.URL(), signer: client.Signer{Key: testApp, Secret: []byte(testSecret)}, ip: "127.0.0.1", path: "/v1/ids/warmup", rate: 2 * rule.Rate, admitted: admittedOf(s, testApp)},
				{base: s.URL(), signer: client.Signer{Key: "other", Secret: []byte("other-secret-0123456")}, ip: "127.0.0.1", path: "/v1/ids/warmup", rate: 2 * rule.Rate, admitted: admittedOf(s, "other")},
			})
			return []string{check(t, "key shop", res[0], rule, dur), check(t, "key other", res[1], rule, dur)}
		})
	})

	t.Run("per IP", func(t *testing.T) {
		// One app per IP, so the edge's per-app count tells the IPs apart;
		// only the IP buckets limit.
		cfg := testConfig(n.GRPCAddr)
		cfg.Apps = append(cfg.Apps, App{Name: "other", Secret: "other-secret-0123456"})
		cfg.Limits.Routes = map[string]RouteLimits{"ids": {IP: rule}}
		attempts(t, func() []string {
			s := startEdge(t, cfg, Options{})
			defer s.Close()
			res := runLoad(t, dur, []loadSpec{
				{base: s.URL(), signer: client.Signer{Key: testApp, Secret: []byte(testSecret)}, ip: "127.0.0.2", path: "/v1/ids/warmup", rate: 2 * rule.Rate, admitted: admittedOf(s, testApp)},
				{base: s.URL(), signer: client.Signer{Key: "other", Secret: []byte("other-secret-0123456")}, ip: "127.0.0.3", path: "/v1/ids/warmup", rate: 2 * rule.Rate, admitted: admittedOf(s, "other")},
			})
			return []string{check(t, "ip 127.0.0.2", res[0], rule, dur), check(t, "ip 127.0.0.3", res[1], rule, dur)}
		})
	})

	t.Run("fleet of 3", func(t *testing.T) {
		fleetRule := Rule{Rate: 150, Burst: 15}
		cfg := testConfig(n.GRPCAddr)
		cfg.Limits.App = fleetRule
		cfg.Limits.Fleet.Chunk = 3
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
				specs = append(specs, loadSpec{base: s.URL(), signer: signer, ip: "127.0.0.1", path: "/v1/ids/warmup", rate: 2 * fleetRule.Rate / 3, admitted: admittedOf(s, testApp)})
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
				total.steady += r.steady
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
