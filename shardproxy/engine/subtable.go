package engine

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/vschema"
)

// SubTables makes a primitive's query address sub-tables: the query names
// each sub-tabled table through a bind variable (SubName.Var) that becomes
// the physical table of each target, so one plan fans out over (shard,
// sub-table) targets and merges their answers like answers of shards.
type SubTables struct {
	// Layout is a sub-tabled table of the query; its layout (vschema.Table.Sub)
	// picks the sub-tables. Every sub-tabled table of the query shares it.
	Layout *vschema.Table
	// Names are the sub-tabled tables named in the query.
	Names []SubName
	// Lo and Hi bound the month column (SubMonth): only the months from Lo
	// to Hi are read. Either may be nil (unbounded); a value that is not a
	// date leaves that side unbounded.
	Lo, Hi *EvalValue
	// Now is the clock that says which months exist; nil is time.Now.
	Now func() time.Time
}

// SubName is one table name in a query that stands for a sub-table.
type SubName struct {
	// Var is the bind variable in the query where the table name goes.
	Var string
	// Qualifier is the database the query names, or "".
	Qualifier string
	// Name is the logical table name.
	Name string
}

// SubVar is the bind variable of the i-th sub-tabled table of a query.
func SubVar(i int) string { return "__strata_sub_" + strconv.Itoa(i) }

// target is one (shard, sub-table) a query goes to; sub is -1 without
// sub-tables, logicalSub for the table of the logical name.
type target struct {
	shard string
	sub   int
}

// logicalSub is the target of DDL on the empty table that keeps the
// logical name on every shard: it holds no rows (the planner never sends a
// read or write there), and carries the logical table's definition for
// what asks the shards about it by name (SHOW TABLES, SHOW CREATE TABLE,
// information_schema, the columns of a prepared statement) and as the
// model for month tables created ahead (CREATE TABLE ... LIKE).
const logicalSub = -2

func (st *SubTables) now() time.Time {
	if st.Now != nil {
		return st.Now()
	}
	return time.Now()
}

// all returns every sub-table suffix that exists now.
func (st *SubTables) all() []int { return st.Layout.Subs(st.now()) }

// months returns the month sub-tables the bounds leave.
func (st *SubTables) months(bv map[string]*querypb.BindVariable) []int {
	bound := func(e *EvalValue) *vschema.Month {
		if e == nil {
			return nil
		}
		v, err := e.Value(bv)
		if err != nil {
			return nil
		}
		m, err := vschema.ValueMonth(v)
		if err != nil {
			return nil
		}
		return &m
	}
	return st.Layout.MonthSubs(bound(st.Lo), bound(st.Hi), st.now())
}

// expand turns shards into targets.
func (st *SubTables) expand(shards []string, subs []int) []target {
	out := make([]target, 0, len(shards)*len(subs))
	for _, s := range shards {
		for _, sub := range subs {
			out = append(out, target{shard: s, sub: sub})
		}
	}
	return out
}

// extras are the physical names of target t.
func (st *SubTables) extras(t target) map[string]sqlparser.Encodable {
	if st == nil || t.sub == -1 {
		return nil
	}
	m := make(map[string]sqlparser.Encodable, len(st.Names))
	for _, n := range st.Names {
		if t.sub == logicalSub {
			m[n.Var] = tableName(n.Qualifier, n.Name)
			continue
		}
		m[n.Var] = tableName(n.Qualifier, st.Layout.SubName(n.Name, t.sub))
	}
	return m
}

// describe names the physical tables for EXPLAIN.
func (st *SubTables) describe() string {
	if st == nil {
		return ""
	}
	names := make([]string, len(st.Names))
	for i, n := range st.Names {
		switch st.Layout.Sub.By {
		case vschema.SubMonth:
			names[i] = fmt.Sprintf("%s_YYYYMM (month of %s, from %s)", n.Name, st.Layout.Sub.Column, st.Layout.Sub.From)
		default:
			names[i] = fmt.Sprintf("%s..%s", st.Layout.SubName(n.Name, 0), st.Layout.SubName(n.Name, st.Layout.Sub.Count-1))
		}
	}
	out := "sub-tables " + strings.Join(names, ", ")
	if st.Lo != nil || st.Hi != nil {
		lo, hi := "the first", "the last"
		if st.Lo != nil {
			lo = "that of " + st.Lo.String()
		}
		if st.Hi != nil {
			hi = "that of " + st.Hi.String()
		}
		out += fmt.Sprintf(": months from %s to %s", lo, hi)
	}
	return out
}

// explainText writes each sub-tabled name of query text q as its pattern
// (orders_NNNN, orders_YYYYMM), for EXPLAIN.
func (st *SubTables) explainText(q string) string {
	for i := len(st.Names) - 1; i >= 0; i-- { // __strata_sub_1 is a prefix of __strata_sub_10
		n := st.Names[i]
		p := n.Name + "_NNNN"
		if st.Layout.Sub.By == vschema.SubMonth {
			p = n.Name + "_YYYYMM"
		}
		var b strings.Builder
		tableName(n.Qualifier, p).EncodeSQL(&b)
		q = strings.ReplaceAll(q, ":"+n.Var, b.String())
	}
	return q
}

// physicalText writes target t's physical names into text that holds the
// markers as plain ":var" (an INSERT's prefix, which has no other bind
// variables).
func (st *SubTables) physicalText(q string, t target) string {
	for i := len(st.Names) - 1; i >= 0; i-- {
		n := st.Names[i]
		var b strings.Builder
		tableName(n.Qualifier, st.Layout.SubName(n.Name, t.sub)).EncodeSQL(&b)
		q = strings.ReplaceAll(q, ":"+n.Var, b.String())
	}
	return q
}

// physical maps each marker to target t's physical table, as written in
// the query.
func (st *SubTables) physical(t target) map[string]string {
	m := make(map[string]string, len(st.Names))
	for v, e := range st.extras(t) {
		var b strings.Builder
		e.EncodeSQL(&b)
		m[v] = b.String()
	}
	return m
}

// LaneMarks are extras for ParsedQuery.GenerateQuery that write each
// table marker as a comment (/*strata-table-VAR*/), so that a statement
// text made once (the proxy's prepared form of a route's query) can take
// each execution's physical tables with ResolveTables.
func (st *SubTables) LaneMarks() map[string]sqlparser.Encodable {
	m := make(map[string]sqlparser.Encodable, len(st.Names))
	for _, n := range st.Names {
		m[n.Var] = physName(tableMark(n.Var))
	}
	return m
}

func tableMark(v string) string { return "/*strata-table-" + v + "*/" }

// ResolveTables writes q's physical tables into text made with LaneMarks;
// ok is false when a mark is left (text was made for another plan).
func ResolveTables(text string, q ShardQuery) (string, bool) {
	for v, name := range q.Tables {
		text = strings.ReplaceAll(text, tableMark(v), name)
	}
	return text, !strings.Contains(text, "/*strata-table-")
}

// physName is a physical table name written into a query.
type physName string

func tableName(qualifier, name string) sqlparser.Encodable {
	tn := sqlparser.TableName{Name: sqlparser.NewIdentifierCS(name), Qualifier: sqlparser.NewIdentifierCS(qualifier)}
	return physName(sqlparser.String(tn))
}

func (t physName) EncodeSQL(buf *strings.Builder) { buf.WriteString(string(t)) }

// MonthTablesAhead returns the DDL that creates, on every shard, the month
// sub-tables that should exist at time now and may not yet (CREATE TABLE
// IF NOT EXISTS ... LIKE the table of the logical name, which DDL through
// the proxy keeps up to date). The proxy runs it at start and then daily,
// so a month's table exists before its first row.
func MonthTablesAhead(vs *vschema.VSchema, now time.Time) []ShardQuery {
	var out []ShardQuery
	for _, db := range sortedKeys(vs.Databases) {
		d := vs.Databases[db]
		for _, tn := range sortedKeys(d.Tables) {
			t := d.Tables[tn]
			if t.Sub.By != vschema.SubMonth {
				continue
			}
			var b strings.Builder
			for _, m := range t.Subs(now) {
				b.Reset()
				b.WriteString("create table if not exists ")
				tableName(db, t.SubName(tn, m)).EncodeSQL(&b)
				b.WriteString(" like ")
				tableName(db, tn).EncodeSQL(&b)
				for _, s := range vs.Shards {
					out = append(out, ShardQuery{Shard: s, SQL: b.String()})
				}
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
