package executor

import (
	"context"
	"slices"

	"github.com/strata-db/strata/shardproxy/rwsplit"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/sqlparser"
)

// readWriteStatement runs first for every text statement: it sets the
// primary hint for the statement and answers the STRATA admin statements
// (ok true), which the parser does not know.
func (s *Session) readWriteStatement(ctx context.Context, sql string) (res *sqltypes.Result, err error, ok bool) {
	s.Hint.ForcePrimary = rwsplit.HasPrimaryHint(sql)
	if !rwsplit.IsAdminStatement(sql) {
		return nil, nil, false
	}
	if s.srv.rw == nil {
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSUnknownSQLState,
			"STRATA statements need read/write splitting: set read_write.enabled in the proxy config"), true
	}
	if admins := s.srv.cfg.ReadWrite.AdminUsers; len(admins) > 0 && !rwsplit.IsShowStatement(sql) && !slices.Contains(admins, s.User) {
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERSpecifiedAccessDenied, sqlerror.SSClientError,
			"Access denied; user %q may not change primaries (read_write.admin_users)", s.User), true
	}
	res, err = s.srv.rw.Handle(ctx, sql)
	return res, err, true
}

// setReadConsistency handles SET strata_read_consistency = 'session' |
// 'eventual' | 'strong' (or DEFAULT).
func (s *Session) setReadConsistency(ctx context.Context, expr sqlparser.Expr) error {
	if _, isDefault := expr.(*sqlparser.Default); isDefault {
		s.Hint.Consistency = ""
		return nil
	}
	v, err := s.evalExpr(ctx, expr)
	if err != nil {
		return err
	}
	c, err := rwsplit.ParseConsistency(string(v.Value))
	if err != nil {
		return err
	}
	s.Hint.Consistency = string(c)
	return nil
}
