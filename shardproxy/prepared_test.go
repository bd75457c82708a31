package shardproxy

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
)

// withTables declares more tables of database demo.
func withTables(tables map[string]*config.Table) func(*config.Config) {
	return func(c *config.Config) {
		for name, t := range tables {
			c.Databases["demo"].Tables[name] = t
		}
	}
}

// TestPrepareConcurrently: sessions preparing one SELECT at the same time
// each get the statement's columns. The columns are found once per plan and
// shared, and vitess rewrites the ones it is given while writing the
// prepare response: run with -race, a shared copy is a data race.
func TestPrepareConcurrently(t *testing.T) {
	p := startProxy(t, sharedTopo(t), withTables(map[string]*config.Table{"pc": {Kind: "sharded", Column: "id"}}))
	const sessions, rounds = 12, 20
	db := p.open(t, "demo", "interpolateParams=false", "readTimeout=30s", "writeTimeout=30s")
	db.SetMaxOpenConns(sessions)
	db.SetMaxIdleConns(sessions)
	mustExec(t, db, "DROP TABLE IF EXISTS pc")
	mustExec(t, db, "CREATE TABLE pc (id BIGINT PRIMARY KEY, name VARCHAR(20))")
	mustExec(t, db, "INSERT INTO pc (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three')")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const q = "SELECT id, name, '?' AS mark FROM pc WHERE id = ?"
	start := make(chan struct{})
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	for i := 0; i < sessions; i++ {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			<-start
			for r := 0; r < rounds; r++ {
				id := 1 + (i+r)%3
				stmt, err := conn.PrepareContext(ctx, q)
				if err != nil {
					errs <- err
					return
				}
				rows, err := stmt.QueryContext(ctx, id)
				if err != nil {
					stmt.Close()
					errs <- err
					return
				}
				cols, _ := rows.Columns()
				var gotID int
				var name, mark string
				n := 0
				for rows.Next() {
					n++
					err = rows.Scan(&gotID, &name, &mark)
				}
				if err == nil {
					err = rows.Err()
				}
				rows.Close()
				stmt.Close()
				switch {
				case err != nil:
					errs <- err
					return
				case !reflect.DeepEqual(cols, []string{"id", "name", "mark"}) || n != 1 || gotID != id || mark != "?":
					errs <- fmt.Errorf("id %d: columns %q, %d rows, got %d %q %q", id, cols, n, gotID, name, mark)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
