package xa_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/chaos"
	"github.com/strata-db/strata/internal/testbin"
	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/xa"
)

// processCoordGroup starts an n-node coordinator group of real `strata
// txcoord` processes (the binary built for this test), so that a kill is
// a SIGKILL: whatever the leader had not made durable is lost with it.
func processCoordGroup(t *testing.T, n int) *chaos.Group {
	t.Helper()
	bin, err := testbin.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	g, err := chaos.StartGroup(context.Background(), chaos.GroupConfig{Binary: bin, Command: "txcoord", Nodes: n, Dir: dir,
		Args: []string{"--seata-addr", "off"}, ReadyTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Close()
		if t.Failed() {
			for _, n := range g.Nodes {
				if b, err := os.ReadFile(n.LogPath); err == nil {
					t.Logf("%s's log:\n%s", n.ID, b)
				}
			}
		}
	})
	return g
}

// coordLeader is the index of the group's leader, waiting for one.
func coordLeader(t *testing.T, g *chaos.Group) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		i, err := g.Leader(context.Background())
		if err == nil {
			return i
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

type transfer struct {
	id, src, dst, amount int64
}

// TestBank moves money between accounts on different shards through the
// proxy from 16 sessions, each transfer also writing its row in a transfer
// log in the same transaction, while faults hit every part: the
// coordinator's leader is killed with SIGKILL (a group of 3 `strata
// txcoord` processes) and transfers go on before it returns, a shard
// primary is killed with SIGKILL and restarted, the proxy dies between PREPARE and
// COMMIT (a failpoint after the decision) and a new one starts, and a
// planned switchover moves another shard's primary. Afterwards the money
// is all there, no balance is negative, every acknowledged transfer is in
// the log, every logged transfer is applied on both sides (each account's
// balance is its start plus what the log says came in minus what went
// out), and no prepared XA branch of ours is left on any primary.
func TestBank(t *testing.T) {
	const (
		accounts = 200
		start    = 1000
		workers  = 16
	)
	topo := localdb.StartForTest(t, localdb.TestConfig(2, 1))
	g := processCoordGroup(t, 3)
	cfg := bankConfig(topo, g.GRPCAddrs(), freeAddr(t))
	cfg.ReadWrite.Enabled = true
	var armed atomic.Bool
	crashed := make(chan uint64, 1)
	failpoint := func(step string, txid uint64) error {
		if step == "decided" && armed.CompareAndSwap(true, false) {
			crashed <- txid
			return errors.New("proxy crash (failpoint)")
		}
		return nil
	}
	p := startProxy(t, cfg, failpoint)
	ids := createBank(t, p, topo, accounts, start)
	if len(ids["s0"]) == 0 || len(ids["s1"]) == 0 {
		t.Fatalf("accounts by shard: %v", ids)
	}
	db := p.open(t, "bank")
	db.SetMaxOpenConns(workers)

	var (
		stop                   atomic.Bool
		mu                     sync.Mutex
		acked                  []transfer
		attempts, commitErrors atomic.Int64
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for seq := int64(1); !stop.Load(); seq++ {
				from, to := ids["s0"], ids["s1"]
				if r.IntN(2) == 0 {
					from, to = to, from
				}
				tr := transfer{id: int64(w+1)*1_000_000 + seq, src: int64(from[r.IntN(len(from))]), dst: int64(to[r.IntN(len(to))]), amount: int64(1 + r.IntN(50))}
				attempts.Add(1)
				switch err := runTransfer(db, tr); {
				case err == nil:
					mu.Lock()
					acked = append(acked, tr)
					mu.Unlock()
				case errors.Is(err, errCommit):
					commitErrors.Add(1)
				default:
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	ctx := context.Background()
	step := func(what string, f func()) {
		t.Logf("%s (acknowledged so far: %d)", what, countOf(&mu, &acked))
		f()
	}
	time.Sleep(2 * time.Second)
	step("kill -9 the coordinator's leader", func() {
		li := coordLeader(t, g)
		n := g.Nodes[li]
		pid := n.Pid()
		n.Kill()
		t.Logf("killed %s (pid %d) with SIGKILL", n.ID, pid)
		// Transfers go on under the new leader before the old one returns.
		before := countOf(&mu, &acked)
		for deadline := time.Now().Add(30 * time.Second); countOf(&mu, &acked) < before+10; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d transfers acknowledged in 30 s after the leader's kill", countOf(&mu, &acked)-before)
			}
		}
		if err := n.Start(); err != nil {
			t.Fatalf("restart %s: %v", n.ID, err)
		}
	})
	time.Sleep(time.Second)
	s1 := topo.Shard("s1").Primary()
	step("kill -9 the primary of s1", func() {
		if err := s1.Kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if err := topo.Restart(ctx, s1); err != nil {
			t.Fatal(err)
		}
	})
	time.Sleep(2 * time.Second)
	step("crash the proxy after a decision, start another", func() {
		armed.Store(true)
		select {
		case txid := <-crashed:
			t.Logf("proxy crashed after deciding transaction %d", txid)
		case <-time.After(10 * time.Second):
			t.Fatal("the failpoint never fired")
		}
		p.stop()
		p = startProxy(t, cfg, nil)
	})
	time.Sleep(2 * time.Second)
	step("switch over s0", func() {
		admin := p.open(t, "bank")
		target := topo.Shard("s0").Replicas()[0]
		var shard, from, to, pos, repointed, not string
		var held, took int
		if err := admin.QueryRow("STRATA SWITCHOVER SHARD s0 TO "+target.Name).Scan(&shard, &from, &to, &pos, &held, &took, &repointed, &not); err != nil {
			t.Fatalf("switchover: %v", err)
		}
	})
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d transfers tried, %d acknowledged, %d failed at COMMIT", attempts.Load(), len(acked), commitErrors.Load())
	if len(acked) < 50 {
		t.Fatalf("only %d transfers acknowledged", len(acked))
	}

	// No prepared branch of ours left on any primary, within a bound: the
	// resolver finishes what the crash and the kills left.
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := 0
		for _, sh := range topo.Shards() {
			left += len(preparedOn(t, sh.Primary()))
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d prepared branches still on the primaries", left)
		}
		time.Sleep(200 * time.Millisecond)
	}

	balances := map[int64]int64{}
	logged := map[int64]transfer{}
	for _, sh := range topo.Shards() {
		d, err := sh.Primary().Open("bank")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := d.Query("SELECT id, balance FROM accounts")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, b int64
			rows.Scan(&id, &b)
			balances[id] = b
		}
		rows.Close()
		rows, err = d.Query("SELECT id, src, dst, amount FROM transfers")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var tr transfer
			rows.Scan(&tr.id, &tr.src, &tr.dst, &tr.amount)
			logged[tr.id] = tr
		}
		rows.Close()
		d.Close()
	}
	var total int64
	want := map[int64]int64{}
	for id, b := range balances {
		total += b
		want[id] = start
		if b < 0 {
			t.Errorf("account %d: negative balance %d", id, b)
		}
	}
	if len(balances) != accounts || total != accounts*start {
		t.Errorf("%d accounts holding %d, want %d holding %d", len(balances), total, accounts, accounts*start)
	}
	for _, tr := range acked {
		if got, ok := logged[tr.id]; !ok || got != tr {
			t.Errorf("acknowledged transfer %+v: log row %+v (present %v)", tr, got, ok)
		}
	}
	for _, tr := range logged {
		want[tr.src] -= tr.amount
		want[tr.dst] += tr.amount
	}
	for id, b := range balances {
		if want[id] != b {
			t.Errorf("account %d: balance %d, the log says %d", id, b, want[id])
		}
	}
	t.Logf("%d transfers in the log (%d acknowledged, %d more whose COMMIT answer was lost)", len(logged), len(acked), len(logged)-len(acked))
}

var errCommit = errors.New("commit failed")

func runTransfer(db *sql.DB, tr transfer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	res, err := tx.Exec("UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?", tr.amount, tr.src, tr.amount)
	if err != nil {
		tx.Rollback()
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		tx.Rollback()
		return fmt.Errorf("insufficient funds")
	}
	if _, err := tx.Exec("UPDATE accounts SET balance = balance + ? WHERE id = ?", tr.amount, tr.dst); err != nil {
		tx.Rollback()
		return err
	}
	if _, err := tx.Exec("INSERT INTO transfers (id, src, dst, amount) VALUES (?, ?, ?, ?)", tr.id, tr.src, tr.dst, tr.amount); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%w: %w", errCommit, err)
	}
	return nil
}

func countOf(mu *sync.Mutex, acked *[]transfer) int {
	mu.Lock()
	defer mu.Unlock()
	return len(*acked)
}

// preparedOn lists Strata's prepared XIDs on s.
func preparedOn(t *testing.T, s *localdb.Server) []xa.XID {
	t.Helper()
	d, err := s.OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.Query("XA RECOVER")
	if err != nil {
		t.Logf("XA RECOVER on %s: %v", s.Name, err)
		return []xa.XID{{}}
	}
	defer rows.Close()
	var out []xa.XID
	for rows.Next() {
		var f, g, b, data string
		rows.Scan(&f, &g, &b, &data)
		if x, ok := xa.ParseRecovered(f, g, b, data); ok {
			out = append(out, x)
		}
	}
	return out
}
