package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
)

// Options configure every pool of a Cluster.
type Options struct {
	// User and Password are the account on every server.
	User, Password string
	// MaxOpen bounds open connections per server.
	MaxOpen int
	// MaxIdle bounds the idle connections kept per server.
	MaxIdle int
	// IdleTimeout closes connections idle longer.
	IdleTimeout time.Duration
	// ConnectTimeout bounds dialing plus the MySQL handshake.
	ConnectTimeout time.Duration
	// WaitTimeout bounds the wait for a free connection when MaxOpen are in
	// use.
	WaitTimeout time.Duration
	// HealthCheckInterval is how often each server is checked.
	HealthCheckInterval time.Duration
	// Pipelines is how many pipelined connections per server take short
	// reads of many sessions at once (pipe.go); 0 for none. PipelineDepth
	// is how many statements at most wait on one.
	Pipelines, PipelineDepth int
	// Logger gets one line when a server goes down or comes back.
	Logger *slog.Logger

	// noDeprecateEOF makes connections speak without CLIENT_DEPRECATE_EOF,
	// as older servers do (tests of the raw side).
	noDeprecateEOF bool
}

// DefaultOptions are the pools' defaults (those of config.DefaultConfig).
func DefaultOptions() Options {
	return Options{
		User: "strata", MaxOpen: 256, MaxIdle: 64, IdleTimeout: time.Minute,
		ConnectTimeout: 2 * time.Second, WaitTimeout: 10 * time.Second, HealthCheckInterval: 2 * time.Second,
		Pipelines: 1, PipelineDepth: 32,
	}
}

// Validate reports the first option that is wrong.
func (o Options) Validate() error {
	switch {
	case o.User == "":
		return errors.New("backend: Options.User: required")
	case o.MaxOpen < 1:
		return fmt.Errorf("backend: Options.MaxOpen: %d, need at least 1", o.MaxOpen)
	case o.MaxIdle < 0:
		return fmt.Errorf("backend: Options.MaxIdle: %d, must not be negative", o.MaxIdle)
	case o.IdleTimeout <= 0 || o.ConnectTimeout <= 0 || o.WaitTimeout <= 0 || o.HealthCheckInterval <= 0:
		return errors.New("backend: Options: IdleTimeout, ConnectTimeout, WaitTimeout and HealthCheckInterval must be positive")
	case o.Pipelines < 0 || o.Pipelines > 0 && o.PipelineDepth < 1:
		return fmt.Errorf("backend: Options.Pipelines %d, PipelineDepth %d: need Pipelines >= 0 and, with pipelines, PipelineDepth >= 1", o.Pipelines, o.PipelineDepth)
	}
	return nil
}

// Role is a server's role in its shard.
type Role string

const (
	Primary Role = "primary"
	Replica Role = "replica"
)

// checkIdleAfter: a connection idle longer than this is checked for a
// closed socket before use (one non-blocking read), so that a server that
// restarted while it sat in the pool costs no client error.
const checkIdleAfter = time.Second

// Pool holds the connections to one server. It is safe for concurrent use.
type Pool struct {
	Shard string
	Role  Role
	Addr  string
	desc  string // "shard s0 primary 127.0.0.1:23306" for errors and logs

	opts   *Options
	params mysql.ConnParams
	log    *slog.Logger

	mu      sync.Mutex
	idle    []*Conn // a stack: the most recently used on top
	open    int     // connections open, idle or in use, or being dialed
	waiters []chan grant
	gen     uint64 // bumped when a connection fails: older idle ones are dropped
	closed  bool
	// conns is every open connection, idle or in use, for InterruptInUse to
	// find those in use (Conn.inUse). It changes when a connection is
	// dialed or closed, never on Get or Put.
	conns map[*Conn]struct{}
	// ejected, when not "", is why Get fails at once (Eject).
	ejected string
	// dialStop ends the dials of Gets in progress when Eject cancels it:
	// the handshake with a stopped server would wait for ConnectTimeout.
	dialStop  context.Context
	stopDials context.CancelFunc

	healthy  atomic.Bool
	lastErr  atomic.Pointer[string]
	inUse    atomic.Int64
	waits    atomic.Uint64
	waitNs   atomic.Uint64
	dials    atomic.Uint64
	dialErrs atomic.Uint64
	timeouts atomic.Uint64
	intrs    atomic.Uint64

	stop chan struct{}
	done chan struct{}
	// pipes are the pool's pipelines (pipe.go); piped counts statements
	// sent on them.
	pipes []*pipeline
	piped atomic.Uint64
}

func newPool(shard string, role Role, addr string, opts *Options) (*Pool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("backend: server %q: %w", addr, err)
	}
	pn, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("backend: server %q: bad port", addr)
	}
	p := &Pool{
		Shard: shard, Role: role, Addr: addr,
		desc: fmt.Sprintf("shard %s %s %s", shard, role, addr),
		opts: opts,
		params: mysql.ConnParams{
			Host: host, Port: pn, Uname: opts.User, Pass: opts.Password,
			Charset:               45, // utf8mb4_general_ci: DefaultNames resets to it
			ConnectTimeoutMs:      uint64(opts.ConnectTimeout / time.Millisecond),
			EnableMultiStatements: true, // session state and BEGIN ride with the statement
			EnableQueryInfo:       true, // an OK's "Rows matched: N" (CLIENT_FOUND_ROWS clients)

			DisableClientDeprecateEOF: opts.noDeprecateEOF,
		},
		log:   opts.Logger,
		conns: map[*Conn]struct{}{},
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	for range opts.Pipelines {
		p.pipes = append(p.pipes, &pipeline{pool: p})
	}
	p.dialStop, p.stopDials = context.WithCancel(context.Background())
	p.healthy.Store(true)
	go p.healthLoop()
	return p, nil
}

// String describes the server for errors: "shard s0 primary 127.0.0.1:23306".
func (p *Pool) String() string { return p.desc }

// Healthy reports whether the last check or use of the server succeeded.
func (p *Pool) Healthy() bool { return p.healthy.Load() }

// LastError is the last connection-level error, "" if none.
func (p *Pool) LastError() string {
	if s := p.lastErr.Load(); s != nil {
		return *s
	}
	return ""
}

// Get returns a connection to the server, preferring an idle one that
// already carries want (so that nothing has to be sent to switch session
// state). It dials when none is idle and fewer than MaxOpen are open, and
// otherwise waits up to WaitTimeout. A server that cannot be reached gives
// its error at once (MySQL error 2003), not a hang.
func (p *Pool) Get(ctx context.Context, want *State) (*Conn, error) {
	return p.GetFor(ctx, want, 0)
}

// GetFor is Get for a session (owner != 0): it prefers the idle connection
// that session used last. Keeping each client session on the same backend
// connection, as a TCP proxy does, keeps the server's thread for that
// connection warm and its wake-ups regular; any idle connection still
// serves when that one is busy.
func (p *Pool) GetFor(ctx context.Context, want *State, owner uint64) (*Conn, error) {
	slot := false // a slot handed over by release: dial in it
	for {
		p.mu.Lock()
		if p.closed || p.ejected != "" {
			err := p.refusal()
			p.mu.Unlock()
			if slot {
				p.release(nil)
			}
			return nil, err
		}
		if n := len(p.idle); n > 0 && !slot {
			i := -1
			if owner != 0 {
				for j := n - 1; j >= 0; j-- {
					if p.idle[j].owner == owner {
						i = j
						break
					}
				}
			}
			if i < 0 {
				i = n - 1
				for j := n - 1; j >= 0 && j >= n-4; j-- {
					if p.idle[j].state == want {
						i = j
						break
					}
				}
			}
			c := p.idle[i]
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
			c.inUse = true
			stale := c.gen != p.gen
			p.mu.Unlock()
			p.inUse.Add(1)
			if stale || (time.Since(c.idleSince) > checkIdleAfter && !connAlive(c)) {
				p.discard(c)
				continue
			}
			c.owner = owner
			return c, nil
		}
		if slot || p.open < p.opts.MaxOpen {
			if !slot {
				p.open++
			}
			slot = false
			p.mu.Unlock()
			p.inUse.Add(1)
			c, err := p.dial(ctx, true)
			if err != nil {
				p.inUse.Add(-1)
				p.release(nil)
				return nil, err
			}
			c.owner = owner
			return c, nil
		}
		ch := make(chan grant, 1)
		p.waiters = append(p.waiters, ch)
		p.mu.Unlock()
		g := p.wait(ctx, ch)
		if g.err != nil {
			return nil, g.err
		}
		if g.c != nil {
			g.c.owner = owner
			return g.c, nil
		}
		// A slot was freed for us (a connection closed): go round and dial
		// in it. Not counted in open again, and not left to the next
		// caller: release did not decrement open for it.
		slot = true
	}
}

// grant is what a waiter for a connection gets: a connection, a slot to
// dial in (c and err nil), or the reason it gets none.
type grant struct {
	c   *Conn
	err error
}

func (p *Pool) wait(ctx context.Context, ch chan grant) grant {
	p.waits.Add(1)
	start := time.Now()
	t := time.NewTimer(p.opts.WaitTimeout)
	defer func() {
		t.Stop()
		p.waitNs.Add(uint64(time.Since(start)))
	}()
	var why error
	select {
	case g := <-ch:
		if g.c != nil {
			p.inUse.Add(1)
		}
		return g
	case <-t.C:
		p.timeouts.Add(1)
		why = sqlerror.NewSQLErrorf(sqlerror.ERConCount, sqlerror.SSUnknownSQLState,
			"%s: no free connection within %v (backend.max_open %d in use)", p.desc, p.opts.WaitTimeout, p.opts.MaxOpen)
	case <-ctx.Done():
		why = ctx.Err()
	}
	// Leave the queue. If we are no longer in it, whoever took us out sends
	// a connection or a slot right after: wait for it and pass it on (not
	// waiting would lose it in the channel).
	p.mu.Lock()
	taken := true
	for i, w := range p.waiters {
		if w == ch {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			taken = false
			break
		}
	}
	p.mu.Unlock()
	if taken {
		switch g := <-ch; {
		case g.c != nil:
			p.inUse.Add(1)
			p.Put(g.c)
		case g.err == nil:
			p.release(nil)
		}
	}
	return grant{err: why}
}

// dial opens a connection, counted in use. For a Get (get), Eject ends the
// dial, and a connection that opens after it is closed: the Get fails.
func (p *Pool) dial(ctx context.Context, get bool) (*Conn, error) {
	p.dials.Add(1)
	ctx, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout)
	defer cancel()
	if get {
		p.mu.Lock()
		stop := p.dialStop
		p.mu.Unlock()
		defer context.AfterFunc(stop, cancel)()
	}
	mc, err := connect(ctx, &p.params)
	if err != nil {
		if get {
			p.mu.Lock()
			refused := p.refusal()
			p.mu.Unlock()
			if refused != nil {
				return nil, refused
			}
		}
		p.dialErrs.Add(1)
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("connect timed out after %v", p.opts.ConnectTimeout)
		}
		p.markDown(err)
		return nil, p.wrap(sqlerror.CRConnHostError, err)
	}
	p.markUp()
	c := &Conn{c: mc, pool: p, inUse: true}
	p.mu.Lock()
	if get && p.ejected != "" {
		err := p.refusal()
		p.mu.Unlock()
		mc.Close()
		return nil, err
	}
	c.gen = p.gen
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	return c, nil
}

// Put gives a connection back. Broken or interrupted connections are
// closed; healthy ones go to a waiter or the idle stack.
func (p *Pool) Put(c *Conn) {
	if c == nil {
		return
	}
	p.inUse.Add(-1)
	if c.broken || c.cut.Load() {
		c.close()
		p.release(c)
		return
	}
	c.idleSince = time.Now()
	p.mu.Lock()
	if c.intr.Load() != nil {
		// Interrupted after its statement ended: the socket is closed.
		p.mu.Unlock()
		c.close()
		p.release(c)
		return
	}
	if len(p.waiters) > 0 {
		// Still in use, by the waiter now.
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- grant{c: c}
		return
	}
	if p.closed || c.gen != p.gen || len(p.idle) >= min(p.opts.MaxIdle, p.opts.MaxOpen) {
		p.open--
		delete(p.conns, c)
		p.mu.Unlock()
		c.close()
		return
	}
	c.inUse = false
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// discard closes a connection taken from the pool without using it.
func (p *Pool) discard(c *Conn) {
	p.inUse.Add(-1)
	c.close()
	p.release(c)
}

// release frees the slot of a connection that was closed (c), or never
// opened (nil), and hands it to a waiter, who then dials.
func (p *Pool) release(c *Conn) {
	p.mu.Lock()
	if c != nil {
		delete(p.conns, c)
	}
	if len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		w <- grant{}
		return
	}
	p.open--
	p.mu.Unlock()
}

// InterruptInUse closes the connections in use now (taken by Get and not
// yet put back), so that statements waiting on them, or sent on them
// later, fail at once with a connection error (2013) that carries why, and
// returns how many it closed. Idle connections stay. For a server that
// stopped answering (a SIGSTOP, a hung host), or one that is no longer
// what the caller routed to it for (a demoted primary): a statement or
// COMMIT sent there would otherwise wait for query_timeout, or forever, and
// could run when the server resumes. Its outcome is then unknown to the
// client, who gets an error, never OK.
func (p *Pool) InterruptInUse(why string) int {
	return p.interrupt(why, false)
}

// Eject is InterruptInUse, and makes Get fail at once (2003, the statement
// not sent) until Restore, including the Gets of statements routed to the
// server just before: nothing the proxy sends reaches the server until it
// is restored. Waiters for a connection, and Gets dialing one, get the
// error too.
func (p *Pool) Eject(why string) int {
	return p.interrupt(why, true)
}

// Restore ends Eject: Get serves connections again.
func (p *Pool) Restore() {
	p.mu.Lock()
	if p.ejected != "" {
		p.ejected = ""
		p.dialStop, p.stopDials = context.WithCancel(context.Background())
	}
	p.mu.Unlock()
}

func (p *Pool) interrupt(why string, eject bool) int {
	if why == "" {
		why = "interrupted"
	}
	var victims []*Conn
	var waiters []chan grant
	p.mu.Lock()
	if eject {
		p.ejected = why
		waiters, p.waiters = p.waiters, nil
		p.stopDials()
	}
	refused := p.refusal()
	for c := range p.conns {
		// Marked under mu: Put then sees it, and Get cannot hand the
		// connection out between the mark and the close.
		if c.inUse && c.intr.Load() == nil {
			c.intr.Store(&why)
			victims = append(victims, c)
		}
	}
	p.mu.Unlock()
	for _, w := range waiters {
		w <- grant{err: refused}
	}
	// Closing the socket wakes a reader blocked in it (the vitess side, or
	// the raw side's poller wait) with an error; the owner's Put then
	// closes the connection for good and frees its slot.
	for _, c := range victims {
		c.close()
	}
	p.intrs.Add(uint64(len(victims)))
	return len(victims)
}

// refusal is Get's error on a closed or ejected pool; call with mu held.
func (p *Pool) refusal() error {
	if p.closed {
		return sqlerror.NewSQLErrorf(sqlerror.CRConnHostError, sqlerror.SSUnknownSQLState, "%s: proxy is shutting down", p.desc)
	}
	if p.ejected != "" {
		return sqlerror.NewSQLErrorf(sqlerror.CRConnHostError, sqlerror.SSUnknownSQLState, "%s: %s; the statement was not sent", p.desc, p.ejected)
	}
	return nil
}

// interrupted is the error of a statement whose connection InterruptInUse
// closed.
func (p *Pool) interrupted(why string) error {
	return sqlerror.NewSQLErrorf(sqlerror.CRServerLost, sqlerror.SSUnknownSQLState,
		"%s: Lost connection: the proxy closed it because %s; whether the statement took effect is unknown", p.desc, why)
}

// connError wraps a connection-level error with the server it came from and
// drops the pool's idle connections (they likely died together); a
// statement error from the server passes through unchanged.
func (p *Pool) connError(err error) error {
	if !isConnError(err) {
		return err
	}
	p.mu.Lock()
	p.gen++
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	for _, c := range idle {
		delete(p.conns, c)
	}
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	code := sqlerror.CRServerLost
	var se *sqlerror.SQLError
	if errors.As(err, &se) {
		code = se.Number()
		err = errors.New(se.Message)
	}
	return p.wrap(code, err)
}

func (p *Pool) wrap(code sqlerror.ErrorCode, err error) error {
	msg := err.Error()
	var se *sqlerror.SQLError
	if errors.As(err, &se) {
		msg = se.Message
	}
	return sqlerror.NewSQLErrorf(code, sqlerror.SSUnknownSQLState, "%s: %s", p.desc, msg)
}

func (p *Pool) markDown(err error) {
	s := err.Error()
	p.lastErr.Store(&s)
	if p.healthy.Swap(false) {
		p.log.Warn("backend: server down", "server", p.desc, "err", s)
	}
}

func (p *Pool) markUp() {
	if !p.healthy.Swap(true) {
		p.log.Info("backend: server back", "server", p.desc)
	}
}

// healthLoop closes connections idle past IdleTimeout, pings the others
// that have been idle a while, and, while the server is down, dials it to
// notice when it is back.
func (p *Pool) healthLoop() {
	defer close(p.done)
	t := time.NewTicker(p.opts.HealthCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.check()
	}
}

func (p *Pool) check() {
	now := time.Now()
	var expired, toPing []*Conn
	p.mu.Lock()
	keep := p.idle[:0]
	for _, c := range p.idle {
		switch idle := now.Sub(c.idleSince); {
		case idle > p.opts.IdleTimeout || c.gen != p.gen:
			expired = append(expired, c)
		case idle > p.opts.HealthCheckInterval && len(toPing) == 0:
			// One ping per round is enough to know the server is alive.
			toPing = append(toPing, c)
		default:
			keep = append(keep, c)
		}
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = nil
	}
	p.idle = keep
	p.open -= len(expired)
	for _, c := range expired {
		delete(p.conns, c)
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
	if len(toPing) > 0 {
		for _, c := range toPing {
			p.inUse.Add(1)
			if err := c.ping(p.opts.ConnectTimeout); err != nil {
				p.markDown(err)
				p.Put(c)
				_ = p.connError(sqlerror.NewSQLErrorf(sqlerror.CRServerLost, sqlerror.SSUnknownSQLState, "%v", err))
				continue
			}
			p.markUp()
			p.Put(c)
		}
		return
	}
	p.mu.Lock()
	probe := !p.healthy.Load() || (len(p.idle) == 0 && p.inUse.Load() == 0)
	if probe && p.open < p.opts.MaxOpen && !p.closed {
		p.open++
	} else {
		probe = false
	}
	p.mu.Unlock()
	if probe {
		// Dial to learn whether the server is up; keep the connection.
		p.inUse.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.ConnectTimeout)
		c, err := p.dial(ctx, false)
		cancel()
		if err != nil {
			p.inUse.Add(-1)
			p.release(nil)
			return
		}
		p.Put(c)
	}
}

// Close closes every idle connection and stops the health checks.
// Connections in use are closed when they are put back.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.stopDials()
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	for _, c := range idle {
		delete(p.conns, c)
	}
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	p.closePipes()
	for _, c := range idle {
		c.close()
	}
}

// Stats is a snapshot of a pool's counters.
type Stats struct {
	Open, Idle, InUse                int
	Waits, Timeouts, Dials, DialErrs uint64
	// Interrupted counts connections InterruptInUse and Eject closed.
	Interrupted uint64
	// Piped counts statements sent on the pool's pipelines.
	Piped    uint64
	WaitTime time.Duration
	Healthy  bool
	// Ejected: Get fails until Restore.
	Ejected bool
}

// Stats returns a snapshot.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	s := Stats{Open: p.open, Idle: len(p.idle), Ejected: p.ejected != ""}
	p.mu.Unlock()
	s.Interrupted, s.Piped = p.intrs.Load(), p.piped.Load()
	s.InUse = int(p.inUse.Load())
	s.Waits, s.Timeouts = p.waits.Load(), p.timeouts.Load()
	s.Dials, s.DialErrs = p.dials.Load(), p.dialErrs.Load()
	s.WaitTime = time.Duration(p.waitNs.Load())
	s.Healthy = p.healthy.Load()
	return s
}
