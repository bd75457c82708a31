package seata

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/seata/seata-go/pkg/protocol/branch"

	"github.com/strata-db/strata/txcoord"
)

// TC is the Seata TC as a module of a txcoord node: its state is a Module
// in the node's Raft log, and Run serves seata-go clients on Config.Addr
// for as long as the node runs. Every node of a group runs one.
type TC struct {
	*Module
	cfg Config
	ln  net.Listener
	srv chan *Server
}

// New validates cfg and listens on cfg.Addr, so that a taken port fails
// at start; reg (may be nil) gets the TC's metrics.
func New(cfg Config, reg prometheus.Registerer) (*TC, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := listen(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("seata: listen on %s: %w", cfg.Addr, err)
	}
	return &TC{Module: NewModule(NewMetrics(reg)), cfg: cfg, ln: ln, srv: make(chan *Server, 1)}, nil
}

// listen retries a moment: a restarted node's old listener may still be
// closing.
func listen(addr string) (net.Listener, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var _ txcoord.Runner = (*TC)(nil)
var _ txcoord.Module = (*TC)(nil)

// Run serves clients until ctx ends (the node closes).
func (t *TC) Run(ctx context.Context, p txcoord.Proposer) {
	s := newServer(t.cfg, p, t.Module, t.ln)
	t.srv <- s
	<-ctx.Done()
	s.Close()
}

// Addr is the Seata RPC address.
func (t *TC) Addr() string { return t.ln.Addr().String() }

// Close releases the listener of a TC whose node never ran it.
func (t *TC) Close() error {
	select {
	case s := <-t.srv:
		t.srv <- s
		return nil
	default:
		return t.ln.Close()
	}
}

// ListHandler serves the open global transactions of this node's replica
// as JSON: the admin view behind SHOW STRATA TRANSACTIONS and the console.
func (m *Module) ListHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		type branchView struct {
			ID       int64  `json:"id"`
			Type     string `json:"type"`
			Resource string `json:"resource"`
			LockKey  string `json:"lockKey,omitempty"`
			Status   string `json:"status"`
		}
		type view struct {
			XID      string       `json:"xid"`
			Name     string       `json:"name"`
			Status   string       `json:"status"`
			Begin    time.Time    `json:"begin"`
			Timeout  string       `json:"timeout"`
			Branches []branchView `json:"branches"`
		}
		out := []view{}
		for _, g := range m.List() {
			v := view{XID: g.XID, Name: g.Name, Status: StatusName(g.Status),
				Begin: time.UnixMilli(g.BeginMs).UTC(), Timeout: (time.Duration(g.TimeoutMs) * time.Millisecond).String()}
			for _, b := range g.Branches {
				v.Branches = append(v.Branches, branchView{ID: b.ID, Type: branchTypeName(b.Type), Resource: b.Resource,
					LockKey: b.LockKey, Status: b.Status.String()})
			}
			out = append(out, v)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}

func branchTypeName(t branch.BranchType) string {
	switch t {
	case branch.BranchTypeAT:
		return "AT"
	case branch.BranchTypeTCC:
		return "TCC"
	case branch.BranchTypeSAGA:
		return "SAGA"
	case branch.BranchTypeXA:
		return "XA"
	}
	return fmt.Sprintf("BranchType(%d)", t)
}
