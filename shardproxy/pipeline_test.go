package shardproxy_test

import (
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestPipelineThroughProxy: point selects of many sessions share the
// shards' pipelined connections (backend.pipelines) in text and prepared
// mode, each client getting its own rows; an answer too large for a
// pipeline, and one with a warning, still reach the client whole (the
// lane runs them again on a connection of their own).
func TestPipelineThroughProxy(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	setup := p.Open(t, p.Demo)
	proxytest.MustExec(t, setup, "CREATE TABLE t4 (id BIGINT PRIMARY KEY, s VARCHAR(50), big LONGBLOB)")
	for id := 1; id <= 100; id++ {
		proxytest.MustExec(t, setup, "INSERT INTO t4 (id, s, big) VALUES (?, ?, ?)", id, fmt.Sprintf("s%d", id), strings.Repeat("x", id))
	}
	const bigLen = 400 << 10 // past the lane's 256 KiB: too large for a pipeline
	proxytest.MustExec(t, setup, "UPDATE t4 SET big = REPEAT('y', ?) WHERE id = 7", bigLen)
	before := p.Metric(t, "strata_proxy_pool_pipelined_total")

	text := p.Open(t, p.Demo, "interpolateParams=true")
	prepared := p.Open(t, p.Demo)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 8; g++ {
		db := text
		if g%2 == 1 {
			db = prepared
		}
		wg.Go(func() {
			for i := 0; i < 150; i++ {
				id := (g*37+i)%100 + 1
				var s string
				if err := db.QueryRow("SELECT s FROM t4 WHERE id = ?", id).Scan(&s); err != nil {
					errs <- fmt.Errorf("id %d: %w", id, err)
					return
				}
				if s != fmt.Sprintf("s%d", id) {
					errs <- fmt.Errorf("id %d: got %q", id, s)
					return
				}
				if i%50 == g {
					// Among the others: an answer too large for a pipeline.
					var big []byte
					if err := db.QueryRow("SELECT big FROM t4 WHERE id = 7").Scan(&big); err != nil || len(big) != bigLen {
						errs <- fmt.Errorf("id 7: %d bytes, %v; want %d", len(big), err, bigLen)
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
	if n := p.Metric(t, "strata_proxy_pool_pipelined_total") - before; n < 8*150/2 {
		t.Errorf("%v statements pipelined, want most of %d", n, 8*150)
	}

	// A warning (a string compared with the BIGINT key) is the client's to
	// read with SHOW WARNINGS, as on MariaDB.
	for _, db := range []*sql.DB{text, prepared} {
		conn, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if err := conn.QueryRowContext(t.Context(), "SELECT s FROM t4 WHERE id = ?", "5x").Scan(&s); err != nil || s != "s5" {
			t.Fatalf("id '5x': %q, %v", s, err)
		}
		var level, msg string
		var code int
		if err := conn.QueryRowContext(t.Context(), "SHOW WARNINGS").Scan(&level, &code, &msg); err != nil || code != 1292 {
			t.Fatalf("SHOW WARNINGS after id '5x': %d %q, %v; want 1292", code, msg, err)
		}
		conn.Close()
	}
}
