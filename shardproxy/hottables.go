package shardproxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/hotrow"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// This file is the server's part of hot tables: the hot-row combiner its
// sessions share, and the month sub-tables created ahead.

// newHotCombiner returns the combiner of hot-row writes, nil when no table
// combines writes.
func newHotCombiner(vs *vschema.VSchema, reg prometheus.Registerer) (*engine.HotCombiner, error) {
	for _, d := range vs.Databases {
		for _, t := range d.Tables {
			if t.CombineWrites {
				c, err := engine.NewHotCombiner(hotrow.DefaultConfig(), reg)
				if err != nil {
					return nil, fmt.Errorf("shardproxy: %w", err)
				}
				return c, nil
			}
		}
	}
	return nil, nil
}

// createMonthTables creates the month sub-tables that should exist now
// (engine.MonthTablesAhead), LIKE the table of the logical name. Before
// that table exists (no CREATE TABLE through the proxy yet) there is
// nothing to copy, and the CREATE TABLE makes every month then.
func (s *Server) createMonthTables(ctx context.Context) {
	for _, q := range engine.MonthTablesAhead(s.vs, time.Now()) {
		err := s.onPrimary(ctx, q.Shard, func(conn *backend.Conn) error {
			_, _, err := conn.Exec(ctx, q.SQL, backend.ExecOptions{Timeout: s.cfg.Backend.ConnectTimeout})
			return err
		})
		var se *sqlerror.SQLError
		if errors.As(err, &se) && se.Num == sqlerror.ERNoSuchTable {
			continue
		}
		if err != nil {
			s.log.Warn("shardproxy: cannot create a month sub-table ahead", "shard", q.Shard, "sql", q.SQL, "err", err)
		}
	}
}

// monthTablesLoop creates month sub-tables ahead every few hours while the
// server runs, so that a month's table exists before its first row.
func (s *Server) monthTablesLoop(ctx context.Context) {
	if len(engine.MonthTablesAhead(s.vs, time.Now())) == 0 {
		return
	}
	t := time.NewTicker(6 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-t.C:
			s.createMonthTables(ctx)
		}
	}
}
