package raftstore

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"math/rand"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawRPC sends one request on this package's RPC to addr, as a peer or a
// stray client would, and returns the decoded answer.
func rawRPC(t *testing.T, addr string, req rpcRequest) rpcResponse {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(append([]byte{rpcTag}, body...)); err != nil {
		t.Fatal(err)
	}
	var resp rpcResponse
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		t.Fatalf("%s to %s: %v", req.Op, addr, err)
	}
	return resp
}

func memberAddrs(t *testing.T, n *Node) map[string]string {
	t.Helper()
	ps, err := n.Members()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range ps {
		m[p.ID] = p.Addr
	}
	return m
}

// A join naming a member's ID from another address (a second node
// configured with the same NodeID, or a stray request) must not move that
// member: Raft's AddVoter would re-address it and cut the real one off.
func TestJoinCannotTakeOverAMember(t *testing.T) {
	c := NewTestCluster(t, 3, newLogFSMFor)
	before := memberAddrs(t, c.Leader(t, 10*time.Second))
	// Ask the leader, following a spurious election should one happen.
	toLeader := func(req rpcRequest) rpcResponse {
		for range 20 {
			if resp := rawRPC(t, c.Leader(t, 10*time.Second).Addr(), req); !resp.NotLeader {
				return resp
			}
		}
		t.Fatalf("%+v: no leader answered", req)
		return rpcResponse{}
	}
	n0, n1 := c.Nodes[0], c.Nodes[1]

	for _, req := range []rpcRequest{
		{Op: opJoin, ID: n1.ID(), Addr: "127.0.0.1:1"},                               // a member's ID, new address
		{Op: opJoin, ID: n0.ID(), Addr: "127.0.0.1:2"},                               // the same for another member
		{Op: opJoin, ID: "intruder", Addr: n1.Addr()},                                // a member's address, new ID
		{Op: opJoin, ID: "", Addr: "127.0.0.1:3"},                                    // no ID
		{Op: opJoin, ID: "x", Addr: "nonsense"},                                      // no port
		{Op: opJoin, ID: strings.Repeat("y", 300), Addr: "127.0.0.1:99999"},          // bad port
		{Op: "promote", ID: "x", Addr: "127.0.0.1:4"},                                // unknown op
		{Op: opMeta, ID: "stranger", Meta: map[string]string{"http": "127.0.0.1:9"}}, // not a member
	} {
		if resp := toLeader(req); resp.Err == "" {
			t.Errorf("%+v: answered %+v, want a refusal", req, resp)
		}
	}
	// A member re-sending its own join (it lost the answer) is fine.
	if resp := toLeader(rpcRequest{Op: opJoin, ID: n1.ID(), Addr: n1.Addr()}); resp.Err != "" {
		t.Errorf("a member's repeated join: %+v", resp)
	}
	// A follower redirects to the leader.
	leader := c.Leader(t, 10*time.Second)
	for _, n := range c.Nodes {
		if n == leader {
			continue
		}
		eventually(t, 10*time.Second, n.ID()+" to know the leader", func() bool { id, _ := n.Leader(); return id != "" })
		resp := rawRPC(t, n.Addr(), rpcRequest{Op: opMeta, ID: "stranger"})
		if !resp.NotLeader && !leader.IsLeader() {
			continue // an election moved the leader here meanwhile: it answered itself
		}
		addrs := slices.Collect(maps.Values(before))
		if !resp.NotLeader || resp.LeaderAddr == n.Addr() || !slices.Contains(addrs, resp.LeaderAddr) {
			t.Errorf("%s: a request to a follower answered %+v, want a redirect to the leader", n.ID(), resp)
		}
	}

	if after := memberAddrs(t, c.Leader(t, 10*time.Second)); !equalMaps(after, before) {
		t.Fatalf("membership changed by refused joins:\nbefore %v\nafter  %v", before, after)
	}
	applyMany(t, c, 0, 10, 2)
	sameLogs(t, c, 10, 0, 1, 2)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Nothing a stranger sends to the Raft port may crash a node or wedge the
// group: random bytes, Raft frames with absurd lengths, broken RPC JSON,
// connections that open and say nothing.
func TestGarbageOnTheRaftPort(t *testing.T) {
	c := NewTestCluster(t, 3, newLogFSMFor)
	c.Leader(t, 10*time.Second)
	applyMany(t, c, 0, 10, 2)

	frame := func(rpcType byte, field string, value ...byte) []byte {
		b := []byte{rpcType, 0x81, 0xa0 | byte(len(field))} // msgpack: map of 1, fixstr key
		return append(append(b, field...), value...)
	}
	payloads := [][]byte{
		{},
		{rpcTag},
		append([]byte{rpcTag}, "{"...),
		append([]byte{rpcTag}, `{"op":"join","id":`...),
		append([]byte{rpcTag}, `[1,2,3]`...),
		append([]byte{rpcTag}, `{"op":7,"meta":[1]}`...),
		append([]byte{rpcTag}, strings.Repeat("[", 100000)...),
		frame(0, "Entries", 0xdd, 0xff, 0xff, 0xff, 0xff),                                                               // array of 4G entries
		frame(0, "Entries", 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x81, 0xa4, 'D', 'a', 't', 'a', 0xc6, 0x7f, 0xff, 0xff, 0xff), // 2 GB of data
		frame(0, "Addr", 0xc6, 0xff, 0xff, 0xff, 0xff),
		frame(2, "Size", 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), // install snapshot, 8 EB
		{0, 0xdf, 0xff, 0xff, 0xff, 0xff},
		{0, 0xc1},
		{0xff, 0xff, 0xff},
	}
	rng := rand.New(rand.NewSource(1))
	for range 60 {
		b := make([]byte, 1+rng.Intn(2048))
		rng.Read(b)
		b[0] = byte(rng.Intn(6)) // mostly Raft's own RPC types, so the decoder sees it
		if rng.Intn(3) == 0 {
			b[0] = rpcTag
		}
		payloads = append(payloads, b)
	}
	for _, p := range payloads {
		for _, n := range c.Nodes {
			conn, err := net.DialTimeout("tcp", n.Addr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
			_, _ = conn.Write(p)
			if cw, ok := conn.(*net.TCPConn); ok {
				_ = cw.CloseWrite()
			}
			_, _ = io.Copy(io.Discard, conn)
			conn.Close()
		}
	}
	// Every node still serves, and the group still commits.
	for i, n := range c.Nodes {
		if !c.Up(i) || n.closed() {
			t.Fatalf("%s is down", n.ID())
		}
	}
	applyMany(t, c, 10, 10, 2)
	sameLogs(t, c, 20, 0, 1, 2)
}

// syncBuffer is a log sink a node's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A second node configured with a member's NodeID asks to join: the
// cluster keeps the real member, and the newcomer says why it is refused.
func TestJoinWithADuplicateNodeIDIsRefusedAndLogged(t *testing.T) {
	c := NewTestCluster(t, 3, newLogFSMFor)
	leader := c.Leader(t, 10*time.Second)
	before := memberAddrs(t, leader)

	var logs syncBuffer
	cfg := TestConfig("n1") // taken
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Join = []string{c.Nodes[0].Addr()}
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dup, err := Open(cfg, newLogFSM())
	if err != nil {
		t.Fatal(err)
	}
	defer dup.Close()
	eventually(t, 10*time.Second, "the refusal in the newcomer's log", func() bool {
		return strings.Contains(logs.String(), `already a member`)
	})
	if after := memberAddrs(t, c.Leader(t, 10*time.Second)); !equalMaps(after, before) {
		t.Fatalf("a duplicate NodeID changed the membership:\nbefore %v\nafter  %v", before, after)
	}
	if n := strings.Count(logs.String(), "refused this node"); n != 1 {
		t.Errorf("the standing refusal was logged %d times, want once:\n%s", n, logs.String())
	}
	applyMany(t, c, 0, 10, 2)
	sameLogs(t, c, 10, 0, 1, 2)
}
