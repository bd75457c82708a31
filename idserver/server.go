package idserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-db/strata/idserver/idpb"
	"github.com/strata-db/strata/raftstore"
)

// RaftNode is what the server needs of its Raft node; *raftstore.Node is
// one. The node must apply to the FSM given to New.
type RaftNode interface {
	ID() string
	Apply(ctx context.Context, cmd []byte) (any, error)
	Barrier(ctx context.Context) error
	VerifyLeader(ctx context.Context) error
	IsLeader() bool
	LeaderMeta() map[string]string
	Members() ([]raftstore.Peer, error)
	Subscribe() (<-chan raftstore.LeadershipEvent, func())
}

// termReader is an optional ability of a RaftNode (*raftstore.Node has
// it): the node's current Raft term, read without a round trip.
type termReader interface{ Term() uint64 }

// Meta keys under which a node publishes its API addresses through
// raftstore, so any node can name the leader's.
const (
	MetaGRPC = "grpc"
	MetaHTTP = "http"
)

// Server serves IDs from one node of the group: segment IDs while it is
// the leader (a follower forwards them), snowflake IDs from its own worker.
type Server struct {
	cfg   Config
	node  RaftNode
	fsm   *FSM
	log   *slog.Logger
	m     *metrics
	gath  prometheus.Gatherer
	clock func() time.Time
	t0    time.Time // origin of the monotonic lease clock

	segs *segments
	snow *snowflake

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	// keepCtx ends the snowflake keeper first, so that it does not lease a
	// worker again after Close released it.
	keepCtx    context.Context
	keepCancel context.CancelFunc
	wg         sync.WaitGroup

	// Leadership. ready is true between a Barrier after winning and the
	// loss; leaseUntil is in nanoseconds since t0.
	lmu        sync.Mutex
	gen        atomic.Uint64 // changed only under lmu
	ready      atomic.Bool
	terms      termReader    // nil when the node cannot tell its term
	term       atomic.Uint64 // the Raft term ready belongs to
	leaseUntil atomic.Int64
	// soleUntil (nanoseconds since t0) is how long this node may serve
	// without a lease because it was the group's only member.
	soleUntil  atomic.Int64
	leadCancel context.CancelFunc
	renewals   singleflight.Group

	selfGRPC string
	httpSrv  *http.Server
	grpcSrv  *grpc.Server

	fmu   sync.Mutex
	conns map[string]*grpc.ClientConn // forwarding connections by address

	closeOnce sync.Once
	closed    atomic.Bool
}

// New builds a server around a running Raft node and the FSM that node
// applies to. Serve starts it.
func New(cfg Config, node RaftNode, fsm *FSM) (*Server, error) {
	clock := time.Now
	if cfg.ChaosClock != nil {
		clock = cfg.ChaosClock.Now
	}
	return newServer(cfg, node, fsm, clock, time.Sleep)
}

// newServer is New with the clock injected (tests set it back).
func newServer(cfg Config, node RaftNode, fsm *FSM, clock func() time.Time, sleep func(time.Duration)) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if node == nil || fsm == nil {
		return nil, errors.New("idserver: New: node and fsm are required")
	}
	reg, gath := cfg.Registerer, cfg.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gath = r, r
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("idserver: register metrics: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg: cfg, node: node, fsm: fsm, log: log.With("idserver", node.ID()), m: m, gath: gath,
		clock: clock, t0: time.Now(), conns: map[string]*grpc.ClientConn{},
	}
	s.terms, _ = node.(termReader)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.keepCtx, s.keepCancel = context.WithCancel(s.ctx)
	s.segs = newSegments(cfg, s, s, clock, s.ctx, m)
	s.snow = newSnowflake(cfg.Snowflake, node.ID(), s, clock, sleep, s.log, m)
	return s, nil
}

// Serve starts the HTTP and gRPC servers on the given listeners (either
// may be nil) and the leadership and snowflake background work. It returns
// at once; Close stops everything.
func (s *Server) Serve(httpLn, grpcLn net.Listener) {
	if grpcLn != nil {
		s.selfGRPC = grpcLn.Addr().String()
		s.grpcSrv = grpc.NewServer()
		idpb.RegisterIDsServer(s.grpcSrv, &grpcIDs{s: s})
		idpb.RegisterInternalServer(s.grpcSrv, &grpcInternal{s: s})
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.grpcSrv.Serve(grpcLn); err != nil && !s.closed.Load() {
				s.log.Error("idserver: grpc server", "err", err)
			}
		}()
	}
	if httpLn != nil {
		s.httpSrv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("idserver: http server", "err", err)
			}
		}()
	}
	s.wg.Add(1)
	go s.watchLeadership()
	if !s.cfg.Snowflake.Disabled {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.snow.keep(s.keepCtx) }()
	}
}

// Close stops serving: the listeners close, in-flight requests finish (for
// up to five seconds), the snowflake worker is released, and background
// work ends. It does not close the Raft node. Idempotent.
func (s *Server) Close() error {
	s.shutdown(true)
	return nil
}

// Kill stops serving at once, as a crash would: connections drop and the
// worker is not released. For tests.
func (s *Server) Kill() {
	s.shutdown(false)
}

func (s *Server) shutdown(graceful bool) {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.keepCancel()
		s.loseLeadership() // never serve cached ranges past this point
		if graceful {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if s.httpSrv != nil {
				_ = s.httpSrv.Shutdown(ctx)
			}
			if s.grpcSrv != nil {
				done := make(chan struct{})
				go func() { s.grpcSrv.GracefulStop(); close(done) }()
				select {
				case <-done:
				case <-ctx.Done():
					s.grpcSrv.Stop()
				}
			}
			if !s.cfg.Snowflake.Disabled {
				rctx, rcancel := context.WithTimeout(ctx, time.Second)
				s.snow.release(rctx)
				rcancel()
			}
			cancel()
		} else {
			if s.httpSrv != nil {
				_ = s.httpSrv.Close()
			}
			if s.grpcSrv != nil {
				s.grpcSrv.Stop()
			}
		}
		s.cancel()
		s.wg.Wait()
		s.fmu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.conns = nil
		s.fmu.Unlock()
	})
}

// watchLeadership follows the node's leadership: on winning it starts a
// term (Barrier, then serve under a lease); on losing it drops every cached
// range at once.
func (s *Server) watchLeadership() {
	defer s.wg.Done()
	events, cancel := s.node.Subscribe()
	defer cancel()
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				s.loseLeadership()
				return
			}
			s.m.leaderChanges.Inc()
			if ev.IsLeader {
				s.startTerm()
			} else {
				s.loseLeadership()
			}
		}
	}
}

func (s *Server) startTerm() {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.closed.Load() {
		return
	}
	s.dropLocked()
	ctx, cancel := context.WithCancel(s.ctx)
	s.leadCancel = cancel
	gen := s.gen.Load()
	s.wg.Add(1)
	go s.lead(ctx, gen)
}

// loseLeadership stops serving cached ranges and drops them.
func (s *Server) loseLeadership() {
	s.lmu.Lock()
	s.dropLocked()
	s.lmu.Unlock()
}

func (s *Server) dropLocked() {
	s.ready.Store(false)
	s.leaseUntil.Store(0)
	s.gen.Add(1)
	if s.leadCancel != nil {
		s.leadCancel()
		s.leadCancel = nil
	}
	s.segs.reset()
	s.m.isLeader.Set(0)
}

// lead runs one term: Barrier, so the FSM holds every entry an earlier
// leader committed; then serve, renewing the lease until the term ends.
func (s *Server) lead(ctx context.Context, gen uint64) {
	defer s.wg.Done()
	for {
		s.checkMembers()
		start, term := s.mono(), s.nodeTerm()
		err := s.timed("barrier", func(ctx context.Context) error { return s.node.Barrier(ctx) }, ctx)
		if err == nil && s.nodeTerm() != term {
			// Leadership was lost and won again meanwhile; the events are
			// on their way.
			err = fmt.Errorf("the Raft term moved from %d to %d during the barrier", term, s.nodeTerm())
		}
		if err == nil {
			s.lmu.Lock()
			if s.gen.Load() == gen {
				s.segs.reset()
				s.term.Store(term)
				s.extendLease(gen, start)
				s.ready.Store(true)
				s.m.isLeader.Set(1)
				s.log.Info("idserver: leader, serving", "term", term)
			}
			s.lmu.Unlock()
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("idserver: barrier after winning leadership failed (retrying)", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	t := time.NewTicker(s.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.checkMembers()
			if err := s.renewGen(ctx, gen); err != nil && ctx.Err() == nil {
				s.log.Debug("idserver: lease renewal failed", "err", err)
			}
		}
	}
}

func (s *Server) mono() int64 { return int64(time.Since(s.t0)) }

// extendLease moves the lease to start+Lease if gen is still the term.
func (s *Server) extendLease(gen uint64, start int64) {
	until := start + int64(s.cfg.Lease)
	for {
		cur := s.leaseUntil.Load()
		if until <= cur || s.currentGen() != gen {
			return
		}
		if s.leaseUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func (s *Server) currentGen() uint64 { return s.gen.Load() }

// nodeTerm is the node's Raft term, 0 when it cannot tell.
func (s *Server) nodeTerm() uint64 {
	if s.terms == nil {
		return 0
	}
	return s.terms.Term()
}

// check implements servingGate: serve only as the ready leader within the
// lease, and only while Raft still says leader in the term the buffers
// were filled in. Both flip the moment Raft steps down or starts a new
// term, ahead of the events that drop the buffers: those pass through
// goroutines a loaded machine may hold up for as long as it takes this
// node to lose leadership and win it back, with another leader serving
// higher IDs in between.
func (s *Server) check() error {
	if !s.ready.Load() || !s.node.IsLeader() || s.nodeTerm() != s.term.Load() {
		return s.notLeader("")
	}
	if now := s.mono(); now >= s.leaseUntil.Load() && now >= s.soleUntil.Load() {
		return errLeaseExpired
	}
	return nil
}

// checkMembers records whether this node is the group's only member, who
// needs no lease renewal (a VerifyLeader that would queue behind fsync):
// while it is alone no other node can be elected. Members join through
// this leader's log, so if it was alone at t, every other voter has heard
// from it after t and none can win an election before t + the heartbeat
// timeout: alone at t is as good as a lease from t. The answer is so used,
// for Lease, and refreshed every Lease/3; a check that is held up (a loaded
// machine) lets it lapse rather than serve on it while voters join.
func (s *Server) checkMembers() {
	start := s.mono()
	ms, err := s.node.Members()
	if err == nil && len(ms) == 1 && ms[0].ID == s.node.ID() {
		s.soleUntil.Store(start + int64(s.cfg.Lease))
	} else {
		s.soleUntil.Store(0)
	}
}

// renew implements servingGate: one VerifyLeader for all who wait.
func (s *Server) renew(ctx context.Context) error {
	return s.renewGen(ctx, s.currentGen())
}

func (s *Server) renewGen(ctx context.Context, gen uint64) error {
	ch := s.renewals.DoChan("lease", func() (any, error) {
		start := s.mono()
		err := s.timed("verify_leader", func(ctx context.Context) error { return s.node.VerifyLeader(ctx) }, s.ctx)
		if err == nil {
			s.extendLease(gen, start)
		}
		return nil, err
	})
	select {
	case r := <-ch:
		return s.raftErr(r.Err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// timed runs a Raft round trip with ApplyTimeout and records it.
func (s *Server) timed(op string, f func(context.Context) error, parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, s.cfg.ApplyTimeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	s.m.raftLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.m.raftApplies.WithLabelValues(op, result).Inc()
	return err
}

// apply commits a command on this node (which must be the leader).
func (s *Server) apply(ctx context.Context, op string, c command) (any, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("idserver: encode command: %w", err)
	}
	var res any
	err = s.timed(op, func(ctx context.Context) error {
		var err error
		res, err = s.node.Apply(ctx, b)
		return err
	}, ctx)
	if err != nil {
		return nil, s.raftErr(err)
	}
	return res, nil
}

// reserve implements reserver: commit a new high-water mark for tag. The
// Apply fails unless this node is the leader when the entry commits, and
// success proves a quorum heard from it, which extends the lease.
func (s *Server) reserve(ctx context.Context, tag string, count uint64) (reserveResult, error) {
	gen, start := s.currentGen(), s.mono()
	res, err := s.apply(ctx, "reserve", command{
		Op: opReserve, Tag: tag, Count: count,
		Start: s.cfg.DefaultStart, Step: s.cfg.DefaultStep, MaxTags: s.cfg.MaxTags,
	})
	if err != nil {
		return reserveResult{}, err
	}
	switch r := res.(type) {
	case reserveResult:
		s.extendLease(gen, start)
		return r, nil
	case error:
		return reserveResult{}, r
	default:
		return reserveResult{}, fmt.Errorf("idserver: reserve: unexpected FSM result %T", res)
	}
}

// raftErr maps raftstore's errors onto this package's.
func (s *Server) raftErr(err error) error {
	var nl *raftstore.NotLeaderError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nl):
		return &NotLeaderError{Leader: nl.LeaderMeta[MetaGRPC], Reason: "raft: " + err.Error()}
	case errors.Is(err, raftstore.ErrShutdown):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, raftstore.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		return err
	}
}

func (s *Server) notLeader(reason string) *NotLeaderError {
	return &NotLeaderError{Leader: s.node.LeaderMeta()[MetaGRPC], Reason: reason}
}

// checkTag validates a tag name: 1 to MaxTagLen bytes of letters, digits
// and "_-.:".
func checkTag(tag string) error {
	if tag == "" {
		return invalidf("empty tag")
	}
	if len(tag) > MaxTagLen {
		return invalidf("tag is %d bytes, longer than the maximum %d", len(tag), MaxTagLen)
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return invalidf("tag %q has byte %q at %d: tags are letters, digits and _-.:", tag, c, i)
		}
	}
	return nil
}

func checkCount(count, maxCount uint64) error {
	if count == 0 {
		return invalidf("count must be at least 1")
	}
	if count > maxCount {
		return invalidf("count %d is above the maximum %d", count, maxCount)
	}
	return nil
}

// Next returns count IDs of tag as increasing ranges, appended to out: from
// this node's buffer when it is the leader, else from the leader. Every ID
// is above every ID of tag returned by any call that ended before this one
// began. leader is the gRPC address of the node that allocated them.
func (s *Server) Next(ctx context.Context, tag string, count uint64, out []Range) (ranges []Range, leader string, err error) {
	return s.next(ctx, tag, count, s.cfg.MaxGRPCCount, false, out)
}

func (s *Server) next(ctx context.Context, tag string, count, maxCount uint64, forwarded bool, out []Range) ([]Range, string, error) {
	if s.closed.Load() {
		return nil, "", ErrClosed
	}
	if err := checkTag(tag); err != nil {
		return nil, "", err
	}
	if err := checkCount(count, maxCount); err != nil {
		return nil, "", err
	}
	if s.ready.Load() {
		base := s.cfg.DefaultStep
		if t, ok := s.fsm.tag(tag); ok {
			base = t.Step
		} else if s.fsm.tagCount() >= s.cfg.MaxTags {
			// Refused before it gets a buffer and metric series: a client
			// inventing tags must not grow the leader's memory either.
			return nil, "", errTagLimit(tag, s.cfg.MaxTags)
		}
		r, err := s.segs.next(ctx, tag, count, base, out)
		var nl *NotLeaderError
		if forwarded || !errors.As(err, &nl) {
			return r, s.selfGRPC, err
		}
		// Lost leadership on the way: ask the new leader.
	}
	if forwarded {
		return nil, "", s.notLeader("forwarded to a node that is not the ready leader")
	}
	return s.forwardNext(ctx, tag, count, out)
}

// CreateTag creates tag with a start value and step (DefaultStep when 0).
func (s *Server) CreateTag(ctx context.Context, tag string, start, step uint64) error {
	return s.createTag(ctx, tag, start, step, false)
}

// createTag is CreateTag; forwarded marks a call another node forwarded
// here, which is not forwarded again (two nodes that each take the other
// for the leader would bounce it until the caller gives up).
func (s *Server) createTag(ctx context.Context, tag string, start, step uint64, forwarded bool) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := checkTag(tag); err != nil {
		return err
	}
	if step == 0 {
		step = s.cfg.DefaultStep
	}
	if start < 1 || start > MaxID {
		return invalidf("start %d is not in [1, %d]", start, uint64(MaxID))
	}
	if step > s.cfg.MaxStep {
		return invalidf("step %d is above the maximum %d", step, s.cfg.MaxStep)
	}
	if !s.node.IsLeader() {
		if forwarded {
			return s.notLeader("forwarded to a node that is not the leader")
		}
		return s.forwardCreate(ctx, tag, start, step)
	}
	res, err := s.apply(ctx, "create", command{Op: opCreate, Tag: tag, Start: start, Step: step, MaxTags: s.cfg.MaxTags})
	if err != nil {
		return err
	}
	if e, ok := res.(error); ok {
		return e
	}
	return nil
}

// Snowflake returns count snowflake IDs from this node's worker.
func (s *Server) Snowflake(ctx context.Context, count, maxCount uint64, out []Range) ([]Range, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if s.cfg.Snowflake.Disabled {
		return nil, fmt.Errorf("%w: snowflake mode is disabled on this node", ErrUnavailable)
	}
	if err := checkCount(count, maxCount); err != nil {
		return nil, err
	}
	r, err := s.snow.next(ctx, count, out)
	if err == nil {
		s.m.idsServed.WithLabelValues("snowflake", "snowflake").Add(float64(count))
	}
	return r, err
}

// Decode takes a snowflake ID apart with this node's layout.
func (s *Server) Decode(id uint64) (Decoded, error) {
	return s.cfg.Snowflake.Layout.Decode(id)
}

// proposeSnowflake implements snowProposer.
func (s *Server) proposeSnowflake(ctx context.Context, c command) (workerGrant, error) {
	if !s.node.IsLeader() {
		return s.forwardSnowflake(ctx, c)
	}
	return s.applySnowflake(ctx, c)
}

// applySnowflake commits a snowflake command on the leader, stamped with
// the leader's clock.
func (s *Server) applySnowflake(ctx context.Context, c command) (workerGrant, error) {
	switch c.Op {
	case opSFAcquire, opSFReserve, opSFRelease:
	default:
		return workerGrant{}, invalidf("not a snowflake command: %q", c.Op)
	}
	// The FSM refuses these too; refusing here keeps them out of the log.
	switch {
	case c.Owner == "":
		return workerGrant{}, invalidf("snowflake %s without an owner", c.Op)
	case c.Layout == nil:
		return workerGrant{}, invalidf("snowflake %s without a layout", c.Op)
	case c.Op != opSFRelease && c.TTL <= 0:
		return workerGrant{}, invalidf("snowflake %s: TTL %dms is not positive", c.Op, c.TTL)
	}
	if err := c.Layout.Validate(); err != nil {
		return workerGrant{}, invalidf("snowflake %s: layout: %v", c.Op, err)
	}
	c.Now = s.clock().UnixMilli()
	res, err := s.apply(ctx, c.Op, c)
	if err != nil {
		return workerGrant{}, err
	}
	g, ok := res.(workerGrant)
	if !ok {
		return workerGrant{}, fmt.Errorf("idserver: %s: unexpected FSM result %T", c.Op, res)
	}
	return g, g.err()
}

// conn returns a (shared) gRPC connection to another node.
func (s *Server) conn(addr string) (*grpc.ClientConn, error) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.conns == nil {
		return nil, ErrClosed
	}
	if c := s.conns[addr]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		// A restarted leader is reachable again within a second, not gRPC's
		// default of up to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("idserver: dial leader %s: %w", addr, err)
	}
	s.conns[addr] = c
	return c, nil
}

// leaderConn returns a connection to the leader's gRPC address.
func (s *Server) leaderConn() (*grpc.ClientConn, error) {
	addr := s.node.LeaderMeta()[MetaGRPC]
	if addr == "" {
		return nil, s.notLeader("no leader known")
	}
	if addr == s.selfGRPC {
		// Raft made this node leader; it serves after its Barrier.
		return nil, s.notLeader("this node is the new leader and not serving yet")
	}
	return s.conn(addr)
}

// Status is what /healthz reports.
type Status struct {
	Node            string `json:"node"`
	Leader          bool   `json:"leader"`
	Serving         bool   `json:"serving_segments"`
	LeaderGRPC      string `json:"leader_grpc,omitempty"`
	LeaderHTTP      string `json:"leader_http,omitempty"`
	SnowflakeWorker *int64 `json:"snowflake_worker,omitempty"`
}

// Status reports this node's role.
func (s *Server) Status() Status {
	meta := s.node.LeaderMeta()
	st := Status{
		Node: s.node.ID(), Leader: s.node.IsLeader(), Serving: s.ready.Load(),
		LeaderGRPC: meta[MetaGRPC], LeaderHTTP: meta[MetaHTTP],
	}
	if w, held := s.snow.status(); held {
		v := int64(w)
		st.SnowflakeWorker = &v
	}
	return st
}
