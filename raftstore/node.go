package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Node is one member of a Raft group. Its methods are safe for concurrent
// use; after Close (and on a nil *Node) they fail with ErrShutdown or report
// "no leader".
type Node struct {
	cfg    Config
	logger *slog.Logger

	raft   *raft.Raft
	fsm    *fsmAdapter
	store  logStore
	stream *streamLayer

	events    *broadcaster
	obsCh     chan raft.Observation
	observer  *raft.Observer
	leaderMu  sync.Mutex
	leaderChg chan struct{} // closed and replaced whenever the known leader changes
	kick      chan struct{} // capacity 1: wakes the member loop

	ctx       context.Context // ends when Close starts
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open starts a node: it opens (or creates) the data directory, listens on
// BindAddr, restores the FSM from the latest snapshot and log, and bootstraps
// or joins as configured. It returns without waiting for a leader; see
// WaitLeader.
func Open(cfg Config, fsm FSM) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("raftstore: listen on BindAddr %s: %w", cfg.BindAddr, err)
	}
	return open(cfg, fsm, ln)
}

// owned copies what Config shares with its caller: the node reads Meta,
// Join and Peers for as long as it runs, and the caller may reuse them.
func (c Config) owned() Config {
	c.Meta = maps.Clone(c.Meta)
	c.Join = slices.Clone(c.Join)
	c.Peers = slices.Clone(c.Peers)
	return c
}

// open starts a node on a listener the caller opened (Open, or Cluster,
// which needs every address before any node starts). It owns ln from here.
func open(cfg Config, userFSM FSM, ln net.Listener) (_ *Node, err error) {
	if userFSM == nil {
		ln.Close()
		return nil, errors.New("raftstore: Open: FSM is nil")
	}
	cfg = cfg.owned()
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("raft_node", cfg.NodeID)

	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	cleanup = append(cleanup, func() { ln.Close() })

	advertise := ln.Addr()
	if cfg.AdvertiseAddr != "" {
		advertise = advertiseAddr(cfg.AdvertiseAddr)
	}
	for _, p := range cfg.Peers {
		if p.ID == cfg.NodeID && p.Addr != advertise.String() {
			return nil, fmt.Errorf("raftstore: config: Peers: this node's Addr %q is not its advertised address %q", p.Addr, advertise)
		}
	}

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("raftstore: DataDir: %w", err)
	}
	store, err := openLogStore(cfg, logger)
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { store.Close() })
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		return nil, fmt.Errorf("raftstore: log cache: %w", err)
	}
	hlog := newHclogAdapter(logger, cfg.RaftLogLevel)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog)
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshot store: %w", err)
	}

	n := &Node{
		cfg:       cfg,
		logger:    logger,
		fsm:       newFSMAdapter(userFSM),
		store:     store,
		stream:    newStreamLayer(ln, advertise, logger),
		events:    newBroadcaster(),
		leaderChg: make(chan struct{}),
		kick:      make(chan struct{}, 1),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	cleanup = append(cleanup, n.cancel)
	n.stream.handleRPC = n.serveRPC
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hlog,
	})
	cleanup = append(cleanup, func() { trans.Close(); n.stream.wait() })
	n.stream.serve()

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.MaxAppendEntries = 256
	// With a buffered apply channel an Apply racing Shutdown can be queued
	// and never answered; the leader loop groups commits by itself anyway.
	rc.BatchApplyCh = false
	// A removed node stays up (answering "not leader") until its owner
	// closes it, rather than dying under the consumer.
	rc.ShutdownOnRemove = false
	rc.Logger = hlog
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raftstore: config: %w", err)
	}

	existing, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return nil, fmt.Errorf("raftstore: read state in %s: %w", cfg.DataDir, err)
	}
	if cfg.Bootstrap && !existing {
		peers := cfg.Peers
		if len(peers) == 0 {
			peers = []Peer{{ID: cfg.NodeID, Addr: advertise.String()}}
		}
		var conf raft.Configuration
		for _, p := range peers {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if err := raft.BootstrapCluster(rc, logs, store, snaps, trans, conf); err != nil {
			return nil, fmt.Errorf("raftstore: bootstrap: %w", err)
		}
	}

	r, err := raft.NewRaft(rc, n.fsm, logs, store, snaps, trans)
	if err != nil {
		if rerr := n.fsm.lastRestoreErr(); rerr != nil {
			return nil, fmt.Errorf("raftstore: start raft from %s: %w (last snapshot restore: %w)", cfg.DataDir, err, rerr)
		}
		return nil, fmt.Errorf("raftstore: start raft from %s: %w", cfg.DataDir, err)
	}
	n.raft = r

	// A blocking observer never loses a transition; the goroutine draining it
	// only does bookkeeping, so Raft waits microseconds at most.
	n.obsCh = make(chan raft.Observation, 64)
	n.observer = raft.NewObserver(n.obsCh, true, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.LeaderObservation:
			return true
		}
		return false
	})
	r.RegisterObserver(n.observer)
	n.wg.Add(2)
	go n.observe()
	go n.memberLoop()
	return n, nil
}

// observe turns Raft's observations into leadership events and leader-change
// wake-ups. It must not wait on Raft's main loop (Apply, Barrier,
// VerifyLeader, ...): Raft may be blocked sending it the next observation.
func (n *Node) observe() {
	defer n.wg.Done()
	// Catch up with anything that happened before the observer was registered.
	n.events.set(n.raft.State() == raft.Leader, n.raft.CurrentTerm())
	n.leaderChanged()
	for o := range n.obsCh {
		switch s := o.Data.(type) {
		case raft.RaftState:
			n.events.set(s == raft.Leader, n.raft.CurrentTerm())
		case raft.LeaderObservation:
			n.leaderChanged()
		}
		n.kickMemberLoop()
	}
}

func (n *Node) leaderChanged() {
	n.leaderMu.Lock()
	close(n.leaderChg)
	n.leaderChg = make(chan struct{})
	n.leaderMu.Unlock()
}

func (n *Node) leaderWatch() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderChg
}

// closed reports whether n is nil or Close has begun.
func (n *Node) closed() bool { return n == nil || n.ctx.Err() != nil }

func (n *Node) kickMemberLoop() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Apply proposes cmd and waits until it is committed and applied on this
// node, returning the FSM's result. On a follower it fails with a
// *NotLeaderError. Without a deadline in ctx, ApplyTimeout applies. On
// ErrTimeout, context cancellation, ErrShutdown from a Close that began
// while it waited, or a NotLeaderError with MaybeCommitted, the command may
// still commit.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	if n.closed() {
		return nil, ErrShutdown
	}
	ctx, cancel := n.opContext(ctx)
	defer cancel()
	f := n.raft.Apply(encodeUser(cmd), enqueueTimeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		return nil, n.translate("apply", err)
	}
	return f.Response(), nil
}

// applyInternal commits one of this package's own entries.
func (n *Node) applyInternal(ctx context.Context, data []byte) error {
	if n.closed() {
		return ErrShutdown
	}
	ctx, cancel := n.opContext(ctx)
	defer cancel()
	f := n.raft.Apply(data, enqueueTimeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		return n.translate("apply", err)
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// Barrier waits until every entry committed before it is applied to this
// node's FSM. A new leader calls it before serving reads from its FSM.
func (n *Node) Barrier(ctx context.Context) error {
	if n.closed() {
		return ErrShutdown
	}
	ctx, cancel := n.opContext(ctx)
	defer cancel()
	return n.translate("barrier", noCommand(n.wait(ctx, n.raft.Barrier(enqueueTimeout(ctx)))))
}

// VerifyLeader confirms with a quorum that this node is still the leader;
// otherwise it fails with a *NotLeaderError.
func (n *Node) VerifyLeader(ctx context.Context) error {
	if n.closed() {
		return ErrShutdown
	}
	ctx, cancel := n.opContext(ctx)
	defer cancel()
	return n.translate("verify leader", noCommand(n.wait(ctx, n.raft.VerifyLeader())))
}

// noCommand turns Raft's "leadership lost while committing" into plain "not
// the leader" for operations that carry no command of the caller's: there
// is no outcome to be unsure about, and MaybeCommitted would say there is.
func noCommand(err error) error {
	if errors.Is(err, raft.ErrLeadershipLost) {
		return raft.ErrNotLeader
	}
	return err
}

// IsLeader reports whether this node believes it is the leader now. Only
// VerifyLeader or a committed Apply prove it.
func (n *Node) IsLeader() bool {
	return n != nil && n.raft.State() == raft.Leader
}

// Leader returns the leader this node knows of; "" when none.
func (n *Node) Leader() (id, addr string) {
	if n == nil {
		return "", ""
	}
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// LeaderMeta returns the current leader's replicated Meta; nil when the
// leader or its meta is not known yet.
func (n *Node) LeaderMeta() map[string]string {
	id, _ := n.Leader()
	if id == "" {
		return nil
	}
	return n.fsm.metaOf(id)
}

// WaitLeader waits until this node knows of a leader and returns its ID.
func (n *Node) WaitLeader(ctx context.Context) (string, error) {
	if n == nil {
		return "", ErrShutdown
	}
	for {
		watch := n.leaderWatch()
		if id, _ := n.Leader(); id != "" {
			return id, nil
		}
		select {
		case <-watch:
		case <-ctx.Done():
			return "", fmt.Errorf("raftstore: wait for leader: %w: %w", ErrTimeout, ctx.Err())
		case <-n.ctx.Done():
			return "", ErrShutdown
		}
	}
}

// Subscribe delivers this node's leadership changes: first the current
// state, then every transition, in order and without loss, however slowly
// the channel is read. The channel is closed by cancel or by Close (after
// the final "not leader" if this node was leading).
func (n *Node) Subscribe() (<-chan LeadershipEvent, func()) {
	if n == nil {
		ch := make(chan LeadershipEvent)
		close(ch)
		return ch, func() {}
	}
	return n.events.subscribe()
}

// Term returns the current Raft term.
func (n *Node) Term() uint64 {
	if n == nil {
		return 0
	}
	return n.raft.CurrentTerm()
}

// ID returns this node's ID.
func (n *Node) ID() string {
	if n == nil {
		return ""
	}
	return n.cfg.NodeID
}

// Addr returns the Raft address this node advertises (the bound address
// unless AdvertiseAddr is set).
func (n *Node) Addr() string {
	if n == nil {
		return ""
	}
	return n.stream.Addr().String()
}

// Close shuts the node down: a leader first hands leadership to another
// voter so the group does not wait out an election timeout, then Raft stops,
// the transport and the data files close, every subscription channel closes
// and every goroutine ends. Idempotent and nil-safe.
func (n *Node) Close() error {
	if n == nil {
		return nil
	}
	n.closeOnce.Do(func() { n.closeErr = n.shutdown(true) })
	return n.closeErr
}

// kill stops the node without handing leadership over, and without a word
// on the network once it starts: as near a crash as a process can do to
// itself.
func (n *Node) kill() {
	n.stream.setIsolated(true)
	n.closeOnce.Do(func() { n.closeErr = n.shutdown(false) })
}

func (n *Node) shutdown(handOver bool) error {
	n.cancel()
	if handOver && n.IsLeader() && n.otherVoters() {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.logger.Warn("raftstore: leadership transfer before close failed", "err", err)
		}
	}
	var errs []error
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raftstore: shutdown raft: %w", err))
	}
	// Raft has stopped, so it sends no more observations.
	n.raft.DeregisterObserver(n.observer)
	close(n.obsCh)
	if err := n.stream.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("raftstore: close transport: %w", err))
	}
	n.stream.wait()
	n.wg.Wait()
	n.events.close()
	if err := n.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("raftstore: close %s: %w", n.cfg.DataDir, err))
	}
	return errors.Join(errs...)
}

func (n *Node) otherVoters() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != raft.ServerID(n.cfg.NodeID) {
			return true
		}
	}
	return false
}

// opContext applies ApplyTimeout when ctx has no deadline, and ends the
// operation when the node closes.
func (n *Node) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	stop := context.AfterFunc(n.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// enqueueTimeout is how long Raft may take to accept an operation: the
// rest of ctx's time. (Raft's own timeout covers only enqueueing; wait
// covers the commit.)
func enqueueTimeout(ctx context.Context) time.Duration {
	d, _ := ctx.Deadline()
	return max(time.Until(d), time.Millisecond)
}

// wait waits for a Raft future or the end of ctx, whichever comes first.
// Raft's futures cannot be selected on, so a goroutine waits for it; it ends
// when Raft answers. Raft answers every request it accepts before shutdown,
// except one that races Shutdown into a buffered channel (VerifyLeader's):
// callers check closed() first, which leaves only that narrow race.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if n.ctx.Err() != nil {
			return raft.ErrRaftShutdown
		}
		return ctx.Err()
	}
}
