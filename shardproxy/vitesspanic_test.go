package shardproxy_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestVitessPanics: statements on which vitess v0.24.4 panics get a MySQL
// error rather than "internal error in the proxy", by text and prepared,
// and the session goes on. SET ```` (the parser panics on a variable named
// "`") is MariaDB's 1064, message and all; SELECT ... INTO @v (the
// normalizer panics rewriting the variable) is refused with 1235, as the
// planner refuses it: the shard would set its own connection's variable,
// while the session's user variables live in the proxy.
func TestVitessPanics(t *testing.T) {
	topo := proxytest.SharedTopology(t)
	p := proxytest.Start(t, topo, withTables(map[string]*config.Table{"vp": {Kind: "sharded", Column: "id"}}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	direct, err := topo.Shards()[0].Primary().Open(p.Test)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	proxy := p.Open(t, p.Demo)
	proxytest.MustExec(t, proxy, "DROP TABLE IF EXISTS vp")
	proxytest.MustExec(t, proxy, "CREATE TABLE vp (id BIGINT PRIMARY KEY, name VARCHAR(40))")
	proxytest.MustExec(t, proxy, "INSERT INTO vp (id, name) VALUES (1, 'a'), (2, 'b')")
	conn, err := proxy.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	directConn, err := direct.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer directConn.Close()

	// run sends q as text (COM_QUERY) or prepares it (COM_STMT_PREPARE),
	// and returns the error.
	run := func(c *sql.Conn, q string, prepared bool) error {
		if !prepared {
			_, err := c.ExecContext(ctx, q)
			return err
		}
		stmt, err := c.PrepareContext(ctx, q)
		if err == nil {
			stmt.Close()
		}
		return err
	}
	alive := func() {
		t.Helper()
		var one int
		if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("the session after it: %d %v", one, err)
		}
	}
	for _, prepared := range []bool{false, true} {
		for _, q := range []string{"set ````", "SET ```` ;"} {
			want := run(directConn, q, prepared)
			got := run(conn, q, prepared)
			if want == nil || got == nil || got.Error() != want.Error() {
				t.Errorf("%q (prepared %v): %v\nMariaDB: %v", q, prepared, got, want)
			}
			alive()
		}
		for _, q := range []string{
			"SELECT 1 INTO @v",
			"select 1, 2 into @v, @w",
			"SELECT name FROM vp WHERE id = 1 INTO @v",
			"select name into @`v` from vp where id = 2",
			"SELECT id FROM vp WHERE id = 1 UNION ALL SELECT id FROM vp WHERE id = 2 LIMIT 1 INTO @v",
		} {
			err := run(conn, q, prepared)
			if proxytest.SQLErr(err) != 1235 || !strings.Contains(err.Error(), "INTO @variable") {
				t.Errorf("%q (prepared %v): %v", q, prepared, err)
			}
			alive()
		}
	}
	if logs := p.Logs.String(); strings.Contains(logs, "internal error") || strings.Contains(logs, "panic in") {
		t.Errorf("the proxy logged a panic:\n%s", logs)
	}
}
