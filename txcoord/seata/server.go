package seata

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seata/seata-go/pkg/protocol/branch"
	"github.com/seata/seata-go/pkg/protocol/message"
	serr "github.com/seata/seata-go/pkg/util/errors"

	"github.com/strata-db/strata/raftstore"
)

// Proposer is what the TC needs from the coordinator's Raft group:
// Propose applies a command on the leader (a follower forwards it) and
// returns the module's answer; IsLeader and Subscribe tell the phase-two
// driver when to run.
type Proposer interface {
	Propose(ctx context.Context, module byte, cmd []byte) ([]byte, error)
	IsLeader() bool
	Barrier(ctx context.Context) error
	Subscribe() (<-chan raftstore.LeadershipEvent, func())
}

// Config configures a Server.
type Config struct {
	// Addr is where seata-go clients connect (their grouplist), and the
	// address written into the XIDs this node begins.
	Addr string
	// ProposeTimeout bounds one Raft round trip of a client request.
	ProposeTimeout time.Duration
	// CommitWait is how long a TM's GlobalCommit or GlobalRollback waits
	// for phase two before it is answered with the current (retrying)
	// status. It must stay under seata-go's 20 s request timeout.
	CommitWait time.Duration
	// BranchTimeout is how long the TC waits for an RM's answer to one
	// BranchCommit or BranchRollback before it sends it again: seata-go
	// v1.2.0 sends no answer at all when the branch fails (#1156).
	BranchTimeout time.Duration
	// RetryBackoff is the first pause between two phase-two rounds of a
	// transaction; it doubles up to MaxRetryBackoff.
	RetryBackoff, MaxRetryBackoff time.Duration
	// ScanInterval is how often the leader looks for expired transactions
	// and for phase-two work it is not doing yet.
	ScanInterval time.Duration
	// DefaultGlobalTimeout is the timeout of a global transaction whose
	// GlobalBegin names none (0 or less): Seata's own default, so such a
	// transaction still ends (rolled back) if its TM never does.
	DefaultGlobalTimeout time.Duration
	Logger               *slog.Logger
}

// DefaultConfig returns the defaults for 127.0.0.1:8091, Seata's port.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8091",
		ProposeTimeout:  5 * time.Second,
		CommitWait:      15 * time.Second,
		BranchTimeout:   3 * time.Second,
		RetryBackoff:    200 * time.Millisecond,
		MaxRetryBackoff: 2 * time.Second,
		ScanInterval:    500 * time.Millisecond,

		DefaultGlobalTimeout: 60 * time.Second,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("seata: Addr %q: %w", c.Addr, err))
	}
	for name, d := range map[string]time.Duration{
		"ProposeTimeout": c.ProposeTimeout, "CommitWait": c.CommitWait, "BranchTimeout": c.BranchTimeout,
		"RetryBackoff": c.RetryBackoff, "MaxRetryBackoff": c.MaxRetryBackoff, "ScanInterval": c.ScanInterval,
		"DefaultGlobalTimeout": c.DefaultGlobalTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("seata: %s must be positive, is %v", name, d))
		}
	}
	if c.CommitWait >= 20*time.Second {
		errs = append(errs, fmt.Errorf("seata: CommitWait %v must be under seata-go's 20s request timeout", c.CommitWait))
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		errs = append(errs, fmt.Errorf("seata: MaxRetryBackoff %v is under RetryBackoff %v", c.MaxRetryBackoff, c.RetryBackoff))
	}
	return errors.Join(errs...)
}

// Server is one node's Seata RPC endpoint. Every node of the group serves
// clients (a seata-go client connects to every address of its grouplist
// and sends each request to any of them); state changes go through the
// Proposer, and the leader drives phase two.
type Server struct {
	cfg Config
	p   Proposer
	mod *Module
	log *slog.Logger
	met *Metrics

	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[*conn]struct{}
	// ids numbers the TC's own requests (phase two) downwards from -1.
	// seata-go keeps one table of pending answers per process, keyed by
	// message ID, and enters every message it sends in it, its answers to
	// the TC included: an answer carrying the ID of one of its own pending
	// requests (which count up from 1) takes that request's place, the
	// request then never completes, and the goroutine that delivers the
	// TC's reply to it blocks for good. Negative IDs stay clear of them.
	ids atomic.Int32
}

func newServer(cfg Config, p Proposer, mod *Module, ln net.Listener) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, p: p, mod: mod, log: cfg.Logger.With("component", "seata"), met: mod.metrics,
		ln: ln, ctx: ctx, cancel: cancel, conns: map[*conn]struct{}{},
	}
	s.wg.Add(2)
	go s.accept()
	go s.drive()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.cfg.Addr }

// Close stops listening, closes every client connection and stops the
// phase-two driver. Unfinished phase two resumes on the next leader.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// maxInFlight bounds the requests of one connection being answered at
// once.
const maxInFlight = 1024

// conn is one client connection.
type conn struct {
	nc  net.Conn
	wmu sync.Mutex
	buf []byte

	mu        sync.Mutex
	resources map[string]bool
	app       string
}

func (c *conn) write(f Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := appendFrame(c.buf[:0], f)
	if err != nil {
		return err
	}
	c.buf = b
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = c.nc.Write(b)
	return err
}

func (c *conn) has(resource string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resources[resource]
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("accept", "err", err)
			}
			return
		}
		c := &conn{nc: nc, resources: map[string]bool{}}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		if s.met != nil {
			s.met.conns.Inc()
		}
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c *conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.nc.Close()
		if s.met != nil {
			s.met.conns.Dec()
		}
	}()
	r := bufio.NewReaderSize(c.nc, 16<<10)
	// Requests are answered concurrently, but no more than maxInFlight of
	// one connection at once: past that the reader waits, so a client
	// pipelining without end cannot make the TC start a goroutine per frame
	// (each waits up to ProposeTimeout). Responses to phase two are not
	// counted; they are what lets waiting requests finish.
	sem := make(chan struct{}, maxInFlight)
	for {
		f, err := readFrame(r)
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) && err.Error() != "EOF" {
				s.log.Info("connection closed", "remote", c.nc.RemoteAddr(), "err", err)
			}
			return
		}
		switch f.Type {
		case message.GettyRequestTypeHeartbeatRequest:
			c.write(Frame{Type: message.GettyRequestTypeHeartbeatResponse, ID: f.ID})
			continue
		case message.GettyRequestTypeHeartbeatResponse:
			continue
		}
		if f.Body == nil {
			s.log.Warn("message not understood", "remote", c.nc.RemoteAddr(), "type", f.Type, "id", f.ID)
			continue
		}
		resp := f.Type == message.GettyRequestTypeResponse
		if !resp {
			select {
			case sem <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if !resp {
				defer func() { <-sem }()
			}
			s.handle(c, f)
		}()
	}
}

// handle answers one message. Requests get a response even when they came
// one-way: seata-go sends RegisterTM one-way and still waits for an answer.
func (s *Server) handle(c *conn, f Frame) {
	if f.Type == message.GettyRequestTypeResponse {
		s.onResponse(f.Body)
		return
	}
	start := time.Now()
	resp := s.answer(c, f.Body)
	if resp == nil {
		return
	}
	if err := c.write(Frame{Type: message.GettyRequestTypeResponse, ID: f.ID, Body: resp}); err != nil {
		s.log.Info("write response", "remote", c.nc.RemoteAddr(), "err", err)
		return
	}
	if d := time.Since(start); d > time.Second {
		s.log.Info("slow answer", "remote", c.nc.RemoteAddr(), "id", f.ID, "type", fmt.Sprintf("%T", f.Body), "took", d)
	}
	s.log.Debug("answered", "remote", c.nc.RemoteAddr(), "id", f.ID, "type", fmt.Sprintf("%T", f.Body), "took", time.Since(start))
}

func (s *Server) answer(c *conn, body any) message.MessageTypeAware {
	ok := message.AbstractResultMessage{ResultCode: message.ResultCodeSuccess}
	switch req := body.(type) {
	case message.RegisterTMRequest:
		c.mu.Lock()
		c.app = req.ApplicationId
		c.mu.Unlock()
		return message.RegisterTMResponse{AbstractIdentifyResponse: message.AbstractIdentifyResponse{
			AbstractResultMessage: ok, Version: req.Version, Identified: true}}
	case message.RegisterRMRequest:
		c.mu.Lock()
		c.app = req.ApplicationId
		for _, r := range strings.Split(req.ResourceIds, ",") {
			if r != "" {
				c.resources[r] = true
			}
		}
		c.mu.Unlock()
		return message.RegisterRMResponse{AbstractIdentifyResponse: message.AbstractIdentifyResponse{
			AbstractResultMessage: ok, Version: req.Version, Identified: true}}
	case message.GlobalBeginRequest:
		timeout := req.Timeout
		if timeout <= 0 {
			timeout = s.cfg.DefaultGlobalTimeout
		}
		r := s.propose(Command{Op: OpBegin, Name: req.TransactionName, TimeoutMs: timeout.Milliseconds(),
			NowMs: time.Now().UnixMilli(), Addr: s.cfg.Addr})
		return message.GlobalBeginResponse{AbstractTransactionResponse: txResp(r), Xid: r.XID}
	case message.GlobalCommitRequest:
		r := s.propose(Command{Op: OpCommit, XID: req.Xid})
		st := s.awaitEnd(req.Xid, r)
		return message.GlobalCommitResponse{AbstractGlobalEndResponse: endResp(r, st)}
	case message.GlobalRollbackRequest:
		r := s.propose(Command{Op: OpRollback, XID: req.Xid})
		st := s.awaitEnd(req.Xid, r)
		return message.GlobalRollbackResponse{AbstractGlobalEndResponse: endResp(r, st)}
	case message.GlobalStatusRequest:
		r := s.propose(Command{Op: OpStatus, XID: req.Xid})
		return message.GlobalStatusResponse{AbstractGlobalEndResponse: endResp(r, r.Status)}
	case message.GlobalReportRequest:
		r := s.propose(Command{Op: OpGlobalRep, XID: req.Xid, Status: req.GlobalStatus})
		return message.GlobalReportResponse{AbstractGlobalEndResponse: endResp(r, r.Status)}
	case message.BranchRegisterRequest:
		// The RM that registers a branch listens on this connection: phase
		// two for its resource can come this way.
		c.mu.Lock()
		c.resources[req.ResourceId] = true
		c.mu.Unlock()
		r := s.propose(Command{Op: OpRegister, XID: req.Xid, Type: req.BranchType, Resource: req.ResourceId,
			LockKey: req.LockKey, AppData: req.ApplicationData, Client: s.cfg.Addr + "|" + c.nc.RemoteAddr().String()})
		return message.BranchRegisterResponse{AbstractTransactionResponse: txResp(r), BranchId: r.BranchID}
	case message.BranchReportRequest:
		r := s.propose(Command{Op: OpReport, XID: req.Xid, BranchID: req.BranchId, Branch: req.Status,
			AppData: req.ApplicationData})
		return message.BranchReportResponse{AbstractTransactionResponse: txResp(r)}
	case message.GlobalLockQueryRequest:
		r := s.propose(Command{Op: OpLockQuery, XID: req.Xid, Resource: req.ResourceId, LockKey: req.LockKey})
		return message.GlobalLockQueryResponse{AbstractTransactionResponse: txResp(r), Lockable: r.Lockable}
	}
	s.log.Warn("request not served", "type", fmt.Sprintf("%T", body))
	return nil
}

// onResponse records an RM's answer to phase two. seata-go sends it on any
// of its connections, so it may reach a node that did not send the
// request: it goes through Raft, where the driver waits for it.
func (s *Server) onResponse(body any) {
	var r message.AbstractBranchEndResponse
	switch m := body.(type) {
	case message.BranchCommitResponse:
		r = m.AbstractBranchEndResponse
	case message.BranchRollbackResponse:
		r = m.AbstractBranchEndResponse
	default:
		return
	}
	if r.ResultCode != message.ResultCodeSuccess && r.BranchStatus == branch.BranchStatusUnknown {
		return
	}
	s.propose(Command{Op: OpBranchEnd, XID: r.Xid, BranchID: r.BranchId, Branch: r.BranchStatus})
}

func txResp(r Result) message.AbstractTransactionResponse {
	if !r.Refused() {
		return message.AbstractTransactionResponse{AbstractResultMessage: message.AbstractResultMessage{ResultCode: message.ResultCodeSuccess}}
	}
	return message.AbstractTransactionResponse{
		AbstractResultMessage: message.AbstractResultMessage{ResultCode: message.ResultCodeFailed, Msg: r.Msg},
		TransactionErrorCode:  r.Code,
	}
}

func endResp(r Result, st message.GlobalStatus) message.AbstractGlobalEndResponse {
	return message.AbstractGlobalEndResponse{AbstractTransactionResponse: txResp(r), GlobalStatus: st}
}

// propose runs one command through Raft. A failure to propose (no leader,
// timeout) is answered as a refusal the client may retry.
func (s *Server) propose(c Command) Result {
	cmd, err := json.Marshal(c)
	if err != nil {
		return Result{Code: serr.TransactionErrorCodeUnknown, Msg: err.Error()}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ProposeTimeout)
	defer cancel()
	out, err := s.p.Propose(ctx, ModuleID, cmd)
	if err != nil {
		return Result{Code: serr.TransactionErrorCodeIO, Msg: "seata: coordinator: " + err.Error()}
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		return Result{Code: serr.TransactionErrorCodeUnknown, Msg: "seata: bad answer: " + err.Error()}
	}
	return r
}

// awaitEnd waits, up to CommitWait, for the end of phase two of a
// transaction that a commit or rollback moved into it, on this node's
// replica (the leader drives it). An AT-only commit is answered Committed
// at once, as Seata's server does.
func (s *Server) awaitEnd(xid string, r Result) message.GlobalStatus {
	if r.Refused() || !inPhaseTwo(r.Status) {
		return r.Status
	}
	if r.Status == message.GlobalStatusAsyncCommitting {
		return message.GlobalStatusCommitted
	}
	deadline := time.NewTimer(s.cfg.CommitWait)
	defer deadline.Stop()
	for {
		ch := s.mod.watch()
		g, open, end := s.mod.global(xid)
		if !open {
			if end != message.GlobalStatusFinished {
				return end
			}
			// This replica may lag behind the leader that applied the
			// commit: ask the leader.
			r := s.propose(Command{Op: OpStatus, XID: xid})
			if r.Refused() || !inPhaseTwo(r.Status) {
				return r.Status
			}
			g.Status = r.Status
		}
		if g.Status == message.GlobalStatusAsyncCommitting {
			return message.GlobalStatusCommitted
		}
		select {
		case <-ch:
		case <-deadline.C:
			return g.Status
		case <-s.ctx.Done():
			return g.Status
		}
	}
}
