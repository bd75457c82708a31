package raftstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func validConfig() Config {
	c := DefaultConfig()
	c.NodeID = "n1"
	c.DataDir = "/tmp/x"
	c.BindAddr = "127.0.0.1:0"
	return c
}

func TestValidateNamesTheField(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		field string
		mut   func(*Config)
	}{
		{"NodeID", func(c *Config) { c.NodeID = "" }},
		{"NodeID", func(c *Config) { c.NodeID = " n1" }},
		{"DataDir", func(c *Config) { c.DataDir = "" }},
		{"BindAddr", func(c *Config) { c.BindAddr = "" }},
		{"BindAddr", func(c *Config) { c.BindAddr = "localhost" }},
		{"BindAddr", func(c *Config) { c.BindAddr = "127.0.0.1:99999" }},
		{"AdvertiseAddr", func(c *Config) { c.BindAddr = "0.0.0.0:7100" }},
		{"AdvertiseAddr", func(c *Config) { c.AdvertiseAddr = "0.0.0.0:7100" }},
		{"AdvertiseAddr", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }},
		{"Join", func(c *Config) { c.Bootstrap = true; c.Join = []string{"127.0.0.1:7100"} }},
		{"Join[0]", func(c *Config) { c.Join = []string{"nope"} }},
		{"Peers", func(c *Config) { c.Peers = []Peer{{ID: "n1", Addr: "127.0.0.1:7100"}} }},
		{"Peers", func(c *Config) { c.Bootstrap = true; c.Peers = []Peer{{ID: "n2", Addr: "127.0.0.1:7100"}} }},
		{"Peers[1]", func(c *Config) {
			c.Bootstrap = true
			c.Peers = []Peer{{ID: "n1", Addr: "127.0.0.1:7100"}, {ID: "n1", Addr: "127.0.0.1:7101"}}
		}},
		{"Peers[1]", func(c *Config) {
			c.Bootstrap = true
			c.Peers = []Peer{{ID: "n1", Addr: "127.0.0.1:7100"}, {ID: "n2", Addr: "127.0.0.1:7100"}}
		}},
		{"Peers[0]", func(c *Config) { c.Bootstrap = true; c.Peers = []Peer{{ID: "n1", Addr: "127.0.0.1"}} }},
		{"Meta", func(c *Config) { c.Meta = map[string]string{"": "x"} }},
		{"HeartbeatTimeout", func(c *Config) { c.HeartbeatTimeout = time.Millisecond }},
		{"ElectionTimeout", func(c *Config) { c.ElectionTimeout = c.HeartbeatTimeout / 2 }},
		{"LeaderLeaseTimeout", func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }},
		{"CommitTimeout", func(c *Config) { c.CommitTimeout = 0 }},
		{"ApplyTimeout", func(c *Config) { c.ApplyTimeout = 0 }},
		{"SnapshotInterval", func(c *Config) { c.SnapshotInterval = 0 }},
		{"SnapshotThreshold", func(c *Config) { c.SnapshotThreshold = 0 }},
		{"SnapshotRetain", func(c *Config) { c.SnapshotRetain = 0 }},
	}
	for _, tc := range cases {
		c := validConfig()
		tc.mut(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: want an error, got none", tc.field)
			continue
		}
		if !strings.Contains(err.Error(), "config: "+tc.field+":") {
			t.Errorf("%s: error does not name the field: %v", tc.field, err)
		}
	}
	// Every problem is reported, not just the first.
	err := Config{}.Validate()
	for _, f := range []string{"NodeID", "DataDir", "BindAddr", "HeartbeatTimeout", "SnapshotRetain"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("zero Config: error should name %s: %v", f, err)
		}
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	_, err := Open(Config{}, newLogFSM())
	if err == nil || !strings.Contains(err.Error(), "NodeID") {
		t.Fatalf("Open(Config{}) = %v, want an error naming NodeID", err)
	}
	c := validConfig()
	c.DataDir = t.TempDir()
	if _, err := Open(c, nil); err == nil {
		t.Fatal("Open with a nil FSM succeeded")
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	canceled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.canceled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestFSMAdapterKeepsMetaBesideConsumerState(t *testing.T) {
	user := newLogFSM()
	f := newFSMAdapter(user)
	entries := [][]byte{
		encodeUser(u64(7)),
		encodeMeta(tagSetMeta, metaCmd{ID: "n1", Meta: map[string]string{"http": "h1"}}),
		encodeMeta(tagSetMeta, metaCmd{ID: "n2", Meta: map[string]string{"http": "h2"}}),
		encodeUser(u64(8)),
		encodeMeta(tagDeleteMeta, metaCmd{ID: "n2"}),
	}
	for i, e := range entries {
		if r := f.Apply(&raft.Log{Index: uint64(i + 1), Data: e}); r != nil {
			if err, ok := r.(error); ok {
				t.Fatalf("entry %d: %v", i, err)
			}
		}
	}
	if got := user.values(); len(got) != 2 || got[0] != 7 || got[1] != 8 {
		t.Fatalf("consumer FSM saw %v, want only its own commands [7 8]", got)
	}
	if r := f.Apply(&raft.Log{Index: 9, Data: []byte{0xEE, 1}}); r == nil {
		t.Fatal("unknown tag: want an error result")
	}

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}

	user2 := newLogFSM()
	f2 := newFSMAdapter(user2)
	if err := f2.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := user2.values(); len(got) != 2 || got[0] != 7 || got[1] != 8 {
		t.Fatalf("restored consumer state %v, want [7 8]", got)
	}
	if m := f2.metaOf("n1"); m["http"] != "h1" {
		t.Fatalf("restored meta of n1 = %v", m)
	}
	if ids := f2.metaIDs(); len(ids) != 1 {
		t.Fatalf("restored meta ids %v, want only n1", ids)
	}

	for _, bad := range [][]byte{nil, []byte("junk-junk"), append(append([]byte{}, snapshotMagic[:]...), 0, 0, 0, 99, '{')} {
		if err := newFSMAdapter(newLogFSM()).Restore(io.NopCloser(bytes.NewReader(bad))); err == nil {
			t.Errorf("Restore(%q): want an error", bad)
		}
	}
}

func TestBroadcasterDeliversEveryEventToSlowSubscribers(t *testing.T) {
	b := newBroadcaster()
	slow, cancelSlow := b.subscribe()
	defer cancelSlow()
	gone, cancelGone := b.subscribe()

	const n = 1000
	for i := 1; i <= n; i++ {
		b.set(i%2 == 1, uint64(i))
		b.set(i%2 == 1, uint64(i)) // no change: not an event
	}
	cancelGone()
	for range gone { // closes after cancel
	}

	want := LeadershipEvent{IsLeader: false, Term: 0}
	for i := 0; i <= n; i++ {
		select {
		case ev := <-slow:
			if ev != want {
				t.Fatalf("event %d = %+v, want %+v", i, ev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d never arrived", i)
		}
		want = LeadershipEvent{IsLeader: (i+1)%2 == 1, Term: uint64(i + 1)}
	}

	late, _ := b.subscribe()
	if ev := <-late; ev.IsLeader || ev.Term != n {
		t.Fatalf("a late subscriber first sees %+v, want the current state {false %d}", ev, n)
	}
	b.close()
	for _, ch := range []<-chan LeadershipEvent{slow, late} {
		if _, ok := <-ch; ok {
			t.Fatal("channel still open after close")
		}
	}
	if _, ok := <-func() <-chan LeadershipEvent { ch, _ := b.subscribe(); return ch }(); ok {
		t.Fatal("subscribe after close: want a closed channel")
	}
}

func TestHclogAdapterDropsBelowFloor(t *testing.T) {
	var buf bytes.Buffer
	l := newHclogAdapter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), slog.LevelWarn)
	l.Info("chatter")
	l.Named("replication").With("peer", "n2").Warn("slow", "rtt", 3)
	out := buf.String()
	if strings.Contains(out, "chatter") {
		t.Errorf("Info passed a Warn floor: %s", out)
	}
	if !strings.Contains(out, "replication: slow") || !strings.Contains(out, "peer=n2") || !strings.Contains(out, "rtt=3") {
		t.Errorf("Warn lost its name or args: %s", out)
	}
	if l.IsInfo() || !l.IsWarn() {
		t.Errorf("IsInfo=%v IsWarn=%v with a Warn floor", l.IsInfo(), l.IsWarn())
	}
}

func TestNilNodeIsSafe(t *testing.T) {
	var n *Node
	ctx := context.Background()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(ctx, nil); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Apply on nil node: %v", err)
	}
	if n.IsLeader() || n.ID() != "" || n.Addr() != "" || n.LeaderMeta() != nil || n.Term() != 0 {
		t.Fatal("nil node reports state")
	}
	if err := n.Barrier(ctx); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Barrier: %v", err)
	}
	ch, cancel := n.Subscribe()
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("Subscribe on nil node: channel open")
	}
}
