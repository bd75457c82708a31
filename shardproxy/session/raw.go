package session

import (
	"context"
	"strings"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/sqlmode"
)

// RawVars are the user variables a statement passed through unplanned
// names (Reads, lower-cased) and may assign (Sets). User variables live in
// the session, not on backend connections: ExecOn sets the session's
// values of Reads on the connection before the statement, reads Sets back
// into the session after it, and clears them all on the connection, which
// goes back to the pool.
type RawVars struct {
	Reads, Sets []string
}

func quoteVar(name string) string {
	return "@`" + strings.ReplaceAll(name, "`", "``") + "`"
}

func (s *Session) rawBefore(ctx context.Context, conn *backend.Conn, shard string) error {
	var b strings.Builder
	for _, name := range s.Raw.Reads {
		if b.Len() == 0 {
			b.WriteString("SET ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(quoteVar(name) + " = ")
		v, ok := s.UDV[name]
		if !ok {
			b.WriteString("NULL")
			continue
		}
		val, err := sqltypes.BindVariableToValue(v)
		if err != nil {
			return err
		}
		val.EncodeSQLStringBuilder(&b)
	}
	sql := sqlmode.Denormalize(b.String(), s.Vars.Mode)
	_, _, err := conn.Exec(ctx, sql, backend.ExecOptions{DB: s.DBOn(shard), State: s.State, Timeout: s.sh.QueryTimeout})
	return err
}

func (s *Session) rawAfter(ctx context.Context, conn *backend.Conn) {
	if len(s.Raw.Sets) > 0 {
		names := make([]string, len(s.Raw.Sets))
		for i, n := range s.Raw.Sets {
			names[i] = quoteVar(n)
		}
		res, _, err := conn.Exec(ctx, "SELECT "+strings.Join(names, ", "), backend.ExecOptions{Timeout: s.sh.QueryTimeout})
		if err != nil || len(res.Rows) != 1 {
			conn.MarkBroken()
			return
		}
		if s.UDV == nil {
			s.UDV = map[string]*querypb.BindVariable{}
		}
		for i, name := range s.Raw.Sets {
			s.UDV[name] = sqltypes.ValueBindVariable(res.Rows[0][i])
		}
	}
	clear := make([]string, len(s.Raw.Reads))
	for i, n := range s.Raw.Reads {
		clear[i] = quoteVar(n) + " = NULL"
	}
	if _, _, err := conn.Exec(ctx, "SET "+strings.Join(clear, ", "), backend.ExecOptions{Timeout: s.sh.QueryTimeout}); err != nil {
		conn.MarkBroken()
	}
}

// TakeExtra returns, and forgets, the results a statement gave after its
// first (a CALL's) and the error that ended them.
func (s *Session) TakeExtra() ([]*sqltypes.Result, error) {
	extra, err := s.Extra, s.ExtraErr
	s.Extra, s.ExtraErr = nil, nil
	return extra, err
}

// RawBefore sets on conn, before a statement the session runs there itself
// (a relayed prepared CALL), the user variables s.Raw names, as ExecOn does.
func (s *Session) RawBefore(ctx context.Context, conn *backend.Conn, shard string) error {
	return s.rawBefore(ctx, conn, shard)
}

// RawAfter reads back into the session the user variables s.Raw may have
// assigned on conn, and clears them there, as ExecOn does.
func (s *Session) RawAfter(ctx context.Context, conn *backend.Conn) { s.rawAfter(ctx, conn) }
