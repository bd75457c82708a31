package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	c := testCluster(t, topo, func(o *Options) {
		o.Pipelines, o.PipelineDepth = 1, 8
		// No health check takes an idle connection out to ping it while
		// the test counts them.
		o.HealthCheckInterval = time.Hour
	})
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

// TestPipelineStmtEviction: more statement texts than a connection keeps
// (maxStmts), run by several goroutines on one pipeline, the same text
// often prepared by two turns at once: each execute runs its own text
// (a COM_STMT_CLOSE of an evicted statement goes after every execute
// written before it, and none written after it uses that id).
func TestPipelineStmtEviction(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	if err := topo.Shards()[0].Primary().Exec(context.Background(),
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY, s VARCHAR(20))",
		"INSERT INTO app.t SELECT seq, CONCAT('r', seq) FROM app.seq_1_to_100",
	); err != nil {
		t.Fatal(err)
	}
	c := testCluster(t, topo, func(o *Options) { o.Pipelines, o.PipelineDepth = 1, 16 })
	p := c.Shard("s0").Primary
	if err := p.PipeQuery("SELECT 1", "app", nil, 0, NewPipeTurn(), &collect{}); err != nil {
		t.Fatal(err) // the pipeline's connection is open
	}
	const texts = maxStmts + 16
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			turn := NewPipeTurn()
			for i := 0; i < 150; i++ {
				k := (i*7 + g*3) % texts
				id := 1 + (i+g)%100
				var got collect
				err := p.PipeStmt(fmt.Sprintf("SELECT CONCAT(s, '-%d') FROM t WHERE id = ?", k), "app", nil, 1, execArgs(int64(id)), 0, turn, &got)
				if err != nil {
					errs <- fmt.Errorf("text %d id %d: %w", k, id, err)
					return
				}
				want := fmt.Sprintf("r%d-%d", id, k)
				if len(got.rows) != 1 || len(got.rows[0]) < 3 || string(got.rows[0][3:]) != want {
					errs <- fmt.Errorf("text %d id %d: rows %q, want %q", k, id, got.rows, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The connection keeps at most maxStmts, and the server no more (a
	// COM_STMT_CLOSE has no answer: the server may not have read the last
	// one yet).
	conn, err := p.Get(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Put(conn)
	n := 0
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		res, _, err := conn.Exec(context.Background(), "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'PREPARED_STMT_COUNT'", ExecOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n = atoi(res.Rows[0][0].ToString()); n <= maxStmts || time.Now().After(deadline) {
			break
		}
	}
	if n > maxStmts {
		t.Errorf("%d statements prepared on the server, want at most %d", n, maxStmts)
	}
}

// TestPipelineDialAlone: while a pipeline's connection is being opened to
// a server that does not answer (stopped: the handshake waits out
// ConnectTimeout), other statements do not queue behind the dial, each
// waiting for the dials before it: they find no pipeline (ErrPipelineFull)
// and take the ordinary path, whose Gets dial at once.
func TestPipelineDialAlone(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	srv := topo.Shards()[0].Primary()
	c := testCluster(t, topo, func(o *Options) {
		o.Pipelines, o.PipelineDepth = 1, 8
		o.ConnectTimeout = 700 * time.Millisecond
		o.HealthCheckInterval = time.Hour
	})
	p := c.Shard("s0").Primary
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Resume(); err != nil {
			t.Error(err)
		}
	}()
	const n = 5
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var full, failed int
	for range n {
		wg.Go(func() {
			err := p.PipeQuery("SELECT 1", "", nil, 0, NewPipeTurn(), &collect{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrPipelineFull):
				full++
			case IsConnError(err):
				failed++
			default:
				t.Errorf("a statement on a pipeline to a stopped server: %v", err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%d statements took %v to give up on a pipeline to a stopped server (connect timeout 700ms)", n, d)
	}
	if failed < 1 || full+failed != n {
		t.Errorf("%d failed, %d found no pipeline, of %d", failed, full, n)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	var got collect
	if err := p.PipeQuery("SELECT 1", "", nil, 0, NewPipeTurn(), &got); err != nil || len(got.rows) != 1 {
		t.Fatalf("after the server resumed: %v", err)
	}
}

// TestPipelineLeavesAConnection: a pipeline takes no connection of
// MaxOpen (it keeps its own for good): with max_open 1 and a pipeline
// open, a statement that needs a connection of its own still gets one.
func TestPipelineLeavesAConnection(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	c := testCluster(t, topo, func(o *Options) {
		o.MaxOpen, o.WaitTimeout = 1, 300*time.Millisecond
		o.HealthCheckInterval = time.Hour // no probe holds the slot
	})
	p := c.Shard("s0").Primary
	var got collect
	if err := p.PipeQuery("SELECT 1", "", nil, 0, NewPipeTurn(), &got); err != nil && !errors.Is(err, ErrPipelineFull) {
		t.Fatalf("a pipeline with max_open 1: %v", err)
	}
	conn, err := p.Get(context.Background(), nil)
	if err != nil {
		t.Fatalf("a connection after a pipelined statement: %v", err)
	}
	p.Put(conn)
}
