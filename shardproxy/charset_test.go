package shardproxy_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// TestSessionCharset: a session whose character_set_client is latin1 (from
// the handshake, SET NAMES, SET CHARACTER SET or SET character_set_client)
// writes 'é' as the two bytes C3 A9, which are valid UTF-8 but mean "Ã©" to
// the server: the proxy must not hash them as UTF-8. Such a session finds by
// its string shard key a row a utf8mb4 session inserted (the read goes to
// every shard), text and prepared, and its insert of a non-ASCII key is
// refused; plain ASCII keys still route; utf8mb4 sessions are unchanged.
func TestSessionCharset(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), withTables(map[string]*config.Table{"cs": {Kind: "sharded", Column: "tag", Type: "string"}}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	utf8DB := p.Open(t, p.Demo, "interpolateParams=true", "charset=utf8mb4")
	proxytest.MustExec(t, utf8DB, "DROP TABLE IF EXISTS cs")
	proxytest.MustExec(t, utf8DB, "CREATE TABLE cs (tag VARCHAR(40) PRIMARY KEY, n INT) DEFAULT CHARSET utf8mb4")

	// A key whose row (stored as "Ã©<k>" by a utf8mb4 session) is on another
	// shard than the one its latin1 spelling's bytes hash to as UTF-8, so
	// that routing by those bytes would miss it.
	_, table, err := p.Server.VSchema().FindTable(p.Demo, "cs")
	if err != nil {
		t.Fatal(err)
	}
	shardOfKey := func(s string) string {
		sh, err := p.Server.VSchema().KeyShard(table, sqltypes.NewVarChar(s), vschema.ForRead)
		if err != nil {
			t.Fatal(err)
		}
		return sh
	}
	key := ""
	for i := 0; i < 100 && key == ""; i++ {
		k := fmt.Sprintf("é%d", i) // its bytes, read as latin1: "Ã©<i>"
		if shardOfKey("Ã©"+k[2:]) != shardOfKey(k) {
			key = k
		}
	}
	if key == "" {
		t.Fatal("no key whose spellings hash to different shards")
	}
	stored := "Ã©" + key[2:]
	proxytest.MustExec(t, utf8DB, "INSERT INTO cs (tag, n) VALUES (?, 1), ('ascii', 2)", stored)

	// In this order: a backend connection that carried an explicit
	// character_set_client gives a later session's NAMES up (backend's
	// diffSQL resets the variable to DEFAULT after NAMES), so that case
	// comes last.
	latin1 := []struct {
		name  string
		db    *sql.DB
		setup string
	}{
		{"handshake", p.Open(t, p.Demo, "collation=latin1_swedish_ci"), ""},
		{"SET NAMES", p.Open(t, p.Demo, "interpolateParams=true"), "SET NAMES latin1"},
		{"SET CHARACTER SET", p.Open(t, p.Demo), "SET CHARACTER SET latin1"},
		{"character_set_client", p.Open(t, p.Demo, "interpolateParams=true"), "SET @@session.character_set_client = 'latin1'"},
	}
	for _, l := range latin1 {
		t.Run(l.name, func(t *testing.T) {
			conn, err := l.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if l.setup != "" {
				if _, err := conn.ExecContext(ctx, l.setup); err != nil {
					t.Fatal(err)
				}
			}
			var cs string
			if err := conn.QueryRowContext(ctx, "SELECT @@character_set_client").Scan(&cs); err != nil || cs != "latin1" {
				t.Fatalf("character_set_client %q %v", cs, err)
			}
			for round := 0; round < 3; round++ { // learned, then the fast path and lane
				var n int
				if err := conn.QueryRowContext(ctx, "SELECT n FROM cs WHERE tag = '"+key+"'").Scan(&n); err != nil || n != 1 {
					t.Fatalf("text, round %d: %d %v", round, n, err)
				}
				if err := conn.QueryRowContext(ctx, "SELECT n FROM cs WHERE tag = ?", key).Scan(&n); err != nil || n != 1 {
					t.Fatalf("parameter, round %d: %d %v", round, n, err)
				}
				if err := conn.QueryRowContext(ctx, "SELECT n FROM cs WHERE tag = ?", "ascii").Scan(&n); err != nil || n != 2 {
					t.Fatalf("ascii key, round %d: %d %v", round, n, err)
				}
			}
			_, err = conn.ExecContext(ctx, "INSERT INTO cs (tag, n) VALUES (?, 3)", "x"+key)
			if code := proxytest.SQLErr(err); code != 1366 {
				t.Errorf("insert of a non-ASCII key in a latin1 session: %v", err)
			}
			if _, err := conn.ExecContext(ctx, "INSERT INTO cs (tag, n) VALUES (?, 4)", "ascii-"+l.name); err != nil {
				t.Errorf("insert of an ASCII key: %v", err)
			}
		})
	}

	// utf8mb4: the same bytes are 'é', a key of its own, routed by hash.
	proxytest.MustExec(t, utf8DB, "INSERT INTO cs (tag, n) VALUES (?, 5)", key)
	for _, q := range []string{"SELECT n FROM cs WHERE tag = '" + key + "'", "SELECT n FROM cs WHERE tag = '" + stored + "'"} {
		var n int
		if err := utf8DB.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sdb, err := p.Topo.Shard(shardOfKey(key)).Primary().Open(p.Demo)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var n int
	if err := sdb.QueryRow("SELECT n FROM cs WHERE tag = ?", key).Scan(&n); err != nil || n != 5 {
		t.Errorf("utf8mb4 insert of %q is not on the shard its hash names: %d %v", key, n, err)
	}
}
