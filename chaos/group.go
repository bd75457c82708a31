package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// GroupConfig describes a Raft group of one strata subcommand (`strata
// idserver`, `strata txcoord`): N nodes on free loopback ports, each
// started with --id, --data, --raft-addr, --http-addr, --grpc-addr,
// --bootstrap and --peers naming every node.
type GroupConfig struct {
	// Binary is the strata binary.
	Binary string
	// Command is the subcommand: idserver or txcoord.
	Command string
	// Nodes is the group's size (1, 3 or 5 in practice).
	Nodes int
	// IDPrefix names the nodes IDPrefix1 … IDPrefixN. Default: the
	// command's first two letters (id1, tx1).
	IDPrefix string
	// Dir holds each node's data (Dir/ID) and log (Dir/ID.log).
	Dir string
	// Args are more flags, given to every node (e.g. --seata-addr off).
	Args []string
	// Env is added to each node's environment.
	Env []string
	// ReadyTimeout bounds the wait for a leader. Default 30s.
	ReadyTimeout time.Duration
}

// Validate reports what is missing.
func (c GroupConfig) Validate() error {
	switch {
	case c.Binary == "":
		return errors.New("chaos: group: Binary is required")
	case c.Command == "":
		return errors.New("chaos: group: Command is required")
	case c.Nodes < 1:
		return fmt.Errorf("chaos: group: %d nodes", c.Nodes)
	case c.Dir == "":
		return errors.New("chaos: group: Dir is required")
	}
	return nil
}

// GroupNode is one process of a group.
type GroupNode struct {
	ID               string
	Raft, HTTP, GRPC string // addresses
	LogPath          string // its stdout and stderr
	p                *proc
}

// Pid is the node's process id (0 before it started).
func (n *GroupNode) Pid() int { return n.p.pid() }

// Running says whether the process is alive.
func (n *GroupNode) Running() bool { return n.p.running() }

// Kill ends the node with SIGKILL and waits until it is gone.
func (n *GroupNode) Kill() { n.p.kill() }

// Stop ends the node with SIGTERM (SIGKILL after 10s).
func (n *GroupNode) Stop() { n.p.stop() }

// Start starts the node again (same flags, same data) after Kill or Stop.
func (n *GroupNode) Start() error { return n.p.start() }

// Group is a running group, as StartGroup left it.
type Group struct {
	Nodes []*GroupNode
}

// StartGroup starts a group and waits until a node says it leads (its
// /healthz: "leader": true, and for the ID service "serving_segments":
// true). The processes die with the caller (Pdeathsig); Close ends them.
func StartGroup(ctx context.Context, cfg GroupConfig) (*Group, error) {
	return startGroup(ctx, cfg, nil)
}

func startGroup(ctx context.Context, cfg GroupConfig, j *journal) (_ *Group, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: group: %w", err)
	}
	prefix := cfg.IDPrefix
	if prefix == "" {
		prefix = cfg.Command[:min(2, len(cfg.Command))]
	}
	g := &Group{}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	var peers []string
	for i := 1; i <= cfg.Nodes; i++ {
		n := &GroupNode{ID: fmt.Sprintf("%s%d", prefix, i)}
		for _, a := range []*string{&n.Raft, &n.HTTP, &n.GRPC} {
			if *a, err = freeAddr(); err != nil {
				return nil, err
			}
		}
		n.LogPath = filepath.Join(cfg.Dir, n.ID+".log")
		g.Nodes = append(g.Nodes, n)
		peers = append(peers, n.ID+"="+n.Raft)
	}
	for _, n := range g.Nodes {
		args := []string{cfg.Binary, cfg.Command, "--log-level", "warn", "--id", n.ID, "--data", filepath.Join(cfg.Dir, n.ID),
			"--raft-addr", n.Raft, "--http-addr", n.HTTP, "--grpc-addr", n.GRPC,
			"--bootstrap", "--peers", strings.Join(peers, ",")}
		n.p = &proc{name: cfg.Command + ":" + n.ID, addr: n.GRPC, j: j, env: cfg.Env, logPath: n.LogPath,
			args: append(args, cfg.Args...)}
		if err := n.p.start(); err != nil {
			return nil, err
		}
	}
	wait := cfg.ReadyTimeout
	if wait <= 0 {
		wait = 30 * time.Second
	}
	for deadline := time.Now().Add(wait); time.Now().Before(deadline) && ctx.Err() == nil; {
		if i, err := g.Leader(ctx); err == nil && i >= 0 {
			return g, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("chaos: the %s group elected no leader in %v (logs in %s)", cfg.Command, wait, cfg.Dir)
}

// nodeStatus is the part of a node's /healthz the group reads.
type nodeStatus struct {
	Leader bool `json:"leader"`
	// Serving is the ID service's serving_segments (absent elsewhere).
	Serving *bool `json:"serving_segments"`
}

// Leader returns the index of the node that says it leads (and serves).
func (g *Group) Leader(ctx context.Context) (int, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	for i, n := range g.Nodes {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTP+"/healthz", nil)
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		var st nodeStatus
		_ = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.Leader && (st.Serving == nil || *st.Serving) {
			return i, nil
		}
	}
	return -1, errors.New("no node of the group leads")
}

// GRPCAddrs and HTTPAddrs list the nodes' addresses, in node order.
func (g *Group) GRPCAddrs() []string { return g.addrs(func(n *GroupNode) string { return n.GRPC }) }

// HTTPAddrs: see GRPCAddrs.
func (g *Group) HTTPAddrs() []string { return g.addrs(func(n *GroupNode) string { return n.HTTP }) }

func (g *Group) addrs(f func(*GroupNode) string) []string {
	out := make([]string, len(g.Nodes))
	for i, n := range g.Nodes {
		out[i] = f(n)
	}
	return out
}

// Close ends every node with SIGKILL (their data stays in Dir).
func (g *Group) Close() {
	if g == nil {
		return
	}
	for _, n := range g.Nodes {
		if n.p != nil {
			n.p.kill()
		}
	}
}
