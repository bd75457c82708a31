package executor

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/sqlmode"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// Statements of a sharded database that the proxy cannot plan, but that
// touch one shard only, run there whole, as the client wrote them, with the
// user variables they read and set travelling with them (session.RawVars):
//
//   - a SELECT with := inside an expression (SELECT @a := id FROM t WHERE
//     k = 1, SELECT (@x := 5) + 1): the proxy plans it with each assignment
//     replaced by its value, to learn where it goes. When that plan sends
//     the whole statement to one shard (a route by the shard key, a SELECT
//     of no table, unsharded or reference tables), the statement runs there
//     and the server evaluates the assignments row by row, as MariaDB does.
//     On several shards (or over sub-tables) it is refused with 1235: rows
//     of several servers have no one order to assign in.
//   - DO and CALL that name no sharded table of the database (and no other
//     database of the proxy): on the shard of the session's transaction when
//     one has begun on a shard, else on the database's home shard, its first
//     (Shards[0] of the config): the same shard every time, so that a
//     procedure created there directly, or a named lock taken by DO
//     GET_LOCK(), is found again. A procedure's body may read or write only
//     what lives on that shard (unsharded tables placed there, reference
//     tables' copy there, its own rows of sharded tables): the proxy does
//     not read it.
//
// oneShard returns ok false when stmt is none of these (the caller keeps its
// refusal).
func (s *Session) oneShard(ctx context.Context, sql string, stmt sqlparser.Statement, known sqlparser.BindVars) (res *sqltypes.Result, err error, ok bool) {
	d := s.srv.vs.Databases[s.DB]
	if d == nil || !d.Sharded {
		return nil, nil, false
	}
	switch st := stmt.(type) {
	case *sqlparser.Select, *sqlparser.Union:
		if !hasAssignment(st) {
			return nil, nil, false
		}
		shard, err := s.assignmentShard(ctx, st, known)
		if err != nil {
			return nil, err, true
		}
		res, err := s.runWholeOn(ctx, sql, shard, false)
		return res, err, true
	case *sqlparser.OtherAdmin, *sqlparser.CallProc:
		verb := sqlmode.Verb(sql, 0)
		if verb != "DO" && verb != "CALL" {
			return nil, nil, false
		}
		if err := s.namesNoShardedTable(sql, d, verb); err != nil {
			return nil, err, true
		}
		shard := s.TxShard
		if shard == "" {
			shard = s.srv.homeShardOf(s.DB)
		}
		res, err := s.runWholeOn(ctx, sql, shard, verb == "CALL")
		return res, err, true
	}
	return nil, nil, false
}

// hasAssignment: stmt holds @v := expr.
func hasAssignment(stmt sqlparser.Statement) bool {
	found := false
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		if _, ok := node.(*sqlparser.AssignmentExpr); ok {
			found = true
		}
		return !found, nil
	}, stmt)
	return found
}

// errRecorded stops a plan at its first shard query: shardRecorder has it.
var errRecorded = errors.New("shardproxy: shard query recorded")

// shardRecorder is a VCursor that records the first shard queries a plan
// sends, and sends none.
type shardRecorder struct {
	pref string
	qs   []engine.ShardQuery
}

func (r *shardRecorder) ExecuteShards(_ context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	r.qs = append(r.qs, qs...)
	return nil, errRecorded
}

// PreferredShard implements engine.ShardPreferrer, as the session does.
func (r *shardRecorder) PreferredShard() string { return r.pref }

// assignmentShard is the one shard a SELECT with := runs on whole.
func (s *Session) assignmentShard(ctx context.Context, stmt sqlparser.Statement, known sqlparser.BindVars) (string, error) {
	plain := sqlparser.Rewrite(sqlparser.Clone(stmt), nil, func(c *sqlparser.Cursor) bool {
		if a, ok := c.Node().(*sqlparser.AssignmentExpr); ok {
			c.Replace(a.Right)
		}
		return true
	}).(sqlparser.Statement)
	bv := make(map[string]*querypb.BindVariable)
	cp, err := s.planFor(plain, known, bv)
	if err != nil {
		return "", err
	}
	if cp.needs != nil {
		s.fillNeeds(cp.needs, bv)
	}
	refuse := func(why string) error {
		return mysqlerr.NotSupported(":= in a statement that %s of sharded database %s: the server must evaluate the assignments over rows of one shard; select one shard (WHERE on the shard key) or assign in a statement of its own", why, s.DB)
	}
	f := cp.facts
	if !f.OneShard || f.Sub != nil || f.Reserve != "" || f.LockFuncs {
		return "", refuse("runs on several shards, over sub-tables or with named locks")
	}
	rec := &shardRecorder{pref: s.TxShard}
	if _, err := cp.plan.Execute(ctx, rec, bv); err != nil && !errors.Is(err, errRecorded) {
		return "", err
	}
	if len(rec.qs) != 1 || rec.qs[0].Tables != nil {
		return "", refuse("runs on several shards")
	}
	return rec.qs[0].Shard, nil
}

// namesNoShardedTable refuses a DO or CALL that names a sharded table of
// d, or another database of the proxy: such a statement would read or
// write rows on one shard that live on all.
func (s *Session) namesNoShardedTable(sql string, d *vschema.Database, verb string) error {
	for _, q := range sqlmode.Qualifiers(sql, 0) {
		if od := s.srv.vs.Databases[q]; od != nil && q != s.DB {
			return mysqlerr.NotSupported("%s naming database %s in sharded database %s: the proxy runs DO and CALL on one shard, with the session's database only", verb, q, s.DB)
		}
	}
	for _, t := range sqlmode.Tokens(sql, 0) {
		if t.Kind != sqlmode.Word && t.Kind != sqlmode.Ident {
			continue
		}
		if tbl := d.Tables[strings.ToLower(t.Name(sql))]; tbl != nil && tbl.Kind == vschema.Sharded {
			return mysqlerr.NotSupported("%s naming sharded table %s: the proxy runs DO and CALL on one shard of sharded database %s, where the table has only part of its rows; use a SELECT or a write the proxy routes", verb, tbl.Name, s.DB)
		}
	}
	return nil
}

// runWholeOn runs sql, as the client wrote it, on shard, in the session's
// transaction if one is open, with the user variables it names; all: every
// result of a CALL comes back.
func (s *Session) runWholeOn(ctx context.Context, sql, shard string, all bool) (*sqltypes.Result, error) {
	if all {
		s.WantAll = true
		defer func() { s.WantAll = false }()
	}
	if reads, sets := userVars(sql); len(reads) > 0 {
		s.Raw = &session.RawVars{Reads: reads, Sets: sets}
		defer func() { s.Raw = nil }()
	}
	out, err := s.ExecuteShards(ctx, []engine.ShardQuery{{Shard: shard, SQL: sql}})
	if err != nil {
		return nil, err
	}
	if s.RowCount = int64(out[0].RowsAffected); len(out[0].Fields) > 0 {
		s.RowCount = -1 // a result set's ROW_COUNT()
	}
	return out[0], nil
}

// textParams is a prepared statement's text with each ? a bind variable
// v1..vN, as the listener names the client's parameters, and their number:
// a statement run as written (vitess's rendering of its AST can differ
// from the text: it prints (@a := ?) + 1 without the parentheses).
func textParams(text string) (*sqlparser.ParsedQuery, int) {
	buf := sqlparser.NewTrackedBuffer(nil)
	n, prev := 0, 0
	for _, t := range sqlmode.Tokens(text, 0) {
		if t.Kind != sqlmode.Punct || t.Text(text) != "?" {
			continue
		}
		n++
		buf.WriteString(text[prev:t.Pos])
		buf.WriteArg("", ":v"+strconv.Itoa(n))
		prev = t.End
	}
	buf.WriteString(text[prev:])
	return buf.ParsedQuery(), n
}
