package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/planner"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// answerText is a query's answer as a client sees it: column names, rows
// (raw text, NULL marked) or the error.
func answerText(db interface {
	Query(string, ...any) (*sql.Rows, error)
}, q string, args ...any) string {
	rs, err := db.Query(q, args...)
	if err != nil {
		return "error: " + err.Error()
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	var b strings.Builder
	fmt.Fprintf(&b, "columns %q", cols)
	for rs.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return "error: " + err.Error()
		}
		b.WriteString("; row")
		for _, v := range vals {
			if v == nil {
				b.WriteString(" NULL")
			} else {
				fmt.Fprintf(&b, " %q", v)
			}
		}
	}
	if err := rs.Err(); err != nil {
		return "error: " + err.Error()
	}
	return b.String()
}

// freshDatabase drops and creates database name on the shared topology's
// first primary and returns the topology and one admin connection using
// it (closed at the test's end).
func freshDatabase(t *testing.T, name string) (*localdb.Topology, *sql.DB) {
	t.Helper()
	topo := proxytest.SharedTopology(t)
	direct, err := topo.Shards()[0].Primary().OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	oneConn(t, direct)
	mustExec(t, direct, "DROP DATABASE IF EXISTS "+name)
	mustExec(t, direct, "CREATE DATABASE "+name)
	mustExec(t, direct, "USE "+name)
	return topo, direct
}

// oneConn is a pool of one connection, so that SET reaches the session
// the next query runs on.
func oneConn(t *testing.T, d *sql.DB) *sql.DB {
	t.Helper()
	d.SetMaxOpenConns(1)
	d.SetMaxIdleConns(1)
	return d
}

// TestKeySpellings: a string key of a binary collation looked up by a
// text MariaDB takes for the same key (trailing spaces under a PAD SPACE
// collation; a latin1 session's bytes for a utf8mb4 client's) answers what
// MariaDB answers, first fill and hit; a direct write of such a key
// reaches the entries through the binlog; keys whose values have several
// spellings (DATE) are refused at start.
func TestKeySpellings(t *testing.T) {
	topo, direct := freshDatabase(t, "kt")
	mustExec(t, direct, "CREATE TABLE s (k VARCHAR(20) COLLATE utf8mb4_bin PRIMARY KEY, v INT)")
	mustExec(t, direct, "INSERT INTO s VALUES ('abc', 1), ('sp ', 2), ('é', 5)")
	mustExec(t, direct, "CREATE TABLE n (k VARCHAR(20) COLLATE utf8mb4_nopad_bin PRIMARY KEY, v INT)")
	mustExec(t, direct, "INSERT INTO n VALUES ('abc', 1), ('abc ', 2)")
	mustExec(t, direct, "CREATE TABLE l (k VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_bin PRIMARY KEY, v INT)")
	mustExec(t, direct, "INSERT INTO l VALUES ('é', 3), ('x', 4)")
	mustExec(t, direct, "CREATE TABLE d (k DATE PRIMARY KEY, v INT)")

	c := proxyConfig(topo, 5*time.Minute)
	c.Databases = map[string]*config.Database{"kt": {Shard: topo.Shards()[0].Name}}
	c.Cache.Tables = map[string]*config.CacheTable{"kt.d": {}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := shardproxy.New(ctx, shardproxy.Options{Config: c, Planner: planner.Plan, Registry: prometheus.NewRegistry(), Logger: localdb.TestLogger(t)})
	if err == nil {
		cancel()
		_ = srv.Serve(ctx)
		t.Error("a DATE primary key was accepted for caching ('2024-1-5' and '2024-01-05' name one row)")
	} else if !strings.Contains(err.Error(), "kt.d") || !strings.Contains(err.Error(), "date") {
		t.Errorf("refusal of the DATE key: %v (want the table and the type named)", err)
	}

	c.Cache.Tables = map[string]*config.CacheTable{}
	for _, n := range []string{"s", "n", "l"} {
		c.Cache.Tables["kt."+n] = &config.CacheTable{TTL: 5 * time.Minute}
	}
	p := startProxy(t, c)
	px := oneConn(t, openDB(t, p.srv.Addr(), "kt", 1, "interpolateParams=true"))
	same := func(q string) {
		t.Helper()
		want := answerText(direct, q)
		for i := range 3 { // the fill, a hit, a hit in the fast lane
			if got := answerText(px, q); got != want {
				t.Errorf("%s #%d:\n proxy  %s\n direct %s", q, i, got, want)
			}
		}
	}
	for _, q := range []string{
		"SELECT * FROM s WHERE k = 'abc'",
		"SELECT * FROM s WHERE k = 'abc '",
		"SELECT * FROM s WHERE k = 'sp'",
		"SELECT * FROM s WHERE k = 'sp  '",
		"SELECT * FROM s WHERE k = 'é'",
		"SELECT * FROM n WHERE k = 'abc'",
		"SELECT * FROM n WHERE k = 'abc '",
		"SELECT * FROM n WHERE k = 'abc  '",
		"SELECT * FROM l WHERE k = 'é'",
		"SELECT * FROM l WHERE k = 'x '",
	} {
		same(q)
	}
	// A latin1 client sends é as one byte; MariaDB converts it.
	for _, d := range []*sql.DB{px, direct} {
		mustExec(t, d, "SET NAMES latin1")
	}
	same("SELECT * FROM l WHERE k = '\xe9'")
	same("SELECT * FROM s WHERE k = '\xe9'")
	for _, d := range []*sql.DB{px, direct} {
		mustExec(t, d, "SET NAMES utf8mb4")
	}
	// Writes that bypass the proxy, seen in the binlog: the entries of
	// every spelling go.
	mustExec(t, direct, "UPDATE l SET v = 33 WHERE k = 'é'")
	mustExec(t, direct, "UPDATE s SET v = 22 WHERE k = 'sp'")
	for _, q := range []string{"SELECT * FROM l WHERE k = 'é'", "SELECT * FROM s WHERE k = 'sp'", "SELECT * FROM s WHERE k = 'sp  '"} {
		want := answerText(direct, q)
		deadline := time.Now().Add(4 * time.Second)
		for got := answerText(px, q); got != want; got = answerText(px, q) {
			if time.Now().After(deadline) {
				t.Errorf("%s after a direct write: proxy %s, direct %s", q, got, want)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
