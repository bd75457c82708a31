package shardproxy

import (
	"context"
	"fmt"
	"slices"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/rwsplit"
)

// This file is read/write splitting's part of the server (package rwsplit
// does the work): it starts the router when the config enables it, and
// hooks the primary hint, the strata_read_consistency session variable and
// the STRATA admin statements into the session.

// startReadWrite builds and starts the read/write router when
// read_write.enabled is set and no Router was given, and binds a given
// *rwsplit.Router to the pools.
func (s *Server) startReadWrite(ctx context.Context, o Options) error {
	rw, _ := o.Router.(*rwsplit.Router)
	if rw == nil && o.Router == nil && s.cfg.ReadWrite.Enabled {
		var err error
		if rw, err = rwsplit.New(s.cfg, s.reg, s.log); err != nil {
			return fmt.Errorf("shardproxy: read_write: %w", err)
		}
		s.ownRW = true
	}
	if rw == nil {
		return nil
	}
	if err := rw.Bind(s.cluster); err != nil {
		return err
	}
	s.cluster.SetRouter(rw)
	s.rw = rw
	if s.ownRW {
		if err := rw.Start(ctx); err != nil {
			rw.Close()
			return fmt.Errorf("shardproxy: read_write: %w", err)
		}
	}
	return nil
}

// stopReadWrite stops a router startReadWrite started.
func (s *Server) stopReadWrite() {
	if s.rw != nil && s.ownRW {
		_ = s.rw.Close()
	}
}

// ReadWrite is the read/write router, nil when splitting is off.
func (s *Server) ReadWrite() *rwsplit.Router { return s.rw }

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
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERSpecifiedAccessDenied, "42000",
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

// readConsistency is the session's level, for SELECT @@strata_read_consistency.
func (s *Session) ReadConsistency() string {
	switch {
	case s.Hint.Consistency != "":
		return s.Hint.Consistency
	case s.srv.rw != nil:
		return string(s.srv.rw.DefaultConsistency())
	}
	return "strong" // no splitting: everything reads the primary
}
