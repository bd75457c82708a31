// Package difftest holds the differential test of the shard proxy: a schema,
// deterministic rows, a corpus of queries with the rows sharded over two
// shards, and the comparison of each answer with what one MariaDB server
// holding all the rows returns. The planner's tests run it through the
// planner and engine directly, and through the real proxy server with
// go-sql-driver/mysql (text and prepared).
package difftest

// Tables describes how the tables of Schema are placed: name -> kind
// ("sharded", "reference", "unsharded"), shard-key column, key type and
// function. The range table puts keys below 100 on the first shard.
type Table struct {
	Name, Kind, Column, Type, Function string
	// SubTables is the number of hash sub-tables per shard (0: none);
	// SubBy "month" gives the table one sub-table per month of SubColumn
	// from SubFrom to SubTo ("2024-01").
	SubTables                        int
	SubBy, SubColumn, SubFrom, SubTo string
}

// Tables lists the placement of Schema's tables in database demo.
func Tables() []Table {
	return []Table{
		{Name: "users", Kind: "sharded", Column: "id", Type: "int", Function: "hash"},
		{Name: "orders", Kind: "sharded", Column: "user_id", Type: "int", Function: "hash"},
		{Name: "tags", Kind: "sharded", Column: "tag", Type: "string", Function: "hash"},
		{Name: "events", Kind: "sharded", Column: "id", Type: "int", Function: "range"},
		{Name: "regions", Kind: "reference"},
		{Name: "audit", Kind: "unsharded"},
		{Name: "visits", Kind: "sharded", Column: "user_id", Type: "int", Function: "hash"},
	}
}

// SubTableTables is the placement of Schema's tables over sub-tables: every
// sharded table in 4 sub-tables per shard (partitioned alike, so users and
// orders still join on the key), and visits in one sub-table per month of
// 2024.
func SubTableTables() []Table {
	out := Tables()
	for i := range out {
		t := &out[i]
		switch {
		case t.Name == "visits":
			t.SubBy, t.SubColumn, t.SubFrom, t.SubTo = "month", "day", "2024-01", "2024-12"
		case t.Kind == "sharded":
			t.SubTables = 4
		}
	}
	return out
}

// RangeSplit is the upper bound (exclusive) of the first shard's range of
// the range-sharded table events.
const RangeSplit = 100
