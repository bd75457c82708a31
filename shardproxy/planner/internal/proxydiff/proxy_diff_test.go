package proxydiff_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/planner/internal/difftest"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestProxyDifferential runs the differential corpus through the real
// proxy server over two MariaDB shards and, with the same client, against
// one MariaDB server holding the same rows: go-sql-driver/mysql in text
// mode (parameters interpolated by the client) and in prepared mode (every
// query prepared on the server, parameters sent in the binary protocol).
func TestProxyDifferential(t *testing.T) {
	runProxyDifferential(t, difftest.Tables(), true)
}

// TestProxyDifferentialSubTables is TestProxyDifferential over 2 shards
// with every sharded table in 4 sub-tables per shard and one table in a
// sub-table per month, text and prepared; then difftest.Writes leave the
// same rows on both sides.
func TestProxyDifferentialSubTables(t *testing.T) {
	runProxyDifferential(t, difftest.SubTableTables(), false)
}

func runProxyDifferential(t *testing.T, tables []difftest.Table, refused bool) {
	topo := localdb.StartForTest(t, localdb.TestConfig(3, 0))
	shards := topo.Shards()
	ctx := context.Background()
	for _, sh := range shards {
		if err := sh.Primary().Exec(ctx, "CREATE DATABASE IF NOT EXISTS demo", "CREATE DATABASE IF NOT EXISTS test"); err != nil {
			t.Fatal(err)
		}
	}
	addr := proxytest.StartConfig(t, diffConfig(tables, shards[0], shards[1])).Server.Addr()
	single := shards[2].Primary()

	open := func(dsn string) *sql.DB {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1) // one session: SET and prepared statements stay put
		t.Cleanup(func() { db.Close() })
		return db
	}
	proxyDSN := func(interpolate bool) string {
		c := mysql.NewConfig()
		c.User, c.Net, c.Addr, c.DBName = "root", "tcp", addr, "demo"
		c.InterpolateParams = interpolate
		return c.FormatDSN()
	}
	singleDSN := func(interpolate bool) string {
		c, err := mysql.ParseDSN(single.DSN("demo"))
		if err != nil {
			t.Fatal(err)
		}
		c.InterpolateParams = interpolate
		return c.FormatDSN()
	}

	loader := open(proxyDSN(true))
	singleLoader := open(singleDSN(true))
	for _, s := range append(difftest.Schema(), difftest.Data()...) {
		if _, err := loader.Exec(s); err != nil {
			t.Fatalf("through the proxy: %.120s: %v", s, err)
		}
		if _, err := singleLoader.Exec(s); err != nil {
			t.Fatalf("on the single server: %.120s: %v", s, err)
		}
	}

	for _, mode := range []string{"text", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			prepared := mode == "prepared"
			proxy, one := open(proxyDSN(!prepared)), open(singleDSN(!prepared))
			query := func(db *sql.DB, q string, args []any) (*difftest.Result, error) {
				var rows *sql.Rows
				var err error
				if prepared {
					st, perr := db.Prepare(q)
					if perr != nil {
						return nil, perr
					}
					defer st.Close()
					rows, err = st.Query(args...)
				} else {
					rows, err = db.Query(q, args...)
				}
				if err != nil {
					return nil, err
				}
				return difftest.FromRows(rows)
			}
			// The proxy names unaliased expression columns after the client's
			// text only when its session passes that text to the plan
			// (engine.WithSQL); until it does, names are not compared.
			diff := difftest.Diff
			if r, err := query(proxy, "select COUNT(*)  from users", nil); err != nil || r.Names[0] != "COUNT(*)" {
				t.Logf("the proxy does not pass the client's SQL text to plans (engine.WithSQL): column names are not compared")
				diff = difftest.DiffIgnoringNames
			}
			corpus := difftest.Corpus()
			failed := 0
			for _, c := range corpus {
				if prepared && c.NotPrepared != "" {
					t.Logf("skipped %s %v: %s", c.Q, c.Args, c.NotPrepared)
					continue
				}
				want, err := query(one, c.Q, c.Args)
				if err != nil {
					t.Errorf("%s: single server: %v", c.Q, err)
					failed++
					continue
				}
				got, err := query(proxy, c.Q, c.Args)
				if err != nil {
					t.Errorf("%s %v: through the proxy: %v", c.Q, c.Args, err)
					failed++
					continue
				}
				if d := diff(c.Q, want, got); d != "" {
					t.Errorf("%s %v:\n%s", c.Q, c.Args, d)
					failed++
				}
			}
			t.Logf("%s: %d queries, %d differ", mode, len(corpus), failed)
			if !refused {
				return
			}
			for _, q := range difftest.Refused() {
				_, err := query(proxy, q, nil)
				var me *mysql.MySQLError
				if !errors.As(err, &me) || me.Number != 1235 {
					t.Errorf("%s: got %v, want error 1235", q, err)
				}
			}
		})
	}
	// Writes split over shards (and sub-tables) leave the same rows.
	for _, w := range difftest.Writes() {
		if _, err := loader.Exec(w); err != nil {
			t.Fatalf("through the proxy: %s: %v", w, err)
		}
		if _, err := singleLoader.Exec(w); err != nil {
			t.Fatalf("on the single server: %s: %v", w, err)
		}
	}
	for _, q := range difftest.Dump() {
		want, err := rowsOf(singleLoader, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rowsOf(loader, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if d := difftest.Diff(q, want, got); d != "" {
			t.Errorf("after the writes, %s:\n%s", q, d)
		}
	}
}

func rowsOf(db *sql.DB, q string) (*difftest.Result, error) {
	rows, err := db.Query(q)
	if err != nil {
		return nil, err
	}
	return difftest.FromRows(rows)
}

// diffConfig is the proxy's config over shards s0 and s1 with the
// differential test's tables.
func diffConfig(tables []difftest.Table, s0, s1 *localdb.Shard) *config.Config {
	cfg := config.DefaultConfig()
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Backend.User = localdb.AppUser
	cfg.Shards = []config.Shard{{Name: s0.Name, Primary: s0.Primary().Addr()}, {Name: s1.Name, Primary: s1.Primary().Addr()}}
	demo := &config.Database{Sharded: true, Tables: map[string]*config.Table{}}
	for _, tb := range tables {
		ct := &config.Table{Kind: tb.Kind, Column: tb.Column, Type: tb.Type, Function: tb.Function,
			SubTables: tb.SubTables, SubTableBy: tb.SubBy, SubTableColumn: tb.SubColumn, SubTableFrom: tb.SubFrom, SubTableTo: tb.SubTo}
		if tb.Kind == "unsharded" {
			ct.Shard = s0.Name
		}
		if tb.Function == "range" {
			upper := int64(difftest.RangeSplit)
			ct.Ranges = []config.Range{{Shard: s0.Name, Upper: &upper}, {Shard: s1.Name}}
		}
		demo.Tables[tb.Name] = ct
	}
	cfg.Databases = map[string]*config.Database{"demo": demo, "test": {Shard: s0.Name}}
	return cfg
}
