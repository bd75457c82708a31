package engine

import (
	"context"
	"sync"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// Returning runs a write plan (INSERT, REPLACE or DELETE) with MariaDB's
// RETURNING clause: every statement Input sends to a shard gets Clause
// appended, and the rows the shards return are the answer, shard after
// shard in the order Input sent them. Keys the proxy generated for an
// INSERT are in the statements each shard runs, so they are in the rows.
//
// OneCopy is for a reference table, whose write runs on every shard: the
// rows of the first shard only are returned, as one server holding the
// table would return them.
type Returning struct {
	Input   Primitive
	Clause  string // " RETURNING …"
	OneCopy bool
}

// Execute implements Primitive.
func (r *Returning) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	rc := &returningCursor{VCursor: vc, clause: r.Clause}
	in, err := r.Input.Execute(ctx, rc, bv)
	if err != nil {
		return nil, err
	}
	// LAST_INSERT_ID() moves as without the clause.
	out := &sqltypes.Result{Fields: rc.fields, InsertID: in.InsertID, InsertIDChanged: in.InsertIDChanged}
	for i, rows := range rc.rows {
		if r.OneCopy && i > 0 {
			break
		}
		out.Rows = append(out.Rows, rows...)
	}
	if out.Fields == nil {
		out.Fields = []*querypb.Field{}
	}
	return out, nil
}

// Explain implements Primitive.
func (r *Returning) Explain() []ExplainRow {
	detail := "rows of every shard"
	if r.OneCopy {
		detail = "rows of the first shard (reference table)"
	}
	return append([]ExplainRow{{Operator: "Returning", Query: r.Clause, Detail: detail}}, r.Input.Explain()...)
}

// returningCursor appends the clause to each statement and keeps the rows
// that come back. It passes the session's optional abilities on.
type returningCursor struct {
	VCursor
	clause string
	mu     sync.Mutex
	fields []*querypb.Field
	rows   [][][]sqltypes.Value
}

func (c *returningCursor) ExecuteShards(ctx context.Context, queries []ShardQuery) ([]*sqltypes.Result, error) {
	qs := make([]ShardQuery, len(queries))
	for i, q := range queries {
		q.SQL += c.clause
		q.Read = false
		qs[i] = q
	}
	res, err := c.VCursor.ExecuteShards(ctx, qs)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	for _, r := range res {
		if c.fields == nil && r.Fields != nil {
			c.fields = r.Fields
		}
		c.rows = append(c.rows, r.Rows)
	}
	c.mu.Unlock()
	// Input sees what a write without RETURNING returns: affected rows.
	out := make([]*sqltypes.Result, len(res))
	for i, r := range res {
		out[i] = &sqltypes.Result{RowsAffected: uint64(len(r.Rows)), InsertID: r.InsertID, InsertIDChanged: r.InsertIDChanged}
	}
	return out, nil
}

// GenerateKeys passes KeyGenerator on.
func (c *returningCursor) GenerateKeys(ctx context.Context, db, table string, n int) ([]int64, error) {
	kg, ok := c.VCursor.(KeyGenerator)
	if !ok {
		return nil, Unsupported("INSERT ... RETURNING into sharded table %s without its shard key: no ID service generates keys for this session", table)
	}
	return kg.GenerateKeys(ctx, db, table, n)
}

// ClientCharset passes SessionCharset on.
func (c *returningCursor) ClientCharset() string {
	if sc, ok := c.VCursor.(SessionCharset); ok {
		return sc.ClientCharset()
	}
	return "utf8mb4"
}

// PreferredShard passes ShardPreferrer on.
func (c *returningCursor) PreferredShard() string {
	if p, ok := c.VCursor.(ShardPreferrer); ok {
		return p.PreferredShard()
	}
	return ""
}
