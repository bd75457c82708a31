package session

import (
	"context"
	"errors"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/shardproxy/backend"
)

// Infile, while set on a session, makes every shard query it sends a LOAD
// DATA LOCAL INFILE whose file the proxy supplies (backend.ExecLocal): the
// executor sets it around one statement, whose shard queries then run as
// any other (outside a transaction, in the open one, or as an atomic
// cross-shard write).
type Infile struct {
	// File is the content for query sql on shard.
	File func(shard, sql string) backend.LocalFile
	// Message, when set, rewrites the messages of query sql's error and
	// warnings on shard (the row numbers of a shard's part into the
	// file's).
	Message func(shard, sql, msg string) string
}

// execInfile is ExecOn for a query of the statement s.Infile serves.
func (s *Session) execInfile(ctx context.Context, conn *backend.Conn, shard, sql, pre string) (*sqltypes.Result, error) {
	in := s.Infile
	o := backend.ExecOptions{DB: s.DBOn(shard), State: s.State, Pre: pre, Timeout: s.sh.QueryTimeout}
	res, warn, err := conn.ExecLocal(ctx, sql, o, in.File(shard, sql))
	if err != nil {
		var se *sqlerror.SQLError
		if in.Message != nil && errors.As(err, &se) {
			return nil, sqlerror.NewSQLError(se.Num, se.State, in.Message(shard, sql, se.Message))
		}
		return nil, err
	}
	if warn > 0 {
		if in.Message == nil {
			s.CollectWarnings(conn)
		} else {
			s.collectWarningsAs(conn, func(msg string) string { return in.Message(shard, sql, msg) })
		}
	}
	return res, nil
}

// collectWarningsAs is CollectWarnings with each message rewritten.
func (s *Session) collectWarningsAs(conn *backend.Conn, rewrite func(string) string) {
	res, err := conn.Warnings()
	if err != nil || res == nil {
		return
	}
	for _, row := range res.Rows {
		if len(row) == 3 {
			row[2] = sqltypes.NewVarChar(rewrite(row[2].ToString()))
		}
	}
	s.WMu.Lock()
	s.Warnings = append(s.Warnings, res.Rows...)
	s.WMu.Unlock()
}
