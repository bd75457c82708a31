package txcoord

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// counter is a test module: each command adds its value (uint64) to a sum;
// adding 0 is refused.
type counter struct {
	mu  sync.Mutex
	sum uint64
}

func (c *counter) ID() byte { return 9 }

func (c *counter) Apply(_ uint64, cmd []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(cmd) != 8 || binary.BigEndian.Uint64(cmd) == 0 {
		return binary.BigEndian.AppendUint64(nil, c.sum), errors.New("add nothing")
	}
	c.sum += binary.BigEndian.Uint64(cmd)
	return binary.BigEndian.AppendUint64(nil, c.sum), nil
}

func (c *counter) Snapshot() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return binary.BigEndian.AppendUint64(nil, c.sum), nil
}

func (c *counter) Restore(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sum = 0
	if len(b) == 8 {
		c.sum = binary.BigEndian.Uint64(b)
	}
	return nil
}

func (c *counter) get() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sum
}

func add(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func TestGroupProposeForwardRefuseFailover(t *testing.T) {
	counters := map[int]*counter{}
	var mu sync.Mutex
	g := NewTestGroup(t, 3, func(i int) []Module {
		mu.Lock()
		defer mu.Unlock()
		counters[i] = &counter{}
		return []Module{counters[i]}
	})
	ctx := context.Background()
	leader, li := g.Leader(t, 10*time.Second)
	follower := g.Nodes[(li+1)%3]

	if _, err := leader.Propose(ctx, 9, add(1)); err != nil {
		t.Fatalf("propose on leader: %v", err)
	}
	res, err := follower.Propose(ctx, 9, add(2))
	if err != nil || binary.BigEndian.Uint64(res) != 3 {
		t.Fatalf("propose on follower: %v %v, want sum 3", res, err)
	}
	res, err = follower.Propose(ctx, 9, add(0))
	var ref *RefusedError
	if !errors.As(err, &ref) || !errors.Is(err, ErrRefused) || ref.Msg != "add nothing" || binary.BigEndian.Uint64(res) != 3 {
		t.Fatalf("refusal through a follower: res %v err %v", res, err)
	}
	if _, err := leader.Propose(ctx, 7, add(1)); !errors.Is(err, ErrUnknownModule) {
		t.Fatalf("unknown module: %v", err)
	}

	// Kill the leader: proposals through the others go on after an election.
	g.Kill(li)
	other := g.Nodes[(li+2)%3]
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if res, err = other.Propose(pctx, 9, add(4)); err != nil || binary.BigEndian.Uint64(res) != 7 {
		t.Fatalf("propose after leader kill: %v %v", res, err)
	}
	// The killed node comes back with its state from disk and catches up.
	g.Restart(t, li)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		c := counters[li]
		mu.Unlock()
		if c.get() == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted node's sum %d, want 7", c.get())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFSMSnapshotRestore(t *testing.T) {
	a := &counter{}
	f, err := newFSM([]Module{a})
	if err != nil {
		t.Fatal(err)
	}
	f.Apply(1, append([]byte{9}, add(5)...))
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := &counter{}
	f2, _ := newFSM([]Module{b})
	if err := f2.Restore(snap); err != nil || b.get() != 5 {
		t.Fatalf("restore: %v, sum %d", err, b.get())
	}
	if err := f2.Restore(nil); err != nil || b.get() != 0 {
		t.Fatalf("restore empty: %v, sum %d", err, b.get())
	}
	if err := f2.Restore([]byte{9, 0, 0}); err == nil {
		t.Fatal("truncated snapshot restored")
	}
	if err := f2.Restore([]byte{3, 0, 0, 0, 0}); err == nil {
		t.Fatal("snapshot of an unknown module restored")
	}
	if r := f.Apply(2, []byte{4, 1}).(applyResult); r.refused == nil {
		t.Fatal("entry of an unknown module applied")
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil {
		t.Fatal("config without modules is valid")
	}
	c.Modules = []Module{&counter{}, &counter{}}
	c.GRPCAddr = ""
	c.Raft.SnapshotRetain = 0
	err := c.Validate()
	for _, want := range []string{"GRPCAddr", "used twice", "SnapshotRetain"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}
