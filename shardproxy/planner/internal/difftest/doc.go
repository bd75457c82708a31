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
	}
}

// RangeSplit is the upper bound (exclusive) of the first shard's range of
// the range-sharded table events.
const RangeSplit = 100
