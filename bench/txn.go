package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/chaos"
)

// txnBench: bank transfers through the proxy (UPDATE one account, UPDATE
// another, INSERT a transfer log row, COMMIT), as shardproxy/xa
// BenchmarkTransfer runs them, over two shards and a coordinator group of
// coordinators nodes (default 3, `strata txcoord`): both accounts on one
// shard (the reference: a plain BEGIN/COMMIT), and on two shards (XA
// two-phase commit with the decision recorded in the coordinator group);
// also single-shard transfers in a database with transaction_mode single
// (the proxy without cross-shard transactions). Params: coordinators,
// accounts (per database, default 2000), sessions (default: threads×2).
type txnBench struct{}

func (txnBench) Setup(ctx context.Context, e *Env) (vs []Variant, stop func(), err error) {
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
	g, err := chaos.StartGroup(ctx, chaos.GroupConfig{Binary: e.Binary, Command: "txcoord", Nodes: param(e, "coordinators", 3),
		Dir: filepath.Join(e.Dir, "txcoord"), Args: []string{"--seata-addr", "off"}})
	if err != nil {
		return nil, s.stop, err
	}
	s.add(g.Close)
	tables := "{accounts: {kind: sharded, column: id}, transfers: {kind: sharded, column: src}}"
	addr, _, err := s.proxy(ctx, e, "proxy", shardsYAML(topo)+fmt.Sprintf(
		"databases:\n  bank: {sharded: true, tables: %s}\n  single: {sharded: true, transaction_mode: single, tables: %s}\ntransactions:\n  coordinator: [%s]\n",
		tables, tables, strings.Join(g.GRPCAddrs(), ", ")))
	if err != nil {
		return nil, s.stop, err
	}
	n := param(e, "accounts", 2000)
	sessions := param(e, "sessions", 2*e.Threads)
	dbs := map[string]*sql.DB{}
	for _, name := range []string{"bank", "single"} {
		db, err := openDB(addr, "root", name)
		if err != nil {
			return nil, s.stop, err
		}
		s.add(func() { db.Close() })
		db.SetMaxOpenConns(sessions)
		db.SetMaxIdleConns(sessions)
		dbs[name] = db
		vals := make([]string, 0, n)
		for i := 1; i <= n; i++ {
			vals = append(vals, fmt.Sprintf("(%d, 1000000)", i))
		}
		for _, q := range []string{
			"CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)",
			"CREATE TABLE transfers (id BIGINT NOT NULL, src BIGINT NOT NULL, dst BIGINT NOT NULL, amount BIGINT NOT NULL, PRIMARY KEY (src, id))",
			"INSERT INTO accounts (id, balance) VALUES " + strings.Join(vals, ","),
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return nil, s.stop, fmt.Errorf("%s: %w", q[:min(len(q), 40)], err)
			}
		}
	}
	// Which accounts each shard holds, asked of the shards themselves.
	var byShard [][]int64
	for _, sh := range topo.Shards() {
		d, err := sh.Primary().Open("bank")
		if err != nil {
			return nil, s.stop, err
		}
		var ids []int64
		rows, err := d.QueryContext(ctx, "SELECT id FROM accounts")
		for err == nil && rows.Next() {
			var id int64
			if err = rows.Scan(&id); err == nil {
				ids = append(ids, id)
			}
		}
		if rows != nil {
			rows.Close()
		}
		d.Close()
		if err != nil || len(ids) < 2 {
			return nil, s.stop, fmt.Errorf("accounts on %s: %d (%v)", sh.Name, len(ids), err)
		}
		byShard = append(byShard, ids)
	}
	var seq atomic.Int64
	run := func(db string, cross bool) func(ctx context.Context, d time.Duration) (Round, error) {
		return func(ctx context.Context, d time.Duration) (Round, error) {
			return perOp(ctx, sessions, d, "transfers/s", func(ctx context.Context) error {
				r := rand.New(rand.NewPCG(uint64(seq.Add(1)), 1))
				from, to := byShard[0], byShard[1]
				if r.IntN(2) == 0 {
					from, to = to, from
				}
				if !cross {
					to = from
				}
				a, c := from[r.IntN(len(from))], to[r.IntN(len(to))]
				for a == c {
					c = to[r.IntN(len(to))]
				}
				// Deadlocks and lock waits between transfers are retried, as
				// an application would.
				for try := 0; ; try++ {
					err := transfer(ctx, dbs[db], seq.Add(1), a, c)
					var me *mysql.MySQLError
					if err == nil || try > 20 || !errors.As(err, &me) || (me.Number != 1213 && me.Number != 1205) {
						return err
					}
				}
			}), nil
		}
	}
	return []Variant{
		{Name: "single-shard transfers (twopc mode)", Reference: true, Run: run("bank", false)},
		{Name: fmt.Sprintf("cross-shard transfers (XA, %d-node coordinator)", len(g.Nodes)), Run: run("bank", true)},
		{Name: "single-shard transfers (transaction_mode single)", Run: run("single", false)},
	}, s.stop, nil
}

// transfer moves 1 from account a to c and logs it, in one transaction.
func transfer(ctx context.Context, db *sql.DB, id, a, c int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, st := range []struct {
		q    string
		args []any
	}{
		{"UPDATE accounts SET balance = balance - 1 WHERE id = ? AND balance >= 1", []any{a}},
		{"UPDATE accounts SET balance = balance + 1 WHERE id = ?", []any{c}},
		{"INSERT INTO transfers (id, src, dst, amount) VALUES (?, ?, ?, 1)", []any{id, a, c}},
	} {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}
