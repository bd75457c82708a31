package bench

import (
	"context"
	"fmt"
	"time"
)

// hotrowBench: sessions sessions (default 64) each incrementing the same
// row through the proxy (UPDATE t SET n = n + 1, m = m - 1 WHERE id = 1,
// parameters interpolated), as shardproxy/internal/hottest
// TestCombineWritesThroughProxy runs them: a table with combine_writes
// (the proxy folds concurrent increments of one row into one statement)
// against the same table without (the reference), one proxy, two shards.
// Params: sessions.
type hotrowBench struct{}

func (hotrowBench) Setup(ctx context.Context, e *Env) (vs []Variant, stop func(), err error) {
	s := &stack{}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	topo, err := s.topology(ctx, e, 2, 0)
	if err != nil {
		return nil, s.stop, err
	}
	for _, sh := range topo.Shards() {
		if err := sh.Primary().Exec(ctx, "CREATE DATABASE IF NOT EXISTS shop"); err != nil {
			return nil, s.stop, err
		}
	}
	addr, _, err := s.proxy(ctx, e, "proxy", shardsYAML(topo)+
		"databases:\n  shop:\n    sharded: true\n    tables:\n      hot: {kind: sharded, column: id, combine_writes: true}\n      cold: {kind: sharded, column: id}\n")
	if err != nil {
		return nil, s.stop, err
	}
	sessions := param(e, "sessions", 64)
	db, err := openDB(addr, "root", "shop")
	if err != nil {
		return nil, s.stop, err
	}
	s.add(func() { db.Close() })
	db.SetMaxOpenConns(sessions)
	db.SetMaxIdleConns(sessions)
	for _, q := range []string{
		"CREATE TABLE hot (id BIGINT PRIMARY KEY, n BIGINT NOT NULL, m BIGINT NOT NULL DEFAULT 0)",
		"CREATE TABLE cold (id BIGINT PRIMARY KEY, n BIGINT NOT NULL, m BIGINT NOT NULL DEFAULT 0)",
		"INSERT INTO hot (id, n) VALUES (1, 0)",
		"INSERT INTO cold (id, n) VALUES (1, 0)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, s.stop, fmt.Errorf("%s: %w", q, err)
		}
	}
	run := func(table string) func(ctx context.Context, d time.Duration) (Round, error) {
		q := "UPDATE " + table + " SET n = n + ?, m = m - ? WHERE id = ?"
		return func(ctx context.Context, d time.Duration) (Round, error) {
			return perOp(ctx, sessions, d, "updates/s", func(ctx context.Context) error {
				r, err := db.ExecContext(ctx, q, 1, 1, 1)
				if err != nil {
					return err
				}
				if n, _ := r.RowsAffected(); n != 1 {
					return fmt.Errorf("%s: %d rows affected", table, n)
				}
				return nil
			}), nil
		}
	}
	return []Variant{
		{Name: fmt.Sprintf("plain, %d sessions on one row", sessions), Reference: true, Run: run("cold")},
		{Name: fmt.Sprintf("combine_writes, %d sessions on one row", sessions), Run: run("hot")},
	}, s.stop, nil
}
