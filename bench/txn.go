package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
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
// accounts (per database, default 2000), sessions (default: threads×2),
// coord_procs (GOMAXPROCS of each coordinator node, default 1: three
// nodes share the machine's cores with everything else, as each would have
// a machine of its own in production, and Go's idle scheduler threads cost
// a node about a fifth of its CPU per decision here; 0: Go's default),
// proxy_procs (the proxy's GOMAXPROCS, default Go's), profile (a
// directory: CPU profiles of the proxy and the coordinator's leader over
// each bank variant's run), deadlock_check_ms (the proxy's
// transactions.deadlock_check; 0 turns it off). Its CPU µs/op is what the whole
// stack spent per transfer (the proxy, every coordinator node, both
// MariaDB servers and this load client); each run also logs that CPU by
// process and the statements each shard ran per transfer.
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
	gc := chaos.GroupConfig{Binary: e.Binary, Command: "txcoord", Nodes: param(e, "coordinators", 3),
		Dir: filepath.Join(e.Dir, "txcoord"), Args: []string{"--seata-addr", "off"}}
	if n := param(e, "proposers", 0); n > 0 {
		gc.Args = append(gc.Args, "--txcoord-proposers", fmt.Sprint(n))
	}
	coordProcs := ""
	if n := param(e, "coord_procs", 1); n > 0 {
		gc.Env = append(gc.Env, fmt.Sprintf("GOMAXPROCS=%d", n))
		coordProcs = fmt.Sprintf(", GOMAXPROCS=%d", n)
	}
	g, err := chaos.StartGroup(ctx, gc)
	if err != nil {
		return nil, s.stop, err
	}
	s.add(g.Close)
	tables := "{accounts: {kind: sharded, column: id}, transfers: {kind: sharded, column: src}}"
	profile := e.Params["profile"]
	admin := ""
	if profile != "" {
		if admin, err = freeAddr(); err != nil {
			return nil, s.stop, err
		}
		if err := os.MkdirAll(profile, 0o755); err != nil {
			return nil, s.stop, err
		}
	}
	body := shardsYAML(topo) + fmt.Sprintf(
		"databases:\n  bank: {sharded: true, tables: %s}\n  single: {sharded: true, transaction_mode: single, tables: %s}\ntransactions:\n  coordinator: [%s]\n",
		tables, tables, strings.Join(g.GRPCAddrs(), ", "))
	if ms, ok := e.Params["deadlock_check_ms"]; ok {
		// 0: without the proxy's check, a deadlock across shards lasts
		// innodb_lock_wait_timeout (the transfers retry its 1205).
		body += fmt.Sprintf("  deadlock_check: %sms\n", ms)
	}
	if admin != "" {
		body += "admin_listen: " + admin + "\n"
	}
	addr, pp, err := s.proxy(ctx, e, "proxy", body) // proxy_procs: see stack.proxy
	if err != nil {
		return nil, s.stop, err
	}
	pr := &txnProbe{log: e.Logger, group: g, proxy: pp.pid()}
	for _, sh := range topo.Shards() {
		db, err := sh.Primary().OpenAdmin("")
		if err != nil {
			return nil, s.stop, err
		}
		s.add(func() { db.Close() })
		pr.shards = append(pr.shards, probeShard{name: sh.Name, pid: sh.Primary().Pid(), db: db})
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
		name := db + map[bool]string{false: "-single", true: "-cross"}[cross]
		return func(ctx context.Context, d time.Duration) (Round, error) {
			if profile != "" && db == "bank" {
				// CPU profiles of the proxy and the coordinator's leader
				// over this run (a later round's replace an earlier one's).
				dir := profile
				if lead, err := g.Leader(ctx); err == nil {
					go func() {
						if err := fetchProfile(ctx, g.Nodes[lead].HTTP, d, filepath.Join(dir, "txcoord-leader-"+name+".pprof")); err != nil {
							e.Logger.Warn("txn: coordinator profile", "err", err)
						}
					}()
				}
				go func() {
					if err := fetchProfile(ctx, admin, d, filepath.Join(dir, "proxy-"+name+".pprof")); err != nil {
						e.Logger.Warn("txn: proxy profile", "err", err)
					}
				}()
			}
			before := pr.snapshot(ctx)
			var deadlocks, timeouts atomic.Int64
			var failed sync.Map // an error's text → *atomic.Int64: transfers that failed with it
			r := perOp(ctx, sessions, d, "transfers/s", func(ctx context.Context) error {
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
						if err != nil && ctx.Err() == nil {
							n, _ := failed.LoadOrStore(err.Error(), new(atomic.Int64))
							n.(*atomic.Int64).Add(1)
						}
						return err
					}
					if me.Number == 1213 {
						deadlocks.Add(1)
					} else {
						timeouts.Add(1)
					}
				}
			})
			e.Logger.Info("txn: transfers retried", "variant", name, "deadlock_1213", deadlocks.Load(), "lock_wait_timeout_1205", timeouts.Load())
			failed.Range(func(k, v any) bool {
				e.Logger.Warn("txn: transfers failed", "variant", name, "count", v.(*atomic.Int64).Load(), "err", k)
				return true
			})
			r.CPUus = pr.report(ctx, name, before, r.Rate*d.Seconds())
			return r, nil
		}
	}
	return []Variant{
		{Name: "single-shard transfers (twopc mode)", Reference: true, Run: run("bank", false)},
		{Name: fmt.Sprintf("cross-shard transfers (XA, %d-node coordinator%s)", len(g.Nodes), coordProcs), Run: run("bank", true)},
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

// txnProbe measures, over one variant's run, the CPU each process of the
// stack spent and the statements each shard's primary ran, per transfer.
type txnProbe struct {
	log    *slog.Logger
	group  *chaos.Group
	proxy  int
	shards []probeShard
}

type probeShard struct {
	name string
	pid  int
	db   *sql.DB
}

// probeCounters are the server status counters read per shard: what a
// transfer costs each server in statements (Questions counts every
// statement of a multi-statement packet), and the lock waits (their time
// in ms) and deadlocks it met.
var probeCounters = []string{"Questions", "Com_begin", "Com_commit", "Com_rollback", "Com_update", "Com_insert",
	"Com_xa_start", "Com_xa_end", "Com_xa_prepare", "Com_xa_commit", "Com_xa_rollback",
	"Innodb_row_lock_waits", "Innodb_row_lock_time", "Innodb_deadlocks",
	"Innodb_os_log_fsyncs", "Innodb_data_fsyncs", "Binlog_group_commits"}

type probeSnap struct {
	at     time.Time
	leader int // the coordinator node leading at the start
	ticks  map[string]int64
	// sys: read and write system calls (syscr+syscw of /proc/PID/io:
	// read/write on files and, for Go, sockets; not send/recv, which
	// MariaDB uses) and context switches of every thread, per process.
	sys    map[string][2]int64
	status map[string]map[string]int64 // shard → counter → value
	// batch is the leader's strata_txcoord_batch_size: requests (sum) and
	// Raft entries (count) it proposed.
	batch [2]float64
}

// leaderBatches reads the sum and count of strata_txcoord_batch_size
// from node i's /metrics.
func (p *txnProbe) leaderBatches(ctx context.Context, i int) [2]float64 {
	var out [2]float64
	if i < 0 {
		return out
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.group.Nodes[i].HTTP+"/metrics", nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		for k, name := range []string{"strata_txcoord_batch_size_sum ", "strata_txcoord_batch_size_count "} {
			if v, ok := strings.CutPrefix(line, name); ok {
				out[k], _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			}
		}
	}
	return out
}

// sysCounts reads a process's read and write system calls and its
// threads' context switches (voluntary and not) from /proc.
func sysCounts(pid int) [2]int64 {
	var out [2]int64
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ": ")
			if k == "syscr" || k == "syscw" {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				out[0] += n
			}
		}
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches" {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				out[1] += n
			}
		}
	}
	return out
}

func (p *txnProbe) pids() map[string]int {
	m := map[string]int{"proxy": p.proxy, "client": os.Getpid()}
	for _, sh := range p.shards {
		m["mariadb-"+sh.name] = sh.pid
	}
	for i, n := range p.group.Nodes {
		m[fmt.Sprintf("txcoord-%d", i)] = n.Pid()
	}
	return m
}

func (p *txnProbe) snapshot(ctx context.Context) probeSnap {
	s := probeSnap{at: time.Now(), ticks: map[string]int64{}, sys: map[string][2]int64{}, status: map[string]map[string]int64{}}
	s.leader, _ = p.group.Leader(ctx)
	s.batch = p.leaderBatches(ctx, s.leader)
	for name, pid := range p.pids() {
		s.ticks[name] = cpuTicks(pid)
		s.sys[name] = sysCounts(pid)
	}
	for _, sh := range p.shards {
		m := map[string]int64{}
		rows, err := sh.db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('"+strings.Join(probeCounters, "','")+"')")
		for err == nil && rows.Next() {
			var k string
			var v int64
			if rows.Scan(&k, &v) == nil {
				m[k] = v
			}
		}
		if rows != nil {
			rows.Close()
		}
		s.status[sh.name] = m
	}
	return s
}

// report logs the per-transfer breakdown since before and returns the
// stack's total CPU per transfer, in µs.
func (p *txnProbe) report(ctx context.Context, variant string, before probeSnap, transfers float64) float64 {
	if transfers <= 0 {
		return 0
	}
	after := p.snapshot(ctx)
	const usPerTick = 1e6 / 100
	var names []string
	for n := range after.ticks {
		names = append(names, n)
	}
	sort.Strings(names)
	var total float64
	var cpu, sys []string
	for _, n := range names {
		us := float64(after.ticks[n]-before.ticks[n]) * usPerTick / transfers
		total += us
		a, b := after.sys[n], before.sys[n]
		if n == fmt.Sprintf("txcoord-%d", before.leader) {
			n += "(leader)"
		}
		cpu = append(cpu, fmt.Sprintf("%s=%.0f", n, us))
		sys = append(sys, fmt.Sprintf("%s=%.1f/%.1f", n, float64(a[0]-b[0])/transfers, float64(a[1]-b[1])/transfers))
	}
	busy := 100 * total * transfers / 1e6 / after.at.Sub(before.at).Seconds() / float64(runtime.NumCPU())
	attrs := []any{"variant", variant, "transfers", int(transfers), "busy_pct", fmt.Sprintf("%.0f", busy),
		"cpu_us_per_transfer", fmt.Sprintf("total=%.0f %s", total, strings.Join(cpu, " ")),
		"io_syscalls_and_context_switches_per_transfer", strings.Join(sys, " ")}
	for _, sh := range p.shards {
		var st []string
		for _, k := range probeCounters {
			if d := after.status[sh.name][k] - before.status[sh.name][k]; d > 0 {
				st = append(st, fmt.Sprintf("%s=%.2f", strings.TrimPrefix(k, "Com_"), float64(d)/transfers))
			}
		}
		attrs = append(attrs, "statements_per_transfer_"+sh.name, strings.Join(st, " "))
	}
	if after.leader == before.leader {
		if n := after.batch[1] - before.batch[1]; n > 0 {
			attrs = append(attrs, "coordinator_raft_entries_per_transfer", fmt.Sprintf("%.2f", n/transfers),
				"requests_per_entry", fmt.Sprintf("%.2f", (after.batch[0]-before.batch[0])/n))
		}
	}
	p.log.Info("txn: per transfer", attrs...)
	return total
}
