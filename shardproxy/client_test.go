package shardproxy_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestGoDriver runs go-sql-driver/mysql through the proxy against two real
// shards, in text mode (interpolateParams) and with server-side prepared
// statements, with parameters of every common type, on a sharded table.
func TestGoDriver(t *testing.T) {
	topo := proxytest.SharedTopology(t)
	p := proxytest.Start(t, topo, nil)
	for i, mode := range []string{"interpolateParams=true", "interpolateParams=false"} {
		t.Run(mode, func(t *testing.T) {
			db := p.Open(t, p.Demo, mode, "parseTime=true", "loc=UTC")
			table := fmt.Sprintf("t%d", i+1)
			proxytest.MustExec(t, db, "DROP TABLE IF EXISTS "+table)
			proxytest.MustExec(t, db, "CREATE TABLE "+table+` (
				id BIGINT PRIMARY KEY, i INT, u INT UNSIGNED, bi BIGINT, f FLOAT, d DOUBLE,
				dc DECIMAL(12,3), s VARCHAR(100), b VARBINARY(100), bl BLOB, dt DATETIME(6),
				da DATE, tm TIME, bo TINYINT(1), n INT NULL)`)
			type row struct {
				ID int64
				I  int32
				U  uint32
				BI int64
				F  float32
				D  float64
				DC string
				S  string
				B  []byte
				BL []byte
				DT time.Time
				DA time.Time
				TM string
				BO bool
				N  sql.NullInt64
			}
			want := map[int64]row{}
			for id := int64(1); id <= 40; id++ {
				r := row{
					ID: id, I: int32(-id * 1000), U: uint32(id) * 3000000000 / 40, BI: id * math.MaxInt64 / 41,
					F: float32(id) / 4, D: float64(id) / 3, DC: fmt.Sprintf("%d.125", id*1000),
					S: fmt.Sprintf("it's \"row\" %d \\ ünïcödé", id), B: []byte{0, byte(id), 0xff, '\''},
					BL: bytes.Repeat([]byte{byte(id)}, 300), DT: time.Date(2024, 2, 29, 13, 14, 15, int(id)*1000, time.UTC),
					DA: time.Date(2000+int(id), 1, 2, 0, 0, 0, 0, time.UTC), TM: fmt.Sprintf("%02d:30:00", id%24), BO: id%2 == 0,
				}
				if id%3 == 0 {
					r.N = sql.NullInt64{Int64: id, Valid: true}
				}
				want[id] = r
				var n any
				if r.N.Valid {
					n = r.N.Int64
				}
				proxytest.MustExec(t, db, "INSERT INTO "+table+" (id, i, u, bi, f, d, dc, s, b, bl, dt, da, tm, bo, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
					r.ID, r.I, r.U, r.BI, r.F, r.D, r.DC, r.S, r.B, r.BL, r.DT, r.DA, r.TM, r.BO, n)
			}
			scan := func(rs interface{ Scan(...any) error }) (row, error) {
				var r row
				err := rs.Scan(&r.ID, &r.I, &r.U, &r.BI, &r.F, &r.D, &r.DC, &r.S, &r.B, &r.BL, &r.DT, &r.DA, &r.TM, &r.BO, &r.N)
				return r, err
			}
			cols := "id, i, u, bi, f, d, dc, s, b, bl, dt, da, tm, bo, n"
			// Point reads by shard key, with each parameter type in the WHERE.
			for id, w := range want {
				got, err := scan(db.QueryRow("SELECT "+cols+" FROM "+table+" WHERE id = ?", id))
				if err != nil {
					t.Fatalf("id %d: %v", id, err)
				}
				if !reflect.DeepEqual(got, w) {
					t.Fatalf("id %d:\n got %+v\nwant %+v", id, got, w)
				}
				var cnt int
				err = db.QueryRow("SELECT COUNT(*) FROM "+table+" WHERE id = ? AND s = ? AND b = ? AND dt = ? AND da = ? AND dc = ? AND bo = ?",
					id, w.S, w.B, w.DT, w.DA, w.DC, w.BO).Scan(&cnt)
				if err != nil || cnt != 1 {
					t.Fatalf("id %d typed lookup: %d %v", id, cnt, err)
				}
			}
			// IN lists route to the shards they name; a scatter merges in order.
			rows, err := db.Query("SELECT "+cols+" FROM "+table+" WHERE id IN (?, ?, ?, ?) ORDER BY id DESC", 3, 17, 22, 40)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for rows.Next() {
				r, err := scan(rows)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, r.ID)
			}
			rows.Close()
			if fmt.Sprint(ids) != "[40 22 17 3]" {
				t.Errorf("IN: %v", ids)
			}
			var sum float64
			var cnt int
			if err := db.QueryRow("SELECT SUM(d), COUNT(*) FROM "+table+" WHERE n IS NULL").Scan(&sum, &cnt); err != nil || cnt != 27 {
				t.Errorf("scatter aggregate: %v %d %v", sum, cnt, err)
			}
			// A statement prepared once and run many times.
			st, err := db.Prepare("UPDATE " + table + " SET s = CONCAT(s, ?) WHERE id = ?")
			if err != nil {
				t.Fatal(err)
			}
			for id := int64(1); id <= 10; id++ {
				res, err := st.Exec("!", id)
				if err != nil {
					t.Fatal(err)
				}
				if n, _ := res.RowsAffected(); n != 1 {
					t.Fatalf("update affected %d", n)
				}
			}
			st.Close()
			var s string
			if err := db.QueryRow("SELECT s FROM " + table + " WHERE id = 7").Scan(&s); err != nil || !strings.HasSuffix(s, "!") {
				t.Errorf("after update: %q %v", s, err)
			}
			res, err := db.Exec("DELETE FROM "+table+" WHERE id > ?", 30)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 10 {
				t.Errorf("delete affected %d", n)
			}
		})
	}
}
