package executor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/vschema"
	"github.com/strata-db/strata/shardproxy/wire"
)

// show answers SHOW. The proxy answers what it knows better than any one
// server (databases, warnings, its own connections); table-specific SHOWs go
// to a shard holding the table; SHOW TABLES of a sharded database is the
// union over its shards; the rest go to the session's home shard. Every
// SHOW runs outside the session's transaction: it reads metadata.
func (s *Session) show(ctx context.Context, sql string, st *sqlparser.Show) (*sqltypes.Result, error) {
	switch in := st.Internal.(type) {
	case *sqlparser.ShowBasic:
		switch in.Command {
		case sqlparser.Database:
			return s.showDatabases(in.Filter)
		case sqlparser.Table:
			return s.showTables(ctx, sql, in)
		case sqlparser.Column, sqlparser.Index:
			t := in.Tbl
			if !in.DbName.IsEmpty() {
				t.Qualifier = in.DbName
			}
			return s.showTable(ctx, sql, t)
		case sqlparser.Warnings:
			return s.showWarnings(false, in.Limit), nil
		case sqlparser.Errors:
			return s.showWarnings(true, in.Limit), nil
		case sqlparser.ProcessList:
			return s.showProcessList(in.Full), nil
		case sqlparser.TableStatus, sqlparser.Trigger, sqlparser.Events, sqlparser.OpenTable,
			sqlparser.Function, sqlparser.Procedure, sqlparser.FunctionC, sqlparser.ProcedureC:
			db := s.DB
			if !in.DbName.IsEmpty() {
				db = in.DbName.String()
			}
			return s.onShard(ctx, s.srv.homeShardOf(db), sql)
		case sqlparser.StatusSession:
			res, err := s.onShard(ctx, s.homeShard(), sql)
			if err != nil {
				return nil, err
			}
			s.clientTLSStatus(res)
			return res, nil
		case sqlparser.VariableGlobal, sqlparser.VariableSession, sqlparser.StatusGlobal,
			sqlparser.Charset, sqlparser.Collation, sqlparser.Engines, sqlparser.Plugins, sqlparser.Privilege:
			return s.onShard(ctx, s.homeShard(), sql)
		}
	case *sqlparser.ShowCreate:
		switch in.Command {
		case sqlparser.CreateTbl:
			return s.showTable(ctx, sql, in.Op)
		case sqlparser.CreateDb:
			db := in.Op.Name.String()
			if _, ok := s.srv.vs.Databases[db]; !ok && !sqlparser.SystemSchema(db) {
				return nil, sqlerror.NewSQLErrorf(sqlerror.ERBadDb, sqlerror.SSClientError, "Unknown database '%s'", db)
			}
			return s.onShard(ctx, s.srv.homeShardOf(db), sql)
		default:
			return s.onShard(ctx, s.homeShard(), sql)
		}
	case *sqlparser.ShowGrants:
		return s.showGrants(), nil
	case *sqlparser.ShowReplicationStatus, *sqlparser.ShowReplicationSourceStatus, *sqlparser.ShowBinaryLogs, *sqlparser.ShowEngine:
		return s.onShard(ctx, s.homeShard(), sql)
	}
	return nil, mysqlerr.NotSupported("%s", firstWords(sql)+" ...")
}

// clientTLSStatus puts the client connection's own Ssl_cipher and
// Ssl_version in a SHOW [SESSION] STATUS answer: the backend's describe the
// proxy's connection to it, and clients check these to see that their TLS
// is on (go-sql-driver's TestTLS does).
func (s *Session) clientTLSStatus(res *sqltypes.Result) {
	var cipher, version string
	if c, ok := s.Conn.GetRawConn().(*wire.Conn); ok {
		if st, on := c.TLS(); on {
			cipher = tls.CipherSuiteName(st.CipherSuite)
			version = mariadbTLSVersion(st.Version)
		}
	}
	for _, row := range res.Rows {
		if len(row) != 2 {
			continue
		}
		switch strings.ToLower(row[0].ToString()) {
		case "ssl_cipher":
			row[1] = sqltypes.NewVarChar(cipher)
		case "ssl_version":
			row[1] = sqltypes.NewVarChar(version)
		}
	}
}

// mariadbTLSVersion names a TLS version as MariaDB's Ssl_version does.
func mariadbTLSVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}

// homeShard is the shard that answers session-level questions: the
// transaction's, else the current database's home.
func (s *Session) homeShard() string {
	if s.TxShard != "" {
		return s.TxShard
	}
	return s.srv.homeShardOf(s.DB)
}

// onShard runs a statement on one shard outside the transaction.
func (s *Session) onShard(ctx context.Context, shard, sql string) (*sqltypes.Result, error) {
	res, err := s.ExecuteOutsideTx(ctx, []engine.ShardQuery{{Shard: shard, SQL: sql, Read: true}})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// showTable sends a table's SHOW to a shard that holds the table, and gives
// a sharded database's unknown tables error 1146, as the planner does.
func (s *Session) showTable(ctx context.Context, sql string, t sqlparser.TableName) (*sqltypes.Result, error) {
	db := s.DB
	if !t.Qualifier.IsEmpty() {
		db = t.Qualifier.String()
	}
	if db == "" {
		return nil, sqlerror.NewSQLError(sqlerror.ERNoDb, sqlerror.SSNoDB, "No database selected")
	}
	if sqlparser.SystemSchema(db) {
		return s.onShard(ctx, s.srv.vs.Shards[0], sql)
	}
	_, tbl, err := s.srv.vs.FindTable(db, t.Name.String())
	switch {
	case errors.Is(err, vschema.ErrUnknownDatabase):
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERBadDb, sqlerror.SSClientError, "Unknown database '%s'", db)
	case errors.Is(err, vschema.ErrUnknownTable):
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERNoSuchTable, sqlerror.SSUnknownTable, "Table '%s.%s' doesn't exist", db, t.Name.String())
	case err != nil:
		return nil, err
	}
	shard := s.srv.vs.Shards[0]
	if tbl.Kind == vschema.Unsharded {
		shard = tbl.Shard
	}
	return s.onShard(ctx, shard, sql)
}

// showTables: an unsharded database's tables are on its shard; a sharded
// one's are the union over every shard (an unsharded table of a sharded
// database lives on one shard only).
func (s *Session) showTables(ctx context.Context, sql string, in *sqlparser.ShowBasic) (*sqltypes.Result, error) {
	db := s.DB
	if !in.DbName.IsEmpty() {
		db = in.DbName.String()
	}
	if db == "" {
		return nil, sqlerror.NewSQLError(sqlerror.ERNoDb, sqlerror.SSNoDB, "No database selected")
	}
	d, ok := s.srv.vs.Databases[db]
	if !ok {
		if sqlparser.SystemSchema(db) {
			return s.onShard(ctx, s.srv.vs.Shards[0], sql)
		}
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERBadDb, sqlerror.SSClientError, "Unknown database '%s'", db)
	}
	if !d.Sharded {
		return s.onShard(ctx, d.Shard, sql)
	}
	qs := make([]engine.ShardQuery, len(s.srv.vs.Shards))
	for i, sh := range s.srv.vs.Shards {
		qs[i] = engine.ShardQuery{Shard: sh, SQL: sql, Read: true}
	}
	results, err := s.ExecuteOutsideTx(ctx, qs)
	if err != nil {
		return nil, err
	}
	out := &sqltypes.Result{Fields: results[0].Fields}
	seen := map[string]bool{}
	for _, r := range results {
		for _, row := range r.Rows {
			if name := row[0].ToString(); !seen[name] && !d.IsSubTableName(name) {
				seen[name] = true
				out.Rows = append(out.Rows, row)
			}
		}
	}
	sort.Slice(out.Rows, func(i, j int) bool { return out.Rows[i][0].ToString() < out.Rows[j][0].ToString() })
	return out, nil
}

func (s *Session) showDatabases(f *sqlparser.ShowFilter) (*sqltypes.Result, error) {
	var match func(string) bool
	if f != nil {
		if f.Filter != nil {
			return nil, mysqlerr.NotSupported("SHOW DATABASES WHERE")
		}
		re := likeToRegexp(f.Like)
		match = re.MatchString
	}
	names := []string{"information_schema"}
	for n := range s.srv.vs.Databases {
		names = append(names, n)
	}
	sort.Strings(names)
	res := &sqltypes.Result{Fields: []*querypb.Field{varcharField("Database")}}
	for _, n := range names {
		if match == nil || match(n) {
			res.Rows = append(res.Rows, sqltypes.Row{sqltypes.NewVarChar(n)})
		}
	}
	return res, nil
}

// likeToRegexp compiles a LIKE pattern (case-insensitive, as SHOW compares).
func likeToRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	esc := false
	for _, r := range p {
		switch {
		case esc:
			b.WriteString(regexp.QuoteMeta(string(r)))
			esc = false
		case r == '\\':
			esc = true
		case r == '%':
			b.WriteString(".*")
		case r == '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// warningFields are MariaDB's columns of SHOW WARNINGS / ERRORS.
var warningFields = []*querypb.Field{
	{Name: "Level", Type: sqltypes.VarChar, Charset: 45, ColumnLength: 28, Flags: uint32(querypb.MySqlFlag_NOT_NULL_FLAG), Decimals: 39},
	{Name: "Code", Type: sqltypes.Uint32, Charset: 63, ColumnLength: 4,
		Flags: uint32(querypb.MySqlFlag_NOT_NULL_FLAG | querypb.MySqlFlag_UNSIGNED_FLAG | querypb.MySqlFlag_BINARY_FLAG)},
	{Name: "Message", Type: sqltypes.VarChar, Charset: 45, ColumnLength: 2048, Flags: uint32(querypb.MySqlFlag_NOT_NULL_FLAG), Decimals: 39},
}

func (s *Session) showWarnings(errorsOnly bool, limit *sqlparser.Limit) *sqltypes.Result {
	res := &sqltypes.Result{Fields: cloneFields(warningFields)}
	offset, count := 0, -1
	if limit != nil {
		offset, count = limitValue(limit.Offset, 0), limitValue(limit.Rowcount, -1)
	}
	s.WMu.Lock()
	defer s.WMu.Unlock()
	for _, w := range s.Warnings {
		if errorsOnly && w[0].ToString() != "Error" {
			continue
		}
		if offset > 0 {
			offset--
			continue
		}
		if count == 0 {
			break
		}
		count--
		res.Rows = append(res.Rows, w)
	}
	return res
}

// limitValue is a LIMIT's number, def when there is none.
func limitValue(e sqlparser.Expr, def int) int {
	l, ok := e.(*sqlparser.Literal)
	if !ok || l.Type != sqlparser.IntVal {
		return def
	}
	n, err := strconv.Atoi(l.Val)
	if err != nil || n < 0 {
		return def
	}
	return n
}

func (s *Session) showGrants() *sqltypes.Result {
	u := s.User
	return &sqltypes.Result{
		Fields: []*querypb.Field{varcharField(fmt.Sprintf("Grants for %s@%%", u))},
		Rows:   []sqltypes.Row{{sqltypes.NewVarChar(fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO `%s`@`%%`", u))}},
	}
}

// explain renders the plan of a statement: one row per primitive.
func (s *Session) explain(ctx context.Context, st *sqlparser.ExplainStmt) (*sqltypes.Result, error) {
	switch st.Statement.(type) {
	case *sqlparser.Select, *sqlparser.Union, *sqlparser.Insert, *sqlparser.Update, *sqlparser.Delete, sqlparser.DDLStatement:
	default:
		return nil, mysqlerr.NotSupported("EXPLAIN of %T", st.Statement)
	}
	cp, err := s.planFor(st.Statement, nil, map[string]*querypb.BindVariable{})
	if err != nil {
		return nil, err
	}
	res := &sqltypes.Result{Fields: []*querypb.Field{
		{Name: "id", Type: sqltypes.Int64}, varcharField("operator"), varcharField("shards"), varcharField("query"), varcharField("detail"),
	}}
	for i, r := range cp.plan.Explain() {
		res.Rows = append(res.Rows, sqltypes.Row{
			sqltypes.NewInt64(int64(i + 1)),
			sqltypes.NewVarChar(strings.Repeat("  ", r.Depth) + r.Operator),
			sqltypes.NewVarChar(r.Shards), sqltypes.NewVarChar(r.Query), sqltypes.NewVarChar(r.Detail),
		})
	}
	return res, nil
}

func varcharField(name string) *querypb.Field {
	return &querypb.Field{Name: name, Type: sqltypes.VarChar, Charset: 45, ColumnLength: 1024}
}
