package planner

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// Build plans one already-normalized statement (literals replaced by bind
// variables by sqlparser.Normalize; prepared-statement parameters are bind
// variables too). db is the session's current database ("" if none). Errors
// are *sqlerror.SQLError: 1046 no database selected, 1049 unknown database,
// 1146 unknown table, 1235 not supported (the message names what).
//
// Build does not modify stmt, and never panics: an internal error becomes
// error 1105 naming it.
func Build(stmt sqlparser.Statement, vs *vschema.VSchema, db string) (p engine.Primitive, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState,
				"internal planner error on %T: %v", stmt, r)
		}
	}()
	return build(stmt, vs, db)
}

func build(stmt sqlparser.Statement, vs *vschema.VSchema, db string) (engine.Primitive, error) {
	if vs == nil {
		return nil, errors.New("planner: nil vschema")
	}
	pl := &planner{vs: vs, db: db}
	if _, ddl := stmt.(sqlparser.DDLStatement); !ddl {
		var err error
		if stmt, err = pl.markSubTables(stmt); err != nil {
			return nil, err
		}
	}
	switch s := stmt.(type) {
	case *sqlparser.Select:
		return pl.planSelectStatement(s)
	case *sqlparser.Union:
		return pl.planSelectStatement(s)
	case *sqlparser.Insert:
		return pl.planInsert(s)
	case *sqlparser.Update:
		return pl.planUpdate(s)
	case *sqlparser.Delete:
		return pl.planDelete(s)
	case sqlparser.DDLStatement:
		return pl.planDDL(s)
	case nil:
		return nil, errors.New("planner: nil statement")
	}
	return nil, unsupported("%s statements through the shard planner", stmtKind(stmt))
}

func stmtKind(stmt sqlparser.Statement) string {
	switch stmt.(type) {
	case *sqlparser.Set:
		return "SET"
	case *sqlparser.Show:
		return "SHOW"
	case *sqlparser.Use:
		return "USE"
	}
	return fmt.Sprintf("%T", stmt)[len("*sqlparser."):]
}

type planner struct {
	vs *vschema.VSchema
	db string
	// subs are the sub-tabled tables of the statement (subtable.go).
	subs *subMarks
}

func unsupported(format string, args ...any) error {
	return engine.Unsupported(format, args...)
}

// resolveTable finds a table named in a statement.
func (pl *planner) resolveTable(tn sqlparser.TableName) (dbName string, d *vschema.Database, t *vschema.Table, err error) {
	if i := pl.subs.index(tn); i >= 0 {
		tn = pl.subs.orig[i]
	}
	dbName = tn.Qualifier.String()
	if dbName == "" {
		dbName = pl.db
	}
	if dbName == "" {
		return "", nil, nil, sqlerror.NewSQLError(sqlerror.ERNoDb, sqlerror.SSNoDB, "No database selected")
	}
	d, t, err = pl.vs.FindTable(dbName, tn.Name.String())
	switch {
	case errors.Is(err, vschema.ErrUnknownDatabase):
		return "", nil, nil, sqlerror.NewSQLErrorf(sqlerror.ERBadDb, sqlerror.SSClientError, "Unknown database '%s'", dbName)
	case errors.Is(err, vschema.ErrUnknownTable):
		return "", nil, nil, sqlerror.NewSQLErrorf(sqlerror.ERNoSuchTable, sqlerror.SSUnknownTable,
			"Table '%s.%s' doesn't exist (every table of sharded database %s must be declared in the proxy's config)", dbName, tn.Name.String(), dbName)
	case err != nil:
		return "", nil, nil, err
	}
	return dbName, d, t, nil
}

// parsed formats a node into a query template. Bind variables are written
// bare (no /* INT64 */ type comments); the CASTs sqlparser adds for typed
// arguments whose literal text would change type are kept.
func parsed(node sqlparser.SQLNode) *sqlparser.ParsedQuery {
	buf := sqlparser.NewTrackedBuffer(formatNode)
	buf.Myprintf("%v", node)
	return buf.ParsedQuery()
}

func formatNode(buf *sqlparser.TrackedBuffer, node sqlparser.SQLNode) {
	switch n := node.(type) {
	case *sqlparser.Argument:
		if plainArgument(n) {
			buf.WriteArg(":", n.Name)
			return
		}
	case sqlparser.TableName:
		// A sub-tabled table's marker: the engine writes the physical
		// table of each target there.
		if name := n.Name.String(); n.Qualifier.IsEmpty() && strings.HasPrefix(name, "__strata_sub_") {
			buf.WriteArg(":", name)
			return
		}
	}
	node.Format(buf)
}

// plainArgument reports whether sqlparser would write the argument bare
// (plus a type comment), i.e. without a CAST.
func plainArgument(a *sqlparser.Argument) bool {
	t := a.Type
	switch {
	case t == sqltypes.Unknown:
		return true
	case sqltypes.IsDecimal(t) && a.Scale == 0, sqltypes.IsUnsigned(t), t == sqltypes.Float64, t == sqltypes.Float32,
		t == sqltypes.Timestamp, t == sqltypes.Datetime, sqltypes.IsDate(t), t == sqltypes.Time:
		return false
	}
	return true
}

// evalValue turns a literal or bind variable of the statement into an
// engine.EvalValue; ok is false for anything else (an expression).
func evalValue(e sqlparser.Expr) (engine.EvalValue, bool) {
	switch v := e.(type) {
	case *sqlparser.Argument:
		return engine.BindVar(v.Name), true
	case sqlparser.ListArg:
		return engine.ListVar(string(v)), true
	case *sqlparser.NullVal:
		return engine.LiteralValue(sqltypes.NULL), true
	case *sqlparser.Literal:
		var t = sqltypes.VarChar
		switch v.Type {
		case sqlparser.StrVal:
		case sqlparser.IntVal:
			t = sqltypes.Int64
			if v.Val != "" && v.Val[0] != '-' {
				if _, err := strconv.ParseInt(v.Val, 10, 64); err != nil {
					t = sqltypes.Uint64
				}
			}
		case sqlparser.FloatVal:
			t = sqltypes.Float64
		case sqlparser.DecimalVal:
			t = sqltypes.Decimal
		default:
			return engine.EvalValue{}, false
		}
		val, err := sqltypes.NewValue(t, []byte(v.Val))
		if err != nil {
			if t == sqltypes.Uint64 {
				val, err = sqltypes.NewValue(sqltypes.Decimal, []byte(v.Val))
			}
			if err != nil {
				return engine.EvalValue{}, false
			}
		}
		return engine.LiteralValue(val), true
	case sqlparser.ValTuple:
		out := engine.EvalValue{Tuple: make([]engine.EvalValue, 0, len(v))}
		for _, x := range v {
			ev, ok := evalValue(x)
			if !ok || ev.Tuple != nil || ev.List {
				return engine.EvalValue{}, false
			}
			out.Tuple = append(out.Tuple, ev)
		}
		return out, true
	case *sqlparser.UnaryExpr:
		if v.Operator == sqlparser.UMinusOp {
			if lit, ok := v.Expr.(*sqlparser.Literal); ok && (lit.Type == sqlparser.IntVal || lit.Type == sqlparser.DecimalVal || lit.Type == sqlparser.FloatVal) {
				return evalValue(&sqlparser.Literal{Type: lit.Type, Val: "-" + lit.Val})
			}
		}
	}
	return engine.EvalValue{}, false
}

// sqlString formats a node for error messages, without bind variable type
// comments.
func sqlString(node sqlparser.SQLNode) string {
	return parsed(node).Query
}
