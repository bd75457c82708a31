package shardproxy_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestLoadDataGeneratedKeys: LOAD DATA LOCAL INFILE into a sharded table
// whose column list leaves out the shard key: the proxy draws a key per
// row from the ID service, each row lands on the shard its key hashes to,
// and LAST_INSERT_ID() is the first key, as for an INSERT.
func TestLoadDataGeneratedKeys(t *testing.T) {
	topo := proxytest.SharedTopology(t)
	node, _ := startIDNode(t)
	p := proxytest.Start(t, topo, withKeygen(topo, []string{node.GRPCAddr}, 0))
	db := p.Open(t, "keygen")
	recreate(t, db, "items")
	var file strings.Builder
	file.WriteString("header to skip\n")
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&file, ">l%02d\n", i)
	}
	mysql.RegisterReaderHandler("keygen_load", func() io.Reader { return strings.NewReader(file.String()) })
	defer mysql.DeregisterReaderHandler("keygen_load")
	c := conn(t, db)
	res, err := c.ExecContext(t.Context(), "LOAD DATA LOCAL INFILE 'Reader::keygen_load' INTO TABLE items LINES STARTING BY '>' IGNORE 1 LINES (name)")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 30 {
		t.Errorf("%d rows affected, want 30", n)
	}
	rows := rowsOnShards(t, topo, "items")
	if len(rows) != 30 {
		t.Fatalf("%d rows on the shards, want 30", len(rows))
	}
	per := checkPlacement(t, p, "items", rows)
	first := rows["l00"].id
	for i := 1; i < 30; i++ {
		if r := rows[fmt.Sprintf("l%02d", i)]; r.id <= first {
			t.Errorf("row l%02d: key %d not after the first's %d", i, r.id, first)
		}
	}
	if got := query1(t, c, "SELECT LAST_INSERT_ID()"); got != fmt.Sprint(first) {
		t.Errorf("LAST_INSERT_ID() %s, want the first key %d", got, first)
	}
	t.Logf("30 rows with generated keys from %d, per shard %v", first, per)
}
