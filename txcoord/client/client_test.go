package client_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-db/strata/txcoord"
	"github.com/strata-db/strata/txcoord/client"
	"github.com/strata-db/strata/txcoord/txpb"
)

func newGroup(t *testing.T) (*txcoord.TestGroup, []*txcoord.XA) { return newGroupTB(t) }

func newGroupTB(t testing.TB) (*txcoord.TestGroup, []*txcoord.XA) {
	t.Helper()
	var mu sync.Mutex
	xas := make([]*txcoord.XA, 3)
	g := txcoord.NewTestGroup(t, 3, func(i int) []txcoord.Module {
		x, err := txcoord.NewXA(txcoord.DefaultXAConfig())
		if err != nil {
			panic(err)
		}
		mu.Lock()
		xas[i] = x
		mu.Unlock()
		return []txcoord.Module{x}
	})
	return g, xas
}

func newClient(t *testing.T, addrs []string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Addrs, cfg.Owner, cfg.BlockSize = addrs, "test", 16
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDecideCompareAndSetThroughAnyNode(t *testing.T) {
	g, _ := newGroup(t)
	ctx := context.Background()
	_, li := g.Leader(t, 10*time.Second)
	// A client that knows only a follower still works: writes are forwarded.
	c := newClient(t, []string{g.GRPCAddrs()[(li+1)%3]})
	id, err := c.NextTxID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Decide(ctx, id, client.Commit, []string{"s0", "s1"})
	if err != nil || d != client.Commit {
		t.Fatalf("decide commit: %v %v", d, err)
	}
	// A recovering resolver asking abort learns the commit won.
	if d, err = c.Decide(ctx, id, client.Abort, nil); err != nil || d != client.Commit {
		t.Fatalf("later abort: %v %v, want the commit", d, err)
	}
	recs, err := c.Status(ctx, []uint64{id, id + 1000})
	if err != nil || len(recs) != 2 || recs[0].Decision != client.Commit || recs[1].Decision != client.Unknown {
		t.Fatalf("status: %+v %v", recs, err)
	}
	if err := c.Complete(ctx, []uint64{id}); err != nil {
		t.Fatal(err)
	}
	list, next, err := c.List(ctx, false, 0)
	if err != nil || len(list) != 0 || next <= id {
		t.Fatalf("list unfinished: %+v next %d err %v", list, next, err)
	}
	// Bad arguments are InvalidArgument, not retried.
	for _, bad := range []func() error{
		func() error { _, err := c.Decide(ctx, 0, client.Commit, nil); return err },
		func() error { _, err := c.Decide(ctx, id, client.Unknown, nil); return err },
		func() error { _, err := c.Decide(ctx, 1<<60, client.Commit, nil); return err },
		func() error { _, _, err := c.List(ctx, true, 1<<20); return err },
	} {
		if err := bad(); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("bad call: %v, want ErrInvalid", err)
		}
	}
}

// Concurrent decisions share Raft entries, and survive the leader's death.
func TestDecideBatchedAndAcrossLeaderKill(t *testing.T) {
	g, xas := newGroup(t)
	c := newClient(t, g.GRPCAddrs())
	ctx := context.Background()
	const workers, each = 32, 20
	ids := make(chan uint64, workers*each)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if w == 0 && i == each/2 {
					_, li := g.Leader(t, 10*time.Second)
					g.Kill(li)
				}
				id, err := c.NextTxID(ctx)
				if err != nil {
					errs <- err
					return
				}
				if d, err := c.Decide(ctx, id, client.Commit, []string{"s0"}); err != nil || d != client.Commit {
					errs <- errors.Join(err, errors.New("decision "+d.String()))
					return
				}
				ids <- id
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(ids)
	var all []uint64
	for id := range ids {
		all = append(all, id)
	}
	_, li := g.Leader(t, 10*time.Second)
	for _, id := range all {
		if r, ok := xas[li].Record(id); !ok || r.Decision != txcoord.Commit {
			t.Fatalf("acknowledged commit of %d missing on the new leader: %+v", id, r)
		}
	}
	if got := len(all); got != workers*each {
		t.Fatalf("%d decisions, want %d", got, workers*each)
	}
}

// Decisions made at once (queued together into DecideBatch calls) each keep the
// compare-and-set's answer: racing commits and aborts of one transaction
// all learn the same winner, and a refused decision among them fails alone.
func TestDecideConcurrentShareCalls(t *testing.T) {
	g, xas := newGroup(t)
	c := newClient(t, g.GRPCAddrs())
	ctx := context.Background()
	const txs, racers = 40, 4
	ids := make([]uint64, txs)
	for i := range ids {
		id, err := c.NextTxID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	got := make([][]client.Decision, txs)
	for i := range got {
		got[i] = make([]client.Decision, racers)
	}
	var wg sync.WaitGroup
	errs := make(chan error, txs*racers+1)
	for i := range txs {
		for r := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := client.Commit
				if r%2 == 1 {
					want = client.Abort
				}
				d, err := c.Decide(ctx, ids[i], want, []string{"s0", "s1"})
				if err != nil {
					errs <- err
				}
				got[i][r] = d
			}()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := c.Decide(ctx, 1<<60, client.Commit, nil); !errors.Is(err, client.ErrInvalid) {
			errs <- errors.Join(errors.New("a never-begun transaction among the others"), err)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, li := g.Leader(t, 10*time.Second)
	for i, ds := range got {
		r, ok := xas[li].Record(ids[i])
		if !ok || r.Decision == txcoord.Unknown {
			t.Fatalf("transaction %d: no decision recorded", ids[i])
		}
		for _, d := range ds {
			if int(d) != int(r.Decision) {
				t.Fatalf("transaction %d: answers %v, recorded %v", ids[i], ds, r.Decision)
			}
		}
	}
}

// oldCoordinator serves Decide only, as a group of the version before
// DecideBatch does.
type oldCoordinator struct {
	txpb.UnimplementedDecisionsServer
	calls atomic.Int64
}

func (o *oldCoordinator) Decide(_ context.Context, r *txpb.DecideRequest) (*txpb.DecideResponse, error) {
	o.calls.Add(1)
	return &txpb.DecideResponse{Decision: r.GetDecision(), Accepted: true}, nil
}

// A client of this version against an older group falls back to a Decide
// call each (a rolling upgrade updates proxies and coordinators apart).
func TestDecideAgainstOlderGroup(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	old := &oldCoordinator{}
	txpb.RegisterDecisionsServer(srv, old)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	c := newClient(t, []string{lis.Addr().String()})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, err := c.Decide(context.Background(), uint64(i+1), client.Abort, nil); err != nil || d != client.Abort {
				t.Errorf("decide %d: %v %v", i+1, d, err)
			}
		}()
	}
	wg.Wait()
	if n := old.calls.Load(); n != 10 {
		t.Fatalf("%d Decide calls, want 10", n)
	}
}
