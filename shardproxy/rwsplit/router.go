package rwsplit

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/fleet"
)

// Router is a backend.Router that splits reads from writes.
type Router struct {
	f     *fleet.Fleet
	def   fleet.Consistency
	pools map[string]*backend.Pool // by server address
	names map[*backend.Pool]string // pool -> fleet server name
	pos   map[string]*posFetcher   // by shard
	log   *slog.Logger
	// global records every write through this proxy, as a session does
	// its own: what Global reads must see.
	global *session
	// byName is the pools by fleet server name, for the fleet's events,
	// which may come from its goroutines while Bind runs.
	byName atomic.Pointer[map[string]*backend.Pool]
}

// FleetConfig turns the proxy config into the fleet's.
func FleetConfig(cfg *config.Config) fleet.Config {
	rw := cfg.ReadWrite
	fc := fleet.DefaultConfig()
	for _, s := range cfg.Shards {
		sc := fleet.ShardConfig{Name: s.Name}
		for i, addr := range append([]string{s.Primary}, s.Replicas...) {
			role := fleet.RoleReplica
			if i == 0 {
				role = fleet.RolePrimary
			}
			sc.Servers = append(sc.Servers, fleet.ServerConfig{
				Name: config.ServerName(s.Name, i), Addr: addr, Role: role,
				User: rw.AdminUser, Password: rw.AdminPassword,
			})
		}
		fc.Shards = append(fc.Shards, sc)
	}
	fc.CheckInterval, fc.CheckTimeout, fc.EjectAfter = rw.CheckInterval, rw.CheckTimeout, rw.EjectAfter
	fc.MaxLag, fc.NoReplica, fc.SessionWait = rw.MaxLag, fleet.NoReplica(rw.NoReplica), rw.SessionWait
	fc.HoldTimeout, fc.HoldMax, fc.DrainTimeout, fc.CatchupTimeout = rw.HoldTimeout, rw.HoldMax, rw.DrainTimeout, rw.CatchupTimeout
	fc.AutoPromoteAfter = rw.AutoPromoteAfter
	fc.ReplUser, fc.ReplPassword, fc.MetaSchema = rw.ReplUser, rw.ReplPassword, rw.MetaSchema
	return fc
}

// New builds the router and its fleet (fc: FleetConfig of the proxy's
// config); def is the read consistency of sessions that set none. Bind
// gives it the backend pools; Start starts the fleet's checks.
func New(fc fleet.Config, def fleet.Consistency, reg prometheus.Registerer, log *slog.Logger) (*Router, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	def, err := fleet.ParseConsistency(string(def))
	if err != nil {
		return nil, err
	}
	f, err := fleet.New(fc, reg, log)
	if err != nil {
		return nil, err
	}
	r := &Router{f: f, def: def, pos: map[string]*posFetcher{}, log: log, global: &session{shards: map[string]*shardState{}}}
	for _, sh := range f.Shards() {
		r.pos[sh] = &posFetcher{}
	}
	f.OnEvent(r.onEvent)
	return r, nil
}

// onEvent ends what the proxy has in flight on a server it stops using.
// With query_timeout 0 a statement or COMMIT sent to a server that stopped
// answering (SIGSTOP, a hung host) waits for it; if a replica is promoted
// meanwhile, a COMMIT that runs when the old primary resumes, before the
// fleet fences it, would be acknowledged while its write is only there.
// Closed at ejection, the statement fails (2013, outcome unknown; a plain
// read is retried elsewhere) and nothing more is sent to the server until
// it answers again (and, a replaced primary, is fenced: the fleet fences it
// in the check that restores it). A demoted primary's connections in use
// are closed too: a transaction left open there past the switchover's
// drain cannot commit anyway, and a statement routed to it before the
// change must not go on there.
func (r *Router) onEvent(e fleet.Event) {
	pools := r.byName.Load()
	if pools == nil {
		return
	}
	switch e.Kind {
	case fleet.ServerEjected:
		if p := (*pools)[e.Server]; p != nil {
			n := p.Eject(fmt.Sprintf("server %s of shard %s was ejected (it stopped answering)", e.Server, e.Shard))
			if n > 0 {
				r.log.Warn("rwsplit: ejected server's connections in use closed", "shard", e.Shard, "server", e.Server, "closed", n)
			}
		}
	case fleet.ServerRestored:
		if p := (*pools)[e.Server]; p != nil {
			p.Restore()
		}
	case fleet.PrimaryChanged:
		if p := (*pools)[e.Old]; p != nil && e.Old != "" {
			n := p.InterruptInUse(fmt.Sprintf("server %s is no longer the primary of shard %s (now %s)", e.Old, e.Shard, e.Server))
			if n > 0 {
				r.log.Warn("rwsplit: former primary's connections in use closed", "shard", e.Shard, "server", e.Old, "closed", n)
			}
		}
	}
}

// Bind gives the router the cluster's pools, one per server address. Call
// it once, before the first Route.
func (r *Router) Bind(c *backend.Cluster) error {
	pools := map[string]*backend.Pool{}
	names := map[*backend.Pool]string{}
	byName := map[string]*backend.Pool{}
	for _, p := range c.Pools() {
		pools[p.Addr] = p
	}
	for _, s := range r.f.Servers() {
		p, ok := pools[s.Addr]
		if !ok {
			return fmt.Errorf("rwsplit: no backend pool for server %s (%s)", s.Name, s.Addr)
		}
		names[p] = s.Name
		byName[s.Name] = p
	}
	r.pools, r.names = pools, names
	r.byName.Store(&byName)
	return nil
}

// Start checks every server once and starts the fleet's checks.
func (r *Router) Start(ctx context.Context) error { return r.f.Start(ctx) }

// Close stops the fleet.
func (r *Router) Close() error { return r.f.Close() }

// Fleet is the router's fleet, for status and admin commands.
func (r *Router) Fleet() *fleet.Fleet { return r.f }

// DefaultConsistency is the configured default level.
func (r *Router) DefaultConsistency() fleet.Consistency { return r.def }

// session is one client session's read/write splitting state, kept in its
// RouteHint.RW.
type session struct {
	mu     sync.Mutex
	shards map[string]*shardState
}

type shardState struct {
	wroteAt time.Time      // end of the last write not yet turned into a position; zero when none
	after   fleet.Position // what a session read must see
}

func sessionOf(h *backend.RouteHint) *session {
	if v := h.RW.Load(); v != nil {
		return v.(*session)
	}
	h.RW.CompareAndSwap(nil, &session{shards: map[string]*shardState{}})
	return h.RW.Load().(*session)
}

// Route implements backend.Router.
func (r *Router) Route(ctx context.Context, shard string, read bool, h *backend.RouteHint) (backend.Target, error) {
	if h == nil {
		h = &backend.RouteHint{}
	}
	level := r.def
	if h.Consistency != "" {
		level = fleet.Consistency(h.Consistency)
	}
	if level == fleet.Strong && debugStrongOnReplicas() {
		level = fleet.Eventual
	}
	if read && level == fleet.Strong && !h.ForcePrimary {
		l, err := r.f.AcquireRead(ctx, shard, fleet.ReadRequest{Consistency: fleet.Strong})
		if err != nil {
			return backend.Target{}, fleet.SQLError(err)
		}
		return r.target(l, nil)
	}
	if !read || h.ForcePrimary {
		l, err := r.f.AcquirePrimary(ctx, shard)
		if err != nil {
			return backend.Target{}, fleet.SQLError(err)
		}
		// Every write is remembered, whatever the level: a session that
		// wrote in eventual or strong and then turns to session must read
		// its write too. Only session reads pay for it (a position read).
		var s *session
		if !read {
			s = sessionOf(h)
		}
		return r.target(l, func(error) {
			if s != nil {
				// Even a failed statement may have written: a transaction's
				// COMMIT ends here, and a connection that broke after the
				// server committed leaves the outcome unknown. Assume it did.
				s.wrote(shard)
				r.global.wrote(shard)
			}
		})
	}
	req := fleet.ReadRequest{Consistency: level}
	if h.Exclude != nil {
		req.Exclude = r.names[h.Exclude]
	}
	if (level == fleet.Session || level == fleet.Global) && !debugSkipReadYourWrites() {
		s := r.global
		if level == fleet.Session {
			s = sessionOf(h)
		}
		after, err := r.sessionAfter(ctx, s, shard)
		if err != nil {
			return backend.Target{}, err
		}
		req.After = after
	}
	l, err := r.f.AcquireRead(ctx, shard, req)
	if err != nil {
		return backend.Target{}, fleet.SQLError(err)
	}
	if len(l.WaitFor) > 0 {
		if l, err = r.wait(ctx, l); err != nil {
			return backend.Target{}, err
		}
	}
	return r.target(l, nil)
}

// target wraps a lease as a backend.Target.
func (r *Router) target(l *fleet.Lease, done func(error)) (backend.Target, error) {
	p := r.pools[l.Addr]
	if p == nil {
		l.Release()
		return backend.Target{}, sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "strata: shard %s: no backend pool for %s (%s)", l.Shard, l.Server, l.Addr)
	}
	name := l.Server
	return backend.Target{Pool: p, Done: func(err error) {
		l.Release()
		if err != nil && backend.IsConnError(err) {
			r.f.ReportFailure(name)
		}
		if done != nil {
			done(err)
		}
	}}, nil
}

// wait makes the leased replica wait for l.WaitFor; when it does not get
// there in time the read goes to the primary.
func (r *Router) wait(ctx context.Context, l *fleet.Lease) (*fleet.Lease, error) {
	p := r.pools[l.Addr]
	ok := false
	if p != nil {
		res, err := r.query(ctx, p, l.WaitQuery(), l.WaitTimeout+time.Second)
		ok = err == nil && res == "0"
		if err != nil && backend.IsConnError(err) {
			r.f.ReportFailure(l.Server)
		}
	}
	if ok {
		l.Reached()
		return l, nil
	}
	shard := l.Shard
	l.Release()
	pl, err := r.f.AcquirePrimary(ctx, shard)
	if err != nil {
		return nil, fleet.SQLError(err)
	}
	return pl, nil
}

// query runs a one-value statement on a pooled connection.
func (r *Router) query(ctx context.Context, p *backend.Pool, q string, timeout time.Duration) (string, error) {
	c, err := p.Get(ctx, nil)
	if err != nil {
		return "", err
	}
	res, _, err := c.Exec(ctx, q, backend.ExecOptions{State: c.State(), Timeout: timeout})
	p.Put(c)
	if err != nil {
		return "", err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return "", fmt.Errorf("rwsplit: %s: want one value", q)
	}
	return res.Rows[0][0].ToString(), nil
}

func (s *session) wrote(shard string) {
	s.mu.Lock()
	st := s.shards[shard]
	if st == nil {
		st = &shardState{}
		s.shards[shard] = st
	}
	st.wroteAt = time.Now()
	s.mu.Unlock()
}

// sessionAfter is the position a session read on shard must see: after a
// write, the primary's position read after that write ended.
func (r *Router) sessionAfter(ctx context.Context, s *session, shard string) (fleet.Position, error) {
	s.mu.Lock()
	st := s.shards[shard]
	if st == nil {
		s.mu.Unlock()
		return nil, nil
	}
	wroteAt, after := st.wroteAt, st.after
	s.mu.Unlock()
	if wroteAt.IsZero() {
		return after, nil
	}
	pos, err := r.primaryPos(ctx, shard, wroteAt)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	st.after = st.after.Merge(pos)
	if st.wroteAt.Equal(wroteAt) {
		st.wroteAt = time.Time{}
	}
	after = st.after
	s.mu.Unlock()
	return after, nil
}

// primaryPos returns the shard primary's @@gtid_binlog_pos as read by a
// query that started after t. Sessions whose writes ended before a read
// started share it.
func (r *Router) primaryPos(ctx context.Context, shard string, t time.Time) (fleet.Position, error) {
	pf := r.pos[shard]
	if pf == nil {
		return nil, fleet.SQLError(&fleet.Error{Shard: shard, Err: fleet.ErrUnknownShard, Msg: "unknown shard"})
	}
	// An ejected primary (killed, or stopped and silent) would hold the
	// read for the query's timeout, and the proxy's retry of a failed read
	// for another: fail at once, as a write would. Without the primary's
	// position no replica can be shown to have the session's write.
	if err := r.f.PrimaryDown(shard); err != nil {
		return nil, fleet.SQLError(err)
	}
	return pf.get(t, func() (fleet.Position, error) {
		// Not a lease: this is the proxy's own bookkeeping, not a client's
		// query, and during a switchover the old primary's final position
		// is as good (the new primary has all of it).
		for attempt := 0; ; attempt++ {
			_, addr, err := r.f.Primary(shard)
			if err != nil {
				return nil, fleet.SQLError(err)
			}
			v, err := r.query(ctx, r.pools[addr], "SELECT @@global.gtid_binlog_pos", 5*time.Second)
			if err != nil {
				// A primary replaced meanwhile closes the read (onEvent):
				// the new one's position is as good.
				if attempt == 0 && backend.IsConnError(err) {
					if _, now, _ := r.f.Primary(shard); now != addr && r.f.PrimaryDown(shard) == nil {
						continue
					}
				}
				return nil, err
			}
			return fleet.ParsePosition(v)
		}
	})
}

// posFetcher shares reads of a primary's position: a caller whose write
// ended at t can use any read that started after t.
type posFetcher struct {
	mu  sync.Mutex
	cur *posFetch
}

type posFetch struct {
	start time.Time
	done  chan struct{}
	pos   fleet.Position
	err   error
}

func (pf *posFetcher) get(t time.Time, fetch func() (fleet.Position, error)) (fleet.Position, error) {
	pf.mu.Lock()
	if c := pf.cur; c != nil && c.start.After(t) {
		pf.mu.Unlock()
		<-c.done
		return c.pos, c.err
	}
	c := &posFetch{start: time.Now(), done: make(chan struct{})}
	pf.cur = c
	pf.mu.Unlock()
	c.pos, c.err = fetch()
	if c.err != nil {
		// A failed read is shared only by those already waiting for it:
		// kept, it would answer every later read of a session whose write
		// ended before it with the same error, until some newer write made
		// another fetch (never, on a quiet shard).
		pf.mu.Lock()
		if pf.cur == c {
			pf.cur = nil
		}
		pf.mu.Unlock()
	}
	close(c.done)
	return c.pos, c.err
}

// primaryHint matches the hint comment that sends a statement to the
// primary: /*+ strata:primary */ (spaces inside the comment optional).
var primaryHint = regexp.MustCompile(`/\*\+\s*strata:primary\s*\*/`)

// HasPrimaryHint reports whether the statement carries /*+ strata:primary */.
func HasPrimaryHint(sql string) bool {
	return strings.Contains(sql, "strata:primary") && primaryHint.MatchString(sql)
}

// ParseConsistency checks a value for strata_read_consistency.
func ParseConsistency(v string) (fleet.Consistency, error) {
	c, err := fleet.ParseConsistency(strings.Trim(strings.TrimSpace(v), `'"`))
	if err != nil {
		return "", sqlerror.NewSQLErrorf(sqlerror.ERWrongValueForVar, sqlerror.SSClientError, "Variable 'strata_read_consistency' can't be set to the value of '%s' (want session, global, eventual or strong)", v)
	}
	return c, nil
}

var _ backend.Router = (*Router)(nil)
