package engine

import (
	"vitess.io/vitess/go/bytes2"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"
)

// Scratch is memory a VCursor lends a route for its statement, so that
// the commonest statement (one route to one shard) allocates nothing for
// its shard query: the one-query slice ExecuteShards gets, and the text of
// its SQL. Both are valid only until that ExecuteShards returns: a VCursor
// that lends one must not keep them, nor the SQL string, after it.
type Scratch struct {
	queries [1]ShardQuery
	sql     bytes2.Buffer
}

// ScratchLender is a VCursor that lends a Scratch (the proxy's fast lane,
// which runs one statement at a time and copies the SQL into the backend
// connection's buffer).
type ScratchLender interface {
	Scratch() *Scratch
}

// oneQuery is the single shard query of a route, built in sc when it can
// be: ok false leaves it to the caller (a list argument, raw SQL).
func (sc *Scratch) oneQuery(pq *sqlparser.ParsedQuery, bv map[string]*querypb.BindVariable, shard string, read bool) (qs []ShardQuery, ok bool, err error) {
	sql := pq.Query
	if locs := pq.BindLocations(); len(locs) > 0 {
		buf := &sc.sql
		if cap(buf.Bytes()) > 64<<10 {
			*buf = bytes2.Buffer{} // a huge statement's text is not kept
		}
		buf.Reset()
		cur := 0
		for _, loc := range locs {
			v, _, err := sqlparser.FetchBindVar(pq.Query[loc.Offset:loc.Offset+loc.Length], bv)
			if err != nil {
				return nil, true, err
			}
			switch v.Type {
			case querypb.Type_TUPLE, querypb.Type_ROW_TUPLE, querypb.Type_RAW:
				return nil, false, nil
			}
			_, _ = buf.WriteString(pq.Query[cur:loc.Offset])
			// As sqlparser.EncodeValue encodes a single value.
			val, _ := sqltypes.BindVariableToValue(v)
			val.EncodeSQLBytes2(buf)
			cur = loc.Offset + loc.Length
		}
		_, _ = buf.WriteString(pq.Query[cur:])
		sql = buf.StringUnsafe()
	}
	sc.queries[0] = ShardQuery{Shard: shard, SQL: sql, Read: read}
	return sc.queries[:], true, nil
}
