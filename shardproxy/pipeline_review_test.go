package shardproxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestPipelineLockedTable: through the proxy, a point select of a table
// that another connection holds locked (LOCK TABLES; DDL's metadata lock
// does the same) waits for it as on MariaDB, and answers once it is
// released, while other sessions' point selects of other tables of that
// server go on: the pipeline they share does not wait for the lock.
func TestPipelineLockedTable(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Demo)
	for _, tb := range []string{"t1", "t2"} {
		proxytest.MustExec(t, db, "CREATE TABLE "+tb+" (id BIGINT PRIMARY KEY, s VARCHAR(20))")
		proxytest.MustExec(t, db, "INSERT INTO "+tb+" (id, s) VALUES (1, '"+tb+"-1')")
	}
	get := func(q string) (string, error) {
		var s string
		err := db.QueryRow(q).Scan(&s)
		return s, err
	}
	// Planned, in the lane's cache, and on a pipeline.
	before := p.Metric(t, "strata_proxy_pool_pipelined_total")
	for i := 0; i < 3; i++ {
		for _, tb := range []string{"t1", "t2"} {
			if s, err := get("SELECT s FROM " + tb + " WHERE id = 1"); err != nil || s != tb+"-1" {
				t.Fatalf("%s: %q, %v", tb, s, err)
			}
		}
	}
	if p.Metric(t, "strata_proxy_pool_pipelined_total") == before {
		t.Fatal("no statement went on a pipeline")
	}

	ctx := context.Background()
	var unlocks []func()
	unlock := func() {
		for _, u := range unlocks {
			u()
		}
		unlocks = nil
	}
	defer unlock()
	for _, sh := range p.Topo.Shards() {
		sdb, err := sh.Primary().Open(p.Demo)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := sdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "LOCK TABLES t1 WRITE"); err != nil {
			t.Fatal(err)
		}
		unlocks = append(unlocks, func() {
			if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
				t.Error(err)
			}
			conn.Close()
			sdb.Close()
		})
	}

	type answer struct {
		s   string
		err error
	}
	locked := make(chan answer, 1)
	go func() {
		s, err := get("SELECT s FROM t1 WHERE id = 1")
		locked <- answer{s, err}
	}()
	time.Sleep(200 * time.Millisecond) // on its way, or waiting
	other := make(chan answer, 1)
	go func() {
		s, err := get("SELECT s FROM t2 WHERE id = 1")
		other <- answer{s, err}
	}()
	otherDone := true
	select {
	case a := <-other:
		if a.err != nil || a.s != "t2-1" {
			t.Errorf("the select of the other table: %q, %v", a.s, a.err)
		}
	case <-time.After(3 * time.Second):
		t.Error("the select of the other table waited for the lock of t1")
		otherDone = false
	}
	select {
	case a := <-locked:
		t.Fatalf("the select of the locked table answered before the unlock: %q, %v", a.s, a.err)
	default:
	}
	unlock()
	if a := <-locked; a.err != nil || a.s != "t1-1" {
		t.Errorf("the select of the locked table after the unlock: %q, %v", a.s, a.err)
	}
	if !otherDone {
		<-other
	}
}
