package backend

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/localdb"
)

// TestPipeline runs statements of many goroutines on one pipelined
// connection of a real MariaDB and checks that each gets its own answer:
// text and prepared, statements that fail among others, session state
// that differs from one statement to the next, a pipeline at its depth, a
// statement timeout, and a pipeline closed under its queue.
func TestPipeline(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	if err := topo.Shards()[0].Primary().Exec(context.Background(),
		"CREATE DATABASE app", "CREATE DATABASE other",
		"CREATE TABLE app.t (id INT PRIMARY KEY, s VARCHAR(300))",
		"INSERT INTO app.t SELECT seq, CONCAT('row', seq) FROM app.seq_1_to_1000",
		"CREATE TABLE other.t (id INT PRIMARY KEY, s VARCHAR(300))",
		"INSERT INTO other.t SELECT seq, CONCAT('other', seq) FROM other.seq_1_to_1000",
	); err != nil {
		t.Fatal(err)
	}
	c := testCluster(t, topo, func(o *Options) { o.Pipelines, o.PipelineDepth = 1, 64 })
	p := c.Shard("s0").Primary
	ansi := c.States.With(nil, "sql_mode", "@@session.sql_mode = 'ANSI_QUOTES'")

	t.Run("text", func(t *testing.T) {
		// The pipeline's connection is open: while it is being opened,
		// statements take no pipeline (ErrPipelineFull).
		if err := p.PipeQuery("SELECT 1", "app", nil, 0, NewPipeTurn(), &collect{}); err != nil {
			t.Fatal(err)
		}
		before := p.Stats().Piped
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Go(func() {
				turn := NewPipeTurn()
				for i := 1; i <= 150; i++ {
					id := g*100 + i
					db, st, want := "app", (*State)(nil), fmt.Sprintf("row%d", id)
					if i%3 == 0 {
						db, want = "other", fmt.Sprintf("other%d", id)
					}
					if i%4 == 0 {
						st = ansi
					}
					var got collect
					err := p.PipeQuery(fmt.Sprintf("SELECT s, @@session.sql_mode FROM t WHERE id = %d", id), db, st, 0, turn, &got)
					if i%7 == 0 {
						var got collect
						err := p.PipeQuery("SELECT nope FROM t WHERE id = 1", db, st, 0, turn, &got)
						if se := (*sqlerror.SQLError)(nil); !errors.As(err, &se) || se.Number() != sqlerror.ERBadFieldError || got.end.Kind != PacketErr {
							errs <- fmt.Errorf("bad column: %v, end %v", err, got.end.Kind)
							return
						}
					}
					if err != nil {
						errs <- fmt.Errorf("id %d: %w", id, err)
						return
					}
					if len(got.rows) != 1 {
						errs <- fmt.Errorf("id %d: %d rows", id, len(got.rows))
						return
					}
					row := textRow(t, got.rows[0])
					mode := row[1] == "ANSI_QUOTES"
					if row[0] != want || mode != (st == ansi) {
						errs <- fmt.Errorf("id %d in %s (ansi %v): got %q", id, db, st == ansi, row)
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
		if n := p.Stats().Piped - before; n < 8*150 {
			t.Errorf("%d statements piped, want at least %d", n, 8*150)
		}
	})

	t.Run("prepared", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for g := 0; g < 4; g++ {
			wg.Go(func() {
				turn := NewPipeTurn()
				for i := 1; i <= 100; i++ {
					id := g*200 + i
					var got collect
					text := "SELECT id, s FROM t WHERE id = ?"
					if i%2 == 0 {
						text = "SELECT id, s FROM t WHERE id = ? AND 1 = 1"
					}
					if err := p.PipeStmt(text, "app", nil, 1, execArgs(int64(id)), 0, turn, &got); err != nil {
						errs <- fmt.Errorf("id %d: %w", id, err)
						return
					}
					if len(got.rows) != 1 || len(got.rows[0]) < 6 || int(binary.LittleEndian.Uint32(got.rows[0][2:])) != id {
						errs <- fmt.Errorf("id %d: rows %q", id, got.rows)
						return
					}
					if i%10 == 0 {
						// The server will not prepare it: ErrPrepare, and
						// the pipeline goes on.
						err := p.PipeStmt("SELECT nope FROM t WHERE id = ?", "app", nil, 1, execArgs(1), 0, turn, &collect{})
						if !errors.Is(err, ErrPrepare) {
							errs <- fmt.Errorf("bad statement: %v, want ErrPrepare", err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	// slow starts a statement that holds the pipeline for d and returns
	// its error's channel once it is on the pipeline.
	slow := func(p *Pool, d time.Duration, timeout time.Duration) chan error {
		ch := make(chan error, 1)
		piped := p.Stats().Piped
		go func() {
			ch <- p.PipeQuery("SELECT SLEEP("+strconv.FormatFloat(d.Seconds(), 'f', 3, 64)+")", "app", nil, timeout, NewPipeTurn(), &collect{})
		}()
		waitUntil(t, 5*time.Second, func() bool { return p.Stats().Piped > piped })
		return ch
	}

	t.Run("depth", func(t *testing.T) {
		c := testCluster(t, topo, func(o *Options) { o.Pipelines, o.PipelineDepth = 1, 1 })
		p := c.Shard("s0").Primary
		done := slow(p, time.Second, 0)
		if err := p.PipeQuery("SELECT 1", "app", nil, 0, NewPipeTurn(), &collect{}); !errors.Is(err, ErrPipelineFull) {
			t.Fatalf("second statement on a pipeline of depth 1: %v, want ErrPipelineFull", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		done := slow(p, 5*time.Second, 300*time.Millisecond)
		var got collect
		next := p.PipeQuery("SELECT 1", "app", nil, 0, NewPipeTurn(), &got)
		if err := <-done; !IsConnError(err) {
			t.Fatalf("statement past its timeout: %v, want a connection error", err)
		}
		if !IsConnError(next) {
			t.Fatalf("statement queued behind it: %v, want a connection error", next)
		}
		if err := p.PipeQuery("SELECT 1", "app", nil, 0, NewPipeTurn(), &got); err != nil {
			t.Fatalf("after the failed pipeline: %v", err)
		}
	})

	t.Run("interrupt", func(t *testing.T) {
		done := slow(p, 5*time.Second, 0)
		queued := make(chan error, 1)
		go func() { queued <- p.PipeQuery("SELECT 1", "app", nil, 0, NewPipeTurn(), &collect{}) }()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		if n := p.InterruptInUse("test"); n < 1 {
			t.Fatalf("InterruptInUse closed %d connections", n)
		}
		for _, ch := range []chan error{done, queued} {
			if err := <-ch; !IsConnError(err) {
				t.Fatalf("after InterruptInUse: %v, want a connection error", err)
			}
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("statements ended %v after the interrupt", d)
		}
		var got collect
		if err := p.PipeQuery("SELECT 1", "app", nil, 0, NewPipeTurn(), &got); err != nil || len(got.rows) != 1 {
			t.Fatalf("after the interrupt: %v", err)
		}
	})
}
