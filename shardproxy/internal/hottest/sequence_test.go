package hottest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/idserver"
	"github.com/strata-db/strata/raftstore"
	"github.com/strata-db/strata/shardproxy/config"
)

// idCluster is a three-node ID service, each node a real Raft member
// with its data on disk and its gRPC API on a free port.
type idCluster struct {
	nodes []*idserver.Node
	down  []bool
}

func startIDCluster(t *testing.T) *idCluster {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &idCluster{}
	for i := 0; i < 3; i++ {
		svc := idserver.DefaultConfig()
		svc.Logger = log
		rc := raftstore.DefaultConfig()
		rc.NodeID, rc.DataDir, rc.BindAddr, rc.Logger = fmt.Sprintf("id%d", i), t.TempDir(), "127.0.0.1:0", log
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 200*time.Millisecond
		if i == 0 {
			rc.Bootstrap = true
		} else {
			rc.Join = []string{c.nodes[0].Raft.Addr()}
		}
		n, err := idserver.StartNode(idserver.NodeConfig{Service: svc, Raft: rc, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatalf("ID node %d: %v", i, err)
		}
		c.nodes = append(c.nodes, n)
		c.down = append(c.down, false)
	}
	t.Cleanup(func() {
		for i, n := range c.nodes {
			if !c.down[i] {
				_ = n.Close()
			}
		}
	})
	// Wait for all three to be members.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m, err := c.nodes[0].Raft.Members(); err == nil && len(m) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ID service: the nodes did not join")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

func (c *idCluster) grpcAddrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.GRPCAddr)
	}
	return out
}

// killLeader crashes the leader's API (connections drop, cached ranges
// are dropped) and stops its Raft node: another node takes over.
func (c *idCluster) killLeader(t *testing.T) int {
	for i, n := range c.nodes {
		if !c.down[i] && n.Raft.IsLeader() {
			n.Server.Kill()
			_ = n.Raft.Close()
			c.down[i] = true
			return i
		}
	}
	t.Error("no ID service leader to kill")
	return -1
}

// TestSequencesFailover: 16 sessions insert into orders, whose id (not
// its shard key) comes from the ID service, through two proxies, while the
// ID service's leader is killed and one proxy is restarted. No id repeats,
// and for every acknowledged INSERT, LAST_INSERT_ID() on the same
// connection is the id of its (first) row.
func TestSequencesFailover(t *testing.T) {
	topo := sharedTopo(t)
	ids := startIDCluster(t)
	ctx := context.Background()
	for _, sh := range topo.Shards() {
		if err := sh.Primary().Exec(ctx, "CREATE DATABASE IF NOT EXISTS seq"); err != nil {
			t.Fatal(err)
		}
	}
	newCfg := func() *config.Config {
		cfg := config.DefaultConfig()
		cfg.IDService.Addrs = ids.grpcAddrs()
		cfg.IDService.Timeout = 10 * time.Second
		cfg.IDService.Batch = 50 // many fetches: more of them cross the failover
		cfg.IDService.MaxBatch = 200
		cfg.Databases = map[string]*config.Database{
			"seq": {Sharded: true, Tables: map[string]*config.Table{
				"orders": {Kind: "sharded", Column: "customer_id", SubTables: 2, Sequences: []config.SequenceColumn{{Column: "id"}}},
			}},
			"test": {Shard: "x"},
		}
		useTopo(cfg, topo)
		return cfg
	}
	a := launch(t, newCfg())
	b := launch(t, newCfg())
	addrs := []string{a.srv.Addr(), b.srv.Addr()}
	open := func(addr string) *sql.DB {
		c := mysql.NewConfig()
		c.User, c.Net, c.Addr, c.DBName = "root", "tcp", addr, "seq"
		c.Timeout, c.ReadTimeout = 2*time.Second, 15*time.Second
		db, err := sql.Open("mysql", c.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(8)
		t.Cleanup(func() { db.Close() })
		return db
	}
	if _, err := open(addrs[0]).Exec("DROP TABLE IF EXISTS orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := open(addrs[0]).Exec("CREATE TABLE orders (id BIGINT NOT NULL, customer_id BIGINT NOT NULL, tag VARCHAR(40) NOT NULL, PRIMARY KEY (customer_id, id), UNIQUE KEY (tag))"); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	dbs := []*sql.DB{open(addrs[0]), open(addrs[1])}
	current := func(p int) *sql.DB {
		mu.Lock()
		defer mu.Unlock()
		return dbs[p]
	}
	type ack struct {
		tag   string
		first int64
		rows  int
	}
	var acks []ack
	var failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for s := 0; s < 16; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := s % 2
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				rows := 1 + i%3
				tag := fmt.Sprintf("s%d-%d", s, i)
				conn, err := current(p).Conn(ctx)
				if err != nil {
					failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				q := "INSERT INTO orders (customer_id, tag) VALUES "
				var args []any
				for r := 0; r < rows; r++ {
					if r > 0 {
						q += ", "
					}
					q += "(?, ?)"
					args = append(args, s*1000+i, fmt.Sprintf("%s/%d", tag, r))
				}
				var last int64
				_, err = conn.ExecContext(ctx, q, args...)
				if err == nil {
					err = conn.QueryRowContext(ctx, "SELECT LAST_INSERT_ID()").Scan(&last)
				}
				conn.Close()
				if err != nil {
					// Refused (no ID in time) or cut off by the restart: its
					// outcome is not counted.
					failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				acks = append(acks, ack{tag: tag, first: last, rows: rows})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second)
	killed := ids.killLeader(t)
	t.Logf("killed ID service node %d (the leader)", killed)
	time.Sleep(time.Second)
	// Restart proxy A on the same address.
	addr := a.srv.Addr()
	a.stop()
	cfg := newCfg()
	cfg.Listen = addr
	a2 := launch(t, cfg)
	mu.Lock()
	dbs[0] = open(a2.srv.Addr())
	mu.Unlock()
	t.Logf("restarted proxy A on %s", addr)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	// Every row, read from the shards' sub-tables directly.
	byID := map[int64]string{}
	byTag := map[string]int64{}
	for _, sh := range topo.Shards() {
		db, err := sh.Primary().Open("seq")
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range []string{"orders_0000", "orders_0001"} {
			rows, err := db.Query("SELECT id, tag FROM " + tb)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int64
				var tag string
				if err := rows.Scan(&id, &tag); err != nil {
					t.Fatal(err)
				}
				if other, dup := byID[id]; dup {
					t.Errorf("id %d twice: rows %s and %s", id, other, tag)
				}
				byID[id], byTag[tag] = tag, id
			}
			rows.Close()
		}
		db.Close()
	}
	bad := 0
	for _, a := range acks {
		for r := 0; r < a.rows; r++ {
			id, ok := byTag[fmt.Sprintf("%s/%d", a.tag, r)]
			switch {
			case !ok:
				t.Errorf("acknowledged row %s/%d is missing", a.tag, r)
				bad++
			case r == 0 && id != a.first:
				t.Errorf("%s: LAST_INSERT_ID() %d, but its first row has id %d", a.tag, a.first, id)
				bad++
			}
		}
		if bad > 10 {
			break
		}
	}
	if len(acks) < 100 {
		t.Errorf("only %d inserts acknowledged", len(acks))
	}
	t.Logf("%d inserts acknowledged (%d rows in all), %d failed or cut off, no id twice", len(acks), len(byID), failed.Load())
}
