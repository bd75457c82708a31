package txcoord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-db/strata/raftstore"
	"github.com/strata-db/strata/txcoord/txpb"
)

// Node is one running coordinator: its Raft member, the modules' state
// machine and the gRPC server. It is the modules' Proposer.
type Node struct {
	cfg    Config
	logger *slog.Logger
	// Raft is the node's Raft member (for membership, leader and tests).
	Raft *raftstore.Node
	fsm  *fsm
	// GRPCAddr is the bound gRPC address.
	GRPCAddr string
	grpc     *grpc.Server
	ownsRaft bool
	metrics  *nodeMetrics

	ctx    context.Context // ends when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup // serve and the modules' Run

	connsMu sync.Mutex
	conns   map[string]*grpc.ClientConn

	closeOnce sync.Once
	closeErr  error
}

var _ Proposer = (*Node)(nil)

// Start listens on GRPCAddr, opens the Raft node (restoring the modules'
// state from DataDir), starts serving and then each module's Run.
func Start(cfg Config) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f, err := newFSM(cfg.Modules)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("txcoord: listen gRPC on %s: %w", cfg.GRPCAddr, err)
	}
	rc := cfg.raftConfig()
	rc.Meta = maps.Clone(rc.Meta)
	if rc.Meta == nil {
		rc.Meta = map[string]string{}
	}
	rc.Meta[MetaGRPC] = ln.Addr().String()
	rn, err := raftstore.Open(rc, f)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return newNode(cfg, rn, f, ln, true), nil
}

// newNode serves on ln around an open Raft node whose FSM is f.
func newNode(cfg Config, rn *raftstore.Node, f *fsm, ln net.Listener, ownsRaft bool) *Node {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	n := &Node{
		cfg:      cfg,
		logger:   logger.With("txcoord_node", cfg.NodeID),
		Raft:     rn,
		fsm:      f,
		GRPCAddr: ln.Addr().String(),
		grpc:     grpc.NewServer(),
		ownsRaft: ownsRaft,
		metrics:  newNodeMetrics(cfg.Registerer),
		conns:    map[string]*grpc.ClientConn{},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	txpb.RegisterInternalServer(n.grpc, &internalServer{n: n})
	for _, m := range cfg.Modules {
		if s, ok := m.(GRPCService); ok {
			s.RegisterGRPC(n.grpc)
		}
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.logger.Error("txcoord: gRPC server stopped", "err", err)
		}
	}()
	for _, m := range cfg.Modules {
		if r, ok := m.(Runner); ok {
			n.wg.Add(1)
			go func() { defer n.wg.Done(); r.Run(n.ctx, n) }()
		}
	}
	return n
}

// IsLeader reports whether this node believes it leads now.
func (n *Node) IsLeader() bool { return n.Raft.IsLeader() }

// Barrier waits until every entry committed before it is applied here.
func (n *Node) Barrier(ctx context.Context) error { return n.Raft.Barrier(ctx) }

// Subscribe delivers this node's leadership changes (raftstore's).
func (n *Node) Subscribe() (<-chan raftstore.LeadershipEvent, func()) { return n.Raft.Subscribe() }

// LeaderGRPC returns the gRPC address of the leader this node knows of; ""
// when none.
func (n *Node) LeaderGRPC() string { return n.Raft.LeaderMeta()[MetaGRPC] }

// Propose applies cmd to module's state through Raft; see Proposer.
func (n *Node) Propose(ctx context.Context, module byte, cmd []byte) ([]byte, error) {
	if _, ok := n.fsm.modules[module]; !ok {
		return nil, fmt.Errorf("%w %d", ErrUnknownModule, module)
	}
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ProposeTimeout)
		defer cancel()
	}
	start := time.Now()
	entry := make([]byte, 1+len(cmd))
	entry[0] = module
	copy(entry[1:], cmd)
	backoff := 5 * time.Millisecond
	for {
		var res []byte
		var err error
		var retry bool
		if n.Raft.IsLeader() {
			res, err, retry = n.applyLocal(ctx, entry)
		} else {
			res, err, retry = n.forward(ctx, module, cmd)
		}
		if !retry {
			n.metrics.observe(module, start, err)
			return res, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			err = fmt.Errorf("txcoord: propose to module %d: no leader took it before %w (last: %w)", module, ctx.Err(), err)
			n.metrics.observe(module, start, err)
			return nil, err
		case <-n.ctx.Done():
			t.Stop()
			return nil, ErrClosed
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// applyLocal applies entry on this node as leader. retry is true when the
// entry was certainly not applied and another attempt may succeed.
func (n *Node) applyLocal(ctx context.Context, entry []byte) (_ []byte, _ error, retry bool) {
	r, err := n.Raft.Apply(ctx, entry)
	switch {
	case err == nil:
		ar, _ := r.(applyResult)
		if ar.refused != nil {
			return ar.data, ar.refused, false
		}
		return ar.data, nil, false
	case errors.Is(err, raftstore.ErrLeadershipLost):
		return nil, fmt.Errorf("%w: %w", ErrUncertain, err), false
	case errors.Is(err, raftstore.ErrNotLeader):
		return nil, err, true
	default: // a timeout or a shutdown while waiting: it may still commit
		return nil, fmt.Errorf("%w: %w", ErrUncertain, err), false
	}
}

// forward sends the command to the leader's Internal.Propose.
func (n *Node) forward(ctx context.Context, module byte, cmd []byte) (_ []byte, _ error, retry bool) {
	addr := n.LeaderGRPC()
	if addr == "" || addr == n.GRPCAddr {
		return nil, errors.New("txcoord: no leader known"), true
	}
	conn, err := n.conn(addr)
	if err != nil {
		return nil, err, true
	}
	// Only a connection that is up can carry the request: until then
	// nothing was sent and a retry (perhaps to a new leader) is safe.
	if err := waitReady(ctx, conn, time.Second); err != nil {
		return nil, fmt.Errorf("txcoord: leader %s: %w", addr, err), true
	}
	resp, err := txpb.NewInternalClient(conn).Propose(ctx, &txpb.ProposeRequest{Module: uint32(module), Command: cmd})
	if err != nil {
		switch status.Code(err) {
		case codes.FailedPrecondition: // not the leader: nothing applied
			return nil, fmt.Errorf("txcoord: %s: %w", addr, err), true
		case codes.InvalidArgument:
			return nil, fmt.Errorf("txcoord: leader %s: %w", addr, err), false
		}
		return nil, fmt.Errorf("%w: forwarded to %s: %w", ErrUncertain, addr, err), false
	}
	if resp.GetRefused() != "" {
		return resp.GetResult(), &RefusedError{Module: module, Msg: resp.GetRefused()}, false
	}
	return resp.GetResult(), nil, false
}

func waitReady(ctx context.Context, conn *grpc.ClientConn, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure, connectivity.Shutdown:
			return fmt.Errorf("connection %s", s)
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("connection %s: %w", s, ctx.Err())
		}
	}
}

func (n *Node) conn(addr string) (*grpc.ClientConn, error) {
	n.connsMu.Lock()
	defer n.connsMu.Unlock()
	if c, ok := n.conns[addr]; ok {
		return c, nil
	}
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("txcoord: dial leader %s: %w", addr, err)
	}
	n.conns[addr] = c
	return c, nil
}

// Close stops the modules' Run, the gRPC server and then the Raft node,
// which hands leadership over if it leads. Idempotent.
func (n *Node) Close() error {
	if n == nil {
		return nil
	}
	n.closeOnce.Do(func() { n.closeErr = n.stop(true) })
	return n.closeErr
}

// stop ends everything but Raft (closed here only when graceful and owned).
func (n *Node) stop(graceful bool) error {
	n.cancel()
	if graceful {
		done := make(chan struct{})
		go func() { n.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			n.grpc.Stop()
		}
	} else {
		n.grpc.Stop()
	}
	n.wg.Wait()
	n.connsMu.Lock()
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = map[string]*grpc.ClientConn{}
	n.connsMu.Unlock()
	if graceful && n.ownsRaft {
		return n.Raft.Close()
	}
	return nil
}

// internalServer serves txpb.Internal: commands forwarded by followers.
type internalServer struct {
	txpb.UnimplementedInternalServer
	n *Node
}

func (s *internalServer) Propose(ctx context.Context, req *txpb.ProposeRequest) (*txpb.ProposeResponse, error) {
	n := s.n
	if req.GetModule() == 0 || req.GetModule() > 255 {
		return nil, status.Errorf(codes.InvalidArgument, "module %d is not a module ID (1..255)", req.GetModule())
	}
	module := byte(req.GetModule())
	if _, ok := n.fsm.modules[module]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "no module %d on this node", module)
	}
	if !n.Raft.IsLeader() {
		return nil, status.Error(codes.FailedPrecondition, "not the leader")
	}
	entry := make([]byte, 1+len(req.GetCommand()))
	entry[0] = module
	copy(entry[1:], req.GetCommand())
	start := time.Now()
	res, err, retry := n.applyLocal(ctx, entry)
	n.metrics.observe(module, start, err)
	var ref *RefusedError
	switch {
	case retry:
		return nil, status.Error(codes.FailedPrecondition, "not the leader")
	case errors.As(err, &ref):
		return &txpb.ProposeResponse{Result: res, Refused: ref.Msg}, nil
	case err != nil:
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &txpb.ProposeResponse{Result: res}, nil
}

// nodeMetrics are the node's own: proposals by module and outcome, and
// their latency.
type nodeMetrics struct {
	proposals *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

func newNodeMetrics(reg prometheus.Registerer) *nodeMetrics {
	m := &nodeMetrics{
		proposals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_txcoord_proposals_total",
			Help: "Commands proposed through this node, by module and outcome (ok, refused, uncertain, error).",
		}, []string{"module", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_txcoord_propose_seconds",
			Help:    "Time from Propose to the module's answer, by module.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}, []string{"module"}),
	}
	if reg != nil {
		reg.MustRegister(m.proposals, m.latency)
	}
	return m
}

func (m *nodeMetrics) observe(module byte, start time.Time, err error) {
	mod := fmt.Sprint(module)
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrRefused):
		outcome = "refused"
	case errors.Is(err, ErrUncertain):
		outcome = "uncertain"
	default:
		outcome = "error"
	}
	m.proposals.WithLabelValues(mod, outcome).Inc()
	m.latency.WithLabelValues(mod).Observe(time.Since(start).Seconds())
}
