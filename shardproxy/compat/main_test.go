package compat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/config"
)

// env is one topology and one proxy for every test of the package.
var env struct {
	once  sync.Once
	err   error
	dir   string
	topo  *localdb.Topology
	proxy string // the proxy's address
	stop  func()
}

// setup starts two shards and a proxy with database demo sharded (table
// items by id, refs a reference table) and test unsharded on s0.
func setup(t testing.TB) {
	t.Helper()
	env.once.Do(func() {
		env.dir, env.err = os.MkdirTemp("", "compat-test-")
		if env.err != nil {
			return
		}
		cfg := localdb.TestConfig(2, 0)
		cfg.Root = env.dir
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if env.topo, env.err = localdb.Start(ctx, cfg); env.err != nil {
			return
		}
		env.proxy, env.stop, env.err = startProxy(proxyConfig())
		if env.err != nil {
			return
		}
		// The databases the direct side uses, on s0's server.
		db, err := sql.Open("mysql", env.topo.Shards()[0].Primary().DSN(""))
		if err != nil {
			env.err = err
			return
		}
		defer db.Close()
		for _, d := range []string{"direct", "direct_demo"} {
			if _, env.err = db.Exec("CREATE DATABASE IF NOT EXISTS " + d); env.err != nil {
				return
			}
		}
	})
	if env.err != nil {
		t.Fatalf("setup: %v", env.err)
	}
}

// proxyConfig is the config of env's proxy.
func proxyConfig() *config.Config {
	c := config.DefaultConfig()
	c.Listen, c.AdminListen = "127.0.0.1:0", "off"
	c.Backend.User = localdb.AppUser
	for _, sh := range env.topo.Shards() {
		c.Shards = append(c.Shards, config.Shard{Name: sh.Name, Primary: sh.Primary().Addr()})
	}
	c.Databases = map[string]*config.Database{
		"demo": {Sharded: true, Tables: map[string]*config.Table{
			"items": {Kind: "sharded", Column: "id"},
			"refs":  {Kind: "reference"},
			// LOAD DATA (loaddata_test.go).
			"ld_items": {Kind: "sharded", Column: "id"},
			"ld_subs":  {Kind: "sharded", Column: "id", SubTables: 4},
			"ld_refs":  {Kind: "reference"},
			"ld_xa":    {Kind: "sharded", Column: "id"},
			"ld_rand":  {Kind: "sharded", Column: "k", Type: "string"},
			// OK packets' info (okinfo_test.go).
			"oki":     {Kind: "sharded", Column: "id"},
			"oki_ref": {Kind: "reference"},
			"oki_sub": {Kind: "sharded", Column: "id", SubTables: 3},
		}},
		"test": {Shard: c.Shards[0].Name},
	}
	return c
}

// startProxy starts a proxy with config c and returns its address and how
// to stop it.
func startProxy(c *config.Config) (string, func(), error) {
	if err := c.Validate(); err != nil {
		return "", nil, err
	}
	pctx, pcancel := context.WithCancel(context.Background())
	srv, err := shardproxy.New(pctx, shardproxy.Options{Config: c, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		pcancel()
		return "", nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(pctx)
	}()
	return srv.Addr(), func() { pcancel(); <-done }, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env.stop != nil {
		env.stop()
	}
	if env.topo != nil {
		if err := env.topo.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "localdb stop:", err)
		}
	}
	if env.dir != "" {
		os.RemoveAll(env.dir)
	}
	os.Exit(code)
}

// pair is one connection directly to MariaDB and one through the proxy.
type pair struct {
	direct, proxied *sql.Conn
}

// openConn opens one connection to dsn, closed when the test ends.
func openConn(t *testing.T, dsn string) *sql.Conn {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connect opens a pair: directDB on s0's server, proxyDB through the
// proxy, each with the DSN parameters params.
func connect(t *testing.T, directDB, proxyDB string, params ...string) pair {
	t.Helper()
	setup(t)
	q := "?" + strings.Join(append([]string{"timeout=5s"}, params...), "&")
	open := func(dsn string) *sql.Conn { return openConn(t, dsn) }
	return pair{
		direct:  open(localdb.AppUser + "@tcp(" + env.topo.Shards()[0].Primary().Addr() + ")/" + directDB + q),
		proxied: open("root@tcp(" + env.proxy + ")/" + proxyDB + q),
	}
}

// answer is what a server answered to one statement.
type answer struct {
	Err  uint16
	Msg  string // not compared
	Cols []string
	Rows [][]string
	// Affected is the affected-row count of a statement without rows.
	Affected int64
}

func (a answer) String() string {
	if a.Err != 0 {
		return fmt.Sprintf("error %d", a.Err)
	}
	if a.Cols == nil {
		return fmt.Sprintf("ok, %d affected", a.Affected)
	}
	return fmt.Sprintf("%q %q", a.Cols, a.Rows)
}

func ask(t *testing.T, c *sql.Conn, q string, args ...any) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			return answer{Err: me.Number, Msg: me.Message}
		}
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	a := answer{}
	if len(cols) > 0 {
		a.Cols = cols
		a.Rows = [][]string{}
	}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		r := make([]string, len(cols))
		for i, v := range vals {
			if v.Valid {
				r[i] = v.String
			} else {
				r[i] = "NULL"
			}
		}
		a.Rows = append(a.Rows, r)
	}
	if err := rows.Err(); err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			return answer{Err: me.Number}
		}
		t.Fatalf("%s: %v", q, err)
	}
	return a
}

// same runs each statement on both sides and fails on the first answer
// that differs. A statement may hold {db}, replaced by each side's
// database name.
func (p pair) same(t *testing.T, directDB, proxyDB string, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		start := time.Now()
		d := ask(t, p.direct, strings.ReplaceAll(q, "{db}", directDB))
		mid := time.Now()
		x := ask(t, p.proxied, strings.ReplaceAll(q, "{db}", proxyDB))
		if el := time.Since(mid); el > time.Second || mid.Sub(start) > time.Second {
			t.Logf("%s took %v directly, %v through the proxy", q, mid.Sub(start), el)
		}
		if d.String() != x.String() {
			t.Errorf("%s\n  MariaDB:         %v %s\n  through proxy:   %v %s", q, d, d.Msg, x, x.Msg)
		}
	}
}
