package backend

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
)

// TestPipelineLockWait: a pipelined select of a table whose metadata lock
// another connection holds (LOCK TABLES, DDL) must not hold up the
// statements of other sessions queued behind it, on other tables: it ends
// at once with ErrPipeWouldWait (to run again on a connection of its
// own), and a session that set lock_wait_timeout itself gets no pipeline.
func TestPipelineLockWait(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	if err := topo.Shards()[0].Primary().Exec(context.Background(),
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY, s VARCHAR(10))", "INSERT INTO app.t VALUES (1, 't1')",
		"CREATE TABLE app.u (id INT PRIMARY KEY, s VARCHAR(10))", "INSERT INTO app.u VALUES (1, 'u1')",
	); err != nil {
		t.Fatal(err)
	}
	c := testCluster(t, topo, func(o *Options) { o.Pipelines, o.PipelineDepth = 1, 8 })
	p := c.Shard("s0").Primary
	ctx := context.Background()

	locker, err := p.Get(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			if _, _, err := locker.Exec(ctx, "UNLOCK TABLES", ExecOptions{}); err != nil {
				t.Error(err)
			}
			p.Put(locker)
		}
	}
	defer unlock()
	if _, _, err := locker.Exec(ctx, "LOCK TABLES t WRITE", ExecOptions{DB: "app"}); err != nil {
		t.Fatal(err)
	}

	for _, prepared := range []bool{false, true} {
		run := func(table string, sink Sink) error {
			if prepared {
				return p.PipeStmt("SELECT s FROM "+table+" WHERE id = ?", "app", nil, 1, execArgs(1), 0, NewPipeTurn(), sink)
			}
			return p.PipeQuery("SELECT s FROM "+table+" WHERE id = 1", "app", nil, 0, NewPipeTurn(), sink)
		}
		blocked := make(chan error, 1)
		before := p.Stats().Piped
		go func() { blocked <- run("t", &collect{}) }()
		waitUntil(t, 5*time.Second, func() bool { return p.Stats().Piped > before })
		other := make(chan error, 1)
		var got collect
		go func() { other <- run("u", &got) }()
		select {
		case err := <-other:
			if err != nil || len(got.rows) != 1 {
				t.Fatalf("prepared %v: the select of another table: %v, %d rows", prepared, err, len(got.rows))
			}
		case <-time.After(3 * time.Second):
			unlock()
			<-other
			t.Fatalf("prepared %v: a select of another table waited behind one of a locked table", prepared)
		}
		if err := <-blocked; !errors.Is(err, ErrPipeWouldWait) || errors.Is(err, ErrPrepare) {
			t.Fatalf("prepared %v: the select of the locked table: %v, want ErrPipeWouldWait", prepared, err)
		}
	}

	// Its own lock_wait_timeout would undo the pipeline's.
	st := c.States.With(nil, lockWaitTimeout, "@@session.lock_wait_timeout = 5")
	if err := p.PipeQuery("SELECT s FROM u WHERE id = 1", "app", st, 0, NewPipeTurn(), &collect{}); !errors.Is(err, ErrPipelineFull) {
		t.Fatalf("a session with its own lock_wait_timeout: %v, want ErrPipelineFull", err)
	}
	var got collect
	if err := p.PipeQuery("SELECT s FROM u WHERE id = 1", "app", nil, 0, NewPipeTurn(), &got); err != nil || len(got.rows) != 1 {
		t.Fatalf("after: %v", err)
	}
}

// failRows is a sink that gives up at the first row, as the lane does with
// an answer too large for a pipeline.
type failRows struct{}

var errGaveUp = errors.New("gave up")

func (failRows) Packet(p *Packet) error {
	if p.Kind == PacketRow {
		return errGaveUp
	}
	return nil
}

// TestPipelineGiveUpKeepsPool: a turn whose caller gives its answer up
// fails the turns queued behind it on the pipeline (they go elsewhere),
// but says nothing about the server: the pool's idle connections stay,
// and the pipeline serves again.
func TestPipelineGiveUpKeepsPool(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	c := testCluster(t, topo, func(o *Options) { o.Pipelines, o.PipelineDepth = 1, 8 })
	p := c.Shard("s0").Primary
	ctx := context.Background()
	var held []*Conn
	for i := 0; i < 2; i++ {
		conn, err := p.Get(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
	}
	for _, conn := range held {
		p.Put(conn)
	}
	if n := p.Stats().Idle; n != 2 {
		t.Fatalf("%d idle connections, want 2", n)
	}
	first := make(chan error, 1)
	before := p.Stats().Piped
	go func() {
		first <- p.PipeQuery("SELECT SLEEP(1), 'x'", "", nil, 0, NewPipeTurn(), failRows{})
	}()
	waitUntil(t, 5*time.Second, func() bool { return p.Stats().Piped > before })
	next := p.PipeQuery("SELECT 1", "", nil, 0, NewPipeTurn(), &collect{})
	if err := <-first; !errors.Is(err, errGaveUp) {
		t.Fatalf("the turn given up: %v", err)
	}
	if !IsConnError(next) {
		t.Fatalf("the turn behind it: %v, want a connection error", next)
	}
	if n := p.Stats().Idle; n != 2 {
		t.Errorf("%d idle connections after a turn was given up, want 2", n)
	}
	var got collect
	if err := p.PipeQuery("SELECT 1", "", nil, 0, NewPipeTurn(), &got); err != nil || len(got.rows) != 1 {
		t.Fatalf("the pipeline after: %v", err)
	}
}
