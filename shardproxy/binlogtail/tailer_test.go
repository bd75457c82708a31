package binlogtail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
)

// collector keeps every delivered transaction's changes as strings like
// "t.kv:1" and "t.nopk:*".
type collector struct {
	mu   sync.Mutex
	seen []string
}

func (c *collector) add(tx Txn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range tx.Rows {
		var k []string
		for _, v := range r.Key {
			k = append(k, v.ToString())
		}
		c.seen = append(c.seen, r.DB+"."+r.Table+":"+strings.Join(k, ","))
	}
	for _, tc := range tx.Tables {
		c.seen = append(c.seen, tc.DB+"."+tc.Table+":*")
	}
}

// waitFor waits until every want has been seen (in any order), and
// returns what was seen since the last call.
func (c *collector) waitFor(t *testing.T, want ...string) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c.mu.Lock()
		got := slices.Clone(c.seen)
		c.mu.Unlock()
		missing := false
		for _, w := range want {
			if !slices.Contains(got, w) {
				missing = true
			}
		}
		if !missing {
			c.mu.Lock()
			c.seen = nil
			c.mu.Unlock()
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %v, saw %v", want, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func execAll(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestTailerRowsLagAndSwitchover(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	sh := topo.Shards()[0]
	admin, err := sh.Primary().OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	execAll(t, admin,
		"CREATE DATABASE tt",
		"CREATE TABLE tt.kv (id BIGINT PRIMARY KEY, v INT)",
		"CREATE TABLE tt.comp (a INT UNSIGNED, b VARCHAR(10), v TEXT, PRIMARY KEY (a, b))",
		"CREATE TABLE tt.nopk (x INT)",
	)

	var col collector
	cfg := DefaultConfig()
	cfg.Shard = sh.Name
	cfg.User = "root"
	cfg.Logger = localdb.TestLogger(t)
	cfg.Primary = func(context.Context) (string, error) {
		p := sh.Primary()
		if p == nil {
			return "", errors.New("no primary")
		}
		return p.Addr(), nil
	}
	tl, err := New(cfg, col.add)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tl.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	// Started at the current position: the DDL above is not replayed.
	waitStats(t, tl, func(s Stats) bool { return s.Connected })

	execAll(t, admin,
		"INSERT INTO tt.kv VALUES (1, 1), (2, 2), (-7, 0)",
		"UPDATE tt.kv SET v = 3 WHERE id = 1",
		"UPDATE tt.kv SET id = 5 WHERE id = 2",
		"DELETE FROM tt.kv WHERE id = -7",
		"INSERT INTO tt.comp VALUES (4000000000, 'x''y', 'long text')",
		"INSERT INTO tt.nopk VALUES (1)",
		"TRUNCATE TABLE tt.kv",
	)
	got := col.waitFor(t, "tt.kv:1", "tt.kv:2", "tt.kv:-7", "tt.kv:5", "tt.comp:4000000000,x'y", "tt.nopk:*", "tt.kv:*")
	t.Logf("changes: %v", got)

	// A transaction is delivered once, at commit, with all its rows.
	tx, err := admin.Begin()
	if err != nil {
		t.Fatal(err)
	}
	tx.Exec("INSERT INTO tt.kv VALUES (10, 1)")
	tx.Exec("INSERT INTO tt.kv VALUES (11, 1)")
	time.Sleep(100 * time.Millisecond)
	col.mu.Lock()
	early := slices.Clone(col.seen)
	col.mu.Unlock()
	if len(early) > 0 {
		t.Fatalf("uncommitted rows delivered: %v", early)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, "tt.kv:10", "tt.kv:11")

	// Lag: probes every 100 ms; a burst of writes, then the quantiles.
	for i := range 200 {
		execAll(t, admin, fmt.Sprintf("INSERT INTO tt.kv VALUES (%d, 0)", 1000+i))
	}
	col.waitFor(t, "tt.kv:1199")
	st := waitStats(t, tl, func(s Stats) bool { return s.Samples >= 10 })
	t.Logf("lag over %d probes: p50 %v, p99 %v, max %v (2 shared cores)", st.Samples, st.Lag50, st.Lag99, st.LagMax)
	if st.Lag99 > 5*time.Second {
		t.Fatalf("lag p99 %v", st.Lag99)
	}

	// Switchover: promote the replica; the tailer follows it and sees a
	// write made on the new primary, and nothing is delivered twice.
	old := sh.Primary()
	rep := sh.Replicas()[0]
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	if err := topo.Promote(pctx, rep); err != nil {
		t.Fatal(err)
	}
	nadmin, err := rep.OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	defer nadmin.Close()
	execAll(t, nadmin, "INSERT INTO tt.kv VALUES (77, 7)")
	got = col.waitFor(t, "tt.kv:77")
	if len(got) != 1 {
		t.Fatalf("after switchover got %v, want only tt.kv:77", got)
	}
	st = waitStats(t, tl, func(s Stats) bool { return s.Primary == rep.Addr() })
	t.Logf("after switchover from %s to %s: %+v", old.Name, rep.Name, st)
	if st.Switchovers < 1 {
		t.Fatalf("switchovers = %d", st.Switchovers)
	}
}

func waitStats(t *testing.T, tl *Tailer, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := tl.Stats()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never matched: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.StartPos = "junk"
	err := c.Validate()
	for _, f := range []string{"Primary", "User", "StartPos"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Validate = %v, want it to name %s", err, f)
		}
	}
}
