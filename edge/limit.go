package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/strata-db/strata/edge/client"
)

// limiter decides whether one request may pass a bucket. Buckets are named
// by scope, route and subject ("app/ids/shop", "ip/ids/10.0.0.7").
type limiter interface {
	// take spends one token of bucket name with rule; when none is left it
	// returns false and how long until one is.
	take(ctx context.Context, name string, rule Rule) (ok bool, retryAfter time.Duration)
}

// buckets are local token buckets (golang.org/x/time/rate), one per name.
// Idle ones (full again) are dropped by sweep so per-IP buckets do not
// pile up.
type buckets struct {
	mu  sync.Mutex
	m   map[string]*bucket
	now func() time.Time
}

type bucket struct {
	lim  *rate.Limiter
	rule Rule
}

func newBuckets(now func() time.Time) *buckets {
	return &buckets{m: map[string]*bucket{}, now: now}
}

func (b *buckets) get(name string, rule Rule) *rate.Limiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.m[name]
	if bk == nil || bk.rule != rule {
		bk = &bucket{lim: rate.NewLimiter(rate.Limit(rule.Rate), rule.Burst), rule: rule}
		b.m[name] = bk
	}
	return bk.lim
}

func (b *buckets) take(_ context.Context, name string, rule Rule) (bool, time.Duration) {
	lim := b.get(name, rule)
	now := b.now()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	return false, untilTokens(lim, now, 1)
}

// grant takes up to want tokens now and returns how many it took; with none
// taken, also how long until one is there. It serves the fleet's leases.
func (b *buckets) grant(name string, rule Rule, want int) (int, time.Duration) {
	lim := b.get(name, rule)
	now := b.now()
	n := min(want, int(math.Floor(lim.TokensAt(now))))
	if n > 0 && lim.AllowN(now, n) {
		return n, 0
	}
	return 0, untilTokens(lim, now, 1)
}

// untilTokens is how long until lim holds n tokens.
func untilTokens(lim *rate.Limiter, now time.Time, n float64) time.Duration {
	have := lim.TokensAt(now)
	if have >= n || lim.Limit() <= 0 {
		return 0
	}
	return time.Duration((n - have) / float64(lim.Limit()) * float64(time.Second))
}

// sweep drops buckets that are full (nobody spent from them for a while).
func (b *buckets) sweep() {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, bk := range b.m {
		if bk.lim.TokensAt(now) >= float64(bk.rule.Burst) {
			delete(b.m, name)
		}
	}
}

// LeaseRequest asks the quota server for tokens of several buckets
// (POST /v1/fleet/lease, signed with an admin key).
type LeaseRequest struct {
	Buckets []LeaseAsk `json:"buckets"`
}

// LeaseAsk is one bucket's ask.
type LeaseAsk struct {
	Name  string  `json:"name"`
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
	Want  int     `json:"want"`
}

// LeaseResponse grants each ask some tokens (maybe none, with how long
// until one is there).
type LeaseResponse struct {
	Grants []LeaseGrant `json:"grants"`
}

// LeaseGrant is what one ask got.
type LeaseGrant struct {
	Name         string `json:"name"`
	Granted      int    `json:"granted"`
	RetryAfterMs int64  `json:"retry_after_ms"`
}

// fleetLimiter spends tokens leased from the quota server. Each bucket
// holds a local balance that expires after the lease TTL; when it is
// empty, one request per bucket asks the server for a chunk (the others
// wait for that answer). A refused lease makes the bucket refuse locally
// until half a chunk has had time to accrue, so an overloaded edge does
// not ask for every request. While the server does not answer, a local
// bucket of rule/edges decides.
type fleetLimiter struct {
	cfg      FleetConfig
	signer   client.Signer
	hc       *http.Client
	now      func() time.Time
	fallback *buckets

	mu sync.Mutex
	m  map[string]*leased
}

type leased struct {
	mu       sync.Mutex
	balance  int
	expires  time.Time
	notUntil time.Time // refused by the server: do not ask before
}

func newFleetLimiter(cfg FleetConfig, now func() time.Time) *fleetLimiter {
	return &fleetLimiter{
		cfg:      cfg,
		signer:   client.Signer{Key: cfg.Key, Secret: []byte(cfg.Secret), Now: now},
		hc:       &http.Client{Timeout: time.Second},
		now:      now,
		fallback: newBuckets(now),
		m:        map[string]*leased{},
	}
}

func (f *fleetLimiter) chunk(rule Rule) int {
	if f.cfg.Chunk > 0 {
		return min(f.cfg.Chunk, rule.Burst)
	}
	return max(1, min(int(rule.Rate/20), rule.Burst))
}

func (f *fleetLimiter) take(ctx context.Context, name string, rule Rule) (bool, time.Duration) {
	f.mu.Lock()
	l := f.m[name]
	if l == nil {
		l = &leased{}
		f.m[name] = l
	}
	f.mu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	now := f.now()
	if l.balance > 0 && now.Before(l.expires) {
		l.balance--
		return true, 0
	}
	if now.Before(l.notUntil) {
		return false, l.notUntil.Sub(now)
	}
	chunk := f.chunk(rule)
	g, err := f.lease(ctx, LeaseAsk{Name: name, Rate: rule.Rate, Burst: rule.Burst, Want: chunk})
	if err != nil {
		// The quota server is away: each edge keeps to its share.
		local := Rule{Rate: rule.Rate / float64(f.cfg.Edges), Burst: max(1, rule.Burst/f.cfg.Edges)}
		return f.fallback.take(ctx, name, local)
	}
	now = f.now()
	if g.Granted == 0 {
		wait := max(time.Duration(g.RetryAfterMs)*time.Millisecond, time.Duration(float64(chunk)/2/rule.Rate*float64(time.Second)))
		l.notUntil = now.Add(wait)
		return false, wait
	}
	l.balance, l.expires = g.Granted-1, now.Add(f.cfg.LeaseTTL)
	return true, 0
}

// sweep drops the buckets whose lease has expired and that are not
// waiting out a refusal (they hold nothing), and the idle fallback
// buckets: one per client IP otherwise piles up for the edge's life.
func (f *fleetLimiter) sweep() {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, l := range f.m {
		if !l.mu.TryLock() {
			continue // in use
		}
		if !now.Before(l.expires) && !now.Before(l.notUntil) {
			delete(f.m, name)
		}
		l.mu.Unlock()
	}
	f.fallback.sweep()
}

func (f *fleetLimiter) lease(ctx context.Context, ask LeaseAsk) (LeaseGrant, error) {
	body, _ := json.Marshal(LeaseRequest{Buckets: []LeaseAsk{ask}})
	c := client.Client{Base: f.cfg.LeaseFrom, Signer: f.signer, HTTP: f.hc}
	out, err := c.Do(ctx, http.MethodPost, "/v1/fleet/lease", body)
	if err != nil {
		return LeaseGrant{}, err
	}
	var resp LeaseResponse
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&resp); err != nil || len(resp.Grants) != 1 {
		return LeaseGrant{}, fmt.Errorf("edge: lease: bad answer %q", truncate(out, 200))
	}
	return resp.Grants[0], nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// serveLease is the quota server's end: it grants from its own buckets.
func (s *Server) serveLease(w http.ResponseWriter, r *http.Request, body []byte) {
	var req LeaseRequest
	if err := json.Unmarshal(body, &req); err != nil || len(req.Buckets) == 0 || len(req.Buckets) > 1000 {
		writeError(w, http.StatusBadRequest, "bad_request", "body must be {\"buckets\": [...]} with 1 to 1000 buckets")
		return
	}
	resp := LeaseResponse{Grants: make([]LeaseGrant, 0, len(req.Buckets))}
	for _, a := range req.Buckets {
		rule := Rule{Rate: a.Rate, Burst: a.Burst}
		if a.Name == "" || rule.check("") != nil || !rule.set() || a.Want < 1 {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("bucket %q: name, rate > 0, burst >= 1 and want >= 1 required", a.Name))
			return
		}
		n, wait := s.buckets.grant(a.Name, rule, a.Want)
		resp.Grants = append(resp.Grants, LeaseGrant{Name: a.Name, Granted: n, RetryAfterMs: wait.Milliseconds()})
		s.m.leases.WithLabelValues(grantedLabel(n)).Inc()
	}
	writeJSON(w, http.StatusOK, resp)
}

func grantedLabel(n int) string {
	if n > 0 {
		return "granted"
	}
	return "refused"
}
