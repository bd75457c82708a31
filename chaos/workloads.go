package chaos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/strata-db/strata/idserver/client"
)

// workload is one kind of load with its checker. Setup prepares its
// tables; Run is one client's loop until ctx ends; Check reads what it
// needs of the final state and names every anomaly.
type workload interface {
	Setup(ctx context.Context) error
	Run(ctx context.Context, client int, rec *recorder)
	Check(ctx context.Context, rec *recorder) CheckResult
}

// CheckResult is one checker's verdict.
type CheckResult struct {
	Name      string    `json:"name"`
	Passed    bool      `json:"passed"`
	Summary   string    `json:"summary"`
	Anomalies []Anomaly `json:"anomalies,omitempty"`
}

// Anomaly is one thing a checker found wrong, with the operations involved.
type Anomaly struct {
	Kind   string   `json:"kind"`
	Detail string   `json:"detail"`
	Ops    []string `json:"ops,omitempty"`
}

// maxAnomalies bounds how many anomalies of one kind a checker lists (so
// that every kind it found is named, however many of another there are).
const maxAnomalies = 20

func (c *CheckResult) add(a Anomaly) {
	c.Passed = false
	n := 0
	for _, b := range c.Anomalies {
		if b.Kind == a.Kind {
			n++
		}
	}
	if n < maxAnomalies {
		c.Anomalies = append(c.Anomalies, a)
	}
}

// wbase is what every workload shares.
type wbase struct {
	kind  string
	s     *stack
	spec  WorkloadSpec
	runID int64 // keeps one run's rows apart from another's on a reused stack
}

// pacer spaces a client's operations to spec.Rate.
func (w *wbase) pace(ctx context.Context, last time.Time) {
	if w.spec.Rate <= 0 {
		return
	}
	next := last.Add(time.Duration(float64(time.Second) / w.spec.Rate))
	if d := time.Until(next); d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// sess is one client's MySQL session through the proxy; it reconnects
// after an error (a new session: what it knew of its writes is gone).
type sess struct {
	db   *sql.DB
	conn *sql.Conn
	init []string
	gen  int
}

func (w *wbase) newSess(db string, init ...string) (*sess, error) {
	d, err := w.s.openProxy(db)
	if err != nil {
		return nil, err
	}
	d.SetMaxOpenConns(4)
	return &sess{db: d, init: init}, nil
}

func (s *sess) get(ctx context.Context) (*sql.Conn, error) {
	if s.conn != nil {
		return s.conn, nil
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range s.init {
		if _, err := c.ExecContext(ctx, q); err != nil {
			c.Close()
			return nil, err
		}
	}
	s.conn = c
	s.gen++
	return c, nil
}

// fail drops the session after an error: its state is unknown. It also
// backs off a little, so that a client facing a dead server does not spin
// (the errors per second stay a measure of the outage, not of the CPU).
func (s *sess) fail() {
	time.Sleep(20 * time.Millisecond)
	if s.conn != nil {
		_ = s.conn.Raw(func(any) error { return errors.New("drop") })
		s.conn.Close()
		s.conn = nil
	}
}

func (s *sess) close() {
	s.fail()
	s.db.Close()
}

const opTimeout = 5 * time.Second

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// newWorkload builds a workload over s.
func newWorkload(s *stack, spec WorkloadSpec, runID int64) (workload, error) {
	b := wbase{kind: spec.Kind, s: s, spec: spec, runID: runID}
	switch spec.Kind {
	case "set":
		return &setWorkload{wbase: b}, nil
	case "ids":
		return &idsWorkload{wbase: b}, nil
	case "ryw":
		return &rywWorkload{wbase: b}, nil
	case "bank":
		return &bankWorkload{wbase: b}, nil
	case "register":
		return &registerWorkload{wbase: b}, nil
	case "cache":
		return &cacheWorkload{wbase: b}, nil
	}
	return nil, fmt.Errorf("chaos: workload %s: %w", spec.Kind, errNotYet)
}

// finalConn is a session that reads from primaries (strong), for the final
// state.
func (w *wbase) finalConn(ctx context.Context, db string) (*sql.DB, *sql.Conn, error) {
	d, err := w.s.openProxy(db)
	if err != nil {
		return nil, nil, err
	}
	var c *sql.Conn
	var last error
	// The stack may still be settling: retry for a while.
	for i := 0; i < 50 && ctx.Err() == nil; i++ {
		if c, last = d.Conn(ctx); last == nil {
			if _, last = c.ExecContext(ctx, "SET strata_read_consistency = 'strong'"); last == nil || strings.Contains(last.Error(), "Unknown system variable") {
				return d, c, nil
			}
			c.Close()
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.Close()
	return nil, nil, fmt.Errorf("final read: %w", last)
}

// ---- set: every acknowledged insert present, nothing unexpected ----

type setWorkload struct {
	wbase
	mu        sync.Mutex
	attempted map[int64]bool
}

func (w *setWorkload) base() int64 { return w.runID << 44 }

func (w *setWorkload) Setup(ctx context.Context) error {
	w.attempted = map[int64]bool{}
	d, err := w.s.openProxy(w.s.dbSharded)
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = d.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS set_items (id BIGINT PRIMARY KEY, client INT NOT NULL, n BIGINT NOT NULL)")
	return err
}

func (w *setWorkload) Run(ctx context.Context, client int, rec *recorder) {
	s, err := w.newSess(w.s.dbSharded)
	if err != nil {
		return
	}
	defer s.close()
	for n := int64(1); ctx.Err() == nil; n++ {
		id := w.base() | int64(client)<<32 | n
		w.mu.Lock()
		w.attempted[id] = true
		w.mu.Unlock()
		t := time.Now()
		o := Op{Workload: "set", Client: client, Kind: "insert", Key: id, Start: rec.now()}
		c, err := s.get(ctx)
		if err == nil {
			oc, cancel := context.WithTimeout(ctx, opTimeout)
			err = w.insert(oc, c, id, client, n)
			cancel()
		}
		o.End, o.OK, o.Err = rec.now(), err == nil, errText(err)
		if err != nil {
			s.fail()
			if ctx.Err() != nil {
				o.Err = "cancelled at the end of the drill"
			}
		}
		rec.add(o, true)
		w.pace(ctx, t)
	}
}

// insert adds one element: a plain INSERT, or with params.transactions
// one INSERT between BEGIN and COMMIT (as an ORM's session would send it).
func (w *setWorkload) insert(ctx context.Context, c *sql.Conn, id int64, client int, n int64) error {
	const q = "INSERT INTO set_items (id, client, n) VALUES (?, ?, ?)"
	if !pBool(w.spec.Params, "transactions") {
		_, err := c.ExecContext(ctx, q, id, client, n)
		return err
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, q, id, client, n); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (w *setWorkload) Check(ctx context.Context, rec *recorder) CheckResult {
	res := CheckResult{Name: "set", Passed: true}
	d, c, err := w.finalConn(ctx, w.s.dbSharded)
	if err != nil {
		res.Passed, res.Summary = false, err.Error()
		return res
	}
	defer d.Close()
	defer c.Close()
	rows, err := c.QueryContext(ctx, "SELECT id FROM set_items WHERE id >= ? AND id < ?", w.base(), w.base()+1<<44)
	if err != nil {
		res.Passed, res.Summary = false, "final read: "+err.Error()
		return res
	}
	present := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err == nil {
			present[id] = true
		}
	}
	if err := rows.Err(); err != nil {
		res.Passed, res.Summary = false, "final read: "+err.Error()
		return res
	}
	rows.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return checkSet(rec.history("set"), present, w.attempted)
}

// checkSet: every acknowledged insert is present; every present id was
// inserted by some client (an insert that failed may or may not be there).
func checkSet(hist []Op, present, attempted map[int64]bool) CheckResult {
	res := CheckResult{Name: "set", Passed: true}
	acked, lost, failedPresent := 0, 0, 0
	for _, o := range hist {
		switch {
		case o.OK:
			acked++
			if !present[o.Key] {
				lost++
				res.add(Anomaly{Kind: "lost write", Detail: fmt.Sprintf("insert of id %d was acknowledged but the row is missing", o.Key), Ops: []string{o.String()}})
			}
		case present[o.Key]:
			failedPresent++
		}
	}
	for id := range present {
		if !attempted[id] {
			res.add(Anomaly{Kind: "unexpected element", Detail: fmt.Sprintf("id %d is present but no client inserted it", id)})
		}
	}
	res.Summary = fmt.Sprintf("%d inserts acknowledged, %d lost; %d rows present (%d of them from inserts that reported an error: indeterminate, allowed)", acked, lost, len(present), failedPresent)
	return res
}

// ---- ids: no duplicate, ordered as documented (segment or snowflake) ----

type idsWorkload struct {
	wbase
	cl *client.Client
}

func (w *idsWorkload) tag() string { return fmt.Sprintf("chaos-%d", w.runID) }

func (w *idsWorkload) snowflake() bool {
	return pString(w.spec.Params, "mode", "segment") == "snowflake"
}

// The snowflake layout the checker reads the worker from: the service's
// default (Setup checks that the service agrees).
const (
	sfSequenceBits = 12
	sfWorkerBits   = 10
)

func sfWorker(id uint64) uint64 { return id >> sfSequenceBits & (1<<sfWorkerBits - 1) }

func (w *idsWorkload) fetch(ctx context.Context, count uint64) ([]client.Range, error) {
	if w.snowflake() {
		return w.cl.Snowflake(ctx, count)
	}
	return w.cl.Fetch(ctx, w.tag(), count)
}

func (w *idsWorkload) Setup(ctx context.Context) error {
	cfg := client.DefaultConfig()
	cfg.Addrs = w.s.idGRPC
	cfg.RetryFor = 3 * time.Second
	cl, err := client.New(cfg)
	if err != nil {
		return err
	}
	w.cl = cl
	// A snowflake node leases its worker just after it starts: allow for
	// that as for an election.
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var rs []client.Range
	for {
		if rs, err = w.fetch(c, 1); err == nil || c.Err() != nil {
			break
		}
		sleepCtx(c, 100*time.Millisecond)
	}
	if err != nil || !w.snowflake() {
		return err
	}
	d, err := cl.Decode(c, rs[0].Start)
	if err != nil {
		return err
	}
	if d.Worker != sfWorker(rs[0].Start) || d.Sequence != rs[0].Start&(1<<sfSequenceBits-1) {
		return fmt.Errorf("ids: the ID service's snowflake layout is not the default one (worker %d sequence %d decoded, %d %d expected): the checker reads the default", d.Worker, d.Sequence, sfWorker(rs[0].Start), rs[0].Start&(1<<sfSequenceBits-1))
	}
	return nil
}

func (w *idsWorkload) Run(ctx context.Context, cl int, rec *recorder) {
	count := uint64(pInt(w.spec.Params, "count", 10))
	fetch := w.fetch
	if w.snowflake() {
		// Each snowflake client starts on its own node (client i on node
		// i mod n), so that a fault on any node meets traffic; it fails
		// over as any client does.
		cfg := client.DefaultConfig()
		n := len(w.s.idGRPC)
		cfg.Addrs = append(append([]string(nil), w.s.idGRPC[cl%n:]...), w.s.idGRPC[:cl%n]...)
		cfg.RetryFor = 3 * time.Second
		c, err := client.New(cfg)
		if err != nil {
			return
		}
		defer c.Close()
		fetch = func(ctx context.Context, count uint64) ([]client.Range, error) { return c.Snowflake(ctx, count) }
	}
	client := cl
	for ctx.Err() == nil {
		t := time.Now()
		o := Op{Workload: "ids", Client: client, Kind: "fetch", Start: rec.now()}
		if w.snowflake() {
			o.Kind = "snowflake"
		}
		oc, cancel := context.WithTimeout(ctx, opTimeout)
		rs, err := fetch(oc, count)
		cancel()
		o.End, o.OK, o.Err = rec.now(), err == nil, errText(err)
		for _, r := range rs {
			o.Ranges = append(o.Ranges, [2]uint64{r.Start, r.Count})
		}
		rec.add(o, err == nil)
		w.pace(ctx, t)
	}
}

func (w *idsWorkload) Check(_ context.Context, rec *recorder) CheckResult {
	defer w.cl.Close()
	if w.snowflake() {
		return checkIDs(rec.history("ids"), sfWorker)
	}
	return checkIDs(rec.history("ids"), nil)
}

// checkIDs: no ID issued twice; and the documented order. Segment mode
// (group nil): every ID a call returns is greater than every ID of the tag
// any call had returned before it began. Snowflake mode (group gives an
// ID's worker): the same among the IDs of one worker; IDs of different
// workers are not ordered.
func checkIDs(hist []Op, group func(uint64) uint64) CheckResult {
	res := CheckResult{Name: "ids", Passed: true}
	type iv struct {
		lo, hi uint64
		op     int
	}
	var ivs []iv
	total := uint64(0)
	for i, o := range hist {
		for _, r := range o.Ranges {
			if r[1] == 0 {
				continue
			}
			ivs = append(ivs, iv{r[0], r[0] + r[1] - 1, i})
			total += r[1]
		}
	}
	sortFunc(ivs, func(a, b iv) bool { return a.lo < b.lo })
	for i := 1; i < len(ivs); i++ {
		if ivs[i].lo <= ivs[i-1].hi {
			a, b := hist[ivs[i-1].op], hist[ivs[i].op]
			res.add(Anomaly{Kind: "duplicate ID", Detail: fmt.Sprintf("IDs %d..%d were issued twice", ivs[i].lo, min(ivs[i].hi, ivs[i-1].hi)), Ops: []string{a.String(), b.String()}})
		}
	}
	// Real-time order, per group: sweep calls by start; keep the largest ID
	// among calls that had ended before. A call's IDs come from one node,
	// so from one worker.
	type ev struct {
		lo, hi uint64
		op     int
	}
	groups := map[uint64][]ev{}
	for i, o := range hist {
		if len(o.Ranges) == 0 {
			continue
		}
		lo := o.Ranges[0][0]
		last := o.Ranges[len(o.Ranges)-1]
		var g uint64
		if group != nil {
			g = group(lo)
		}
		groups[g] = append(groups[g], ev{lo, last[0] + last[1] - 1, i})
	}
	for g, evs := range groups {
		byEnd := append([]ev(nil), evs...)
		sortFunc(byEnd, func(a, b ev) bool { return hist[a.op].End < hist[b.op].End })
		sortFunc(evs, func(a, b ev) bool { return hist[a.op].Start < hist[b.op].Start })
		j, maxHi, maxOp := 0, uint64(0), -1
		for _, e := range evs {
			for j < len(byEnd) && hist[byEnd[j].op].End < hist[e.op].Start {
				if byEnd[j].hi > maxHi {
					maxHi, maxOp = byEnd[j].hi, byEnd[j].op
				}
				j++
			}
			if maxOp >= 0 && e.lo <= maxHi {
				of := ""
				if group != nil {
					of = fmt.Sprintf(" of worker %d", g)
				}
				res.add(Anomaly{Kind: "order violated", Detail: fmt.Sprintf("a call returned %d after an earlier call (ended before it began) had returned %d%s", e.lo, maxHi, of), Ops: []string{hist[maxOp].String(), hist[e.op].String()}})
			}
		}
	}
	what := "real-time order"
	if group != nil {
		what = fmt.Sprintf("real-time order per worker (%d workers)", len(groups))
	}
	res.Summary = fmt.Sprintf("%d calls, %d IDs checked for duplicates and %s", len(hist), total, what)
	return res
}

// ---- ryw: no stale read of one's own write in session consistency ----

type rywWorkload struct{ wbase }

func (w *rywWorkload) keys() int64 { return pInt(w.spec.Params, "keys", 4) }

func (w *rywWorkload) key(client int, j int64) int64 {
	return w.runID<<32 | int64(client)*w.keys() + j
}

func (w *rywWorkload) Setup(ctx context.Context) error {
	d, err := w.s.openProxy(w.s.dbSharded)
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = d.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS ryw (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)")
	return err
}

func (w *rywWorkload) Run(ctx context.Context, client int, rec *recorder) {
	s, err := w.newSess(w.s.dbSharded, "SET strata_read_consistency = 'session'")
	if err != nil {
		return
	}
	defer s.close()
	for n := int64(1); ctx.Err() == nil; n++ {
		t := time.Now()
		k := w.key(client, n%w.keys())
		c, err := s.get(ctx)
		if err != nil {
			rec.add(Op{Workload: "ryw", Client: client, Kind: "write", Key: k, Value: n, Start: rec.now(), End: rec.now(), Err: err.Error()}, false)
			s.fail()
			w.pace(ctx, t)
			continue
		}
		o := Op{Workload: "ryw", Client: client, Kind: "write", Key: k, Value: n, Start: rec.now()}
		oc, cancel := context.WithTimeout(ctx, opTimeout)
		_, err = c.ExecContext(oc, "INSERT INTO ryw (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)", k, n)
		cancel()
		o.End, o.OK, o.Err = rec.now(), err == nil, errText(err)
		rec.add(o, true)
		if err != nil {
			s.fail()
			w.pace(ctx, t)
			continue
		}
		r := Op{Workload: "ryw", Client: client, Kind: "read", Key: k, Start: rec.now()}
		oc, cancel = context.WithTimeout(ctx, opTimeout)
		err = c.QueryRowContext(oc, "SELECT v FROM ryw WHERE k = ?", k).Scan(&r.Value)
		cancel()
		if errors.Is(err, sql.ErrNoRows) {
			r.Value, err = 0, nil
		}
		r.End, r.OK, r.Err = rec.now(), err == nil, errText(err)
		rec.add(r, true)
		if err != nil {
			s.fail()
		}
		w.pace(ctx, t)
	}
}

func (w *rywWorkload) Check(_ context.Context, rec *recorder) CheckResult {
	return checkRYW(rec.history("ryw"))
}

// checkRYW: a read in a client's session returns at least the value of
// that client's last acknowledged write of the key (values only grow),
// unless the session broke in between (then the read starts a new one).
func checkRYW(hist []Op) CheckResult {
	res := CheckResult{Name: "ryw", Passed: true}
	type key struct {
		client int
		k      int64
	}
	last := map[key]int{}
	reads, stale := 0, 0
	for i, o := range hist {
		kk := key{o.Client, o.Key}
		switch {
		case o.Kind == "write" && o.OK:
			last[kk] = i
		case o.Kind == "write":
			delete(last, kk) // indeterminate, and the session is new
		case o.Kind == "read" && o.OK:
			reads++
			wi, ok := last[kk]
			if ok && o.Value < hist[wi].Value {
				stale++
				res.add(Anomaly{Kind: "stale read", Detail: fmt.Sprintf("client %d read k=%d → %d after its own acknowledged write of %d in the same session", o.Client, o.Key, o.Value, hist[wi].Value), Ops: []string{hist[wi].String(), o.String()}})
			}
		}
	}
	res.Summary = fmt.Sprintf("%d reads after acknowledged writes in the same session, %d stale", reads, stale)
	return res
}

// ---- bank: conserved total, no negative balance, every acked transfer applied ----

type bankWorkload struct {
	wbase
	mu        sync.Mutex
	attempted map[int64]bool
}

func (w *bankWorkload) db() string {
	if pBool(w.spec.Params, "cross_shard") {
		return w.s.dbSharded
	}
	return w.s.dbSingle
}
func (w *bankWorkload) accounts() int64 { return pInt(w.spec.Params, "accounts", 8) }
func (w *bankWorkload) initial() int64  { return pInt(w.spec.Params, "initial", 100) }
func (w *bankWorkload) acct(i int64) int64 {
	return w.runID<<20 | i
}

func (w *bankWorkload) Setup(ctx context.Context) error {
	w.attempted = map[int64]bool{}
	d, err := w.s.openProxy(w.db())
	if err != nil {
		return err
	}
	defer d.Close()
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)",
		"CREATE TABLE IF NOT EXISTS transfers (id BIGINT PRIMARY KEY, src BIGINT NOT NULL, dst BIGINT NOT NULL, amount BIGINT NOT NULL)",
	} {
		if _, err := d.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	for i := int64(0); i < w.accounts(); i++ {
		if _, err := d.ExecContext(ctx, "INSERT INTO accounts (id, balance) VALUES (?, ?) ON DUPLICATE KEY UPDATE balance = VALUES(balance)", w.acct(i), w.initial()); err != nil {
			return err
		}
	}
	return nil
}

func (w *bankWorkload) Run(ctx context.Context, client int, rec *recorder) {
	s, err := w.newSess(w.db())
	if err != nil {
		return
	}
	defer s.close()
	n := w.accounts()
	// Across shards a transaction's snapshot is one per shard, taken
	// separately, so a read may fall between two shards' commits of one
	// transfer: its total is no invariant there, and only the final state
	// is checked.
	snapshots := !pBool(w.spec.Params, "cross_shard")
	for seq := int64(1); ctx.Err() == nil; seq++ {
		t := time.Now()
		if seq%8 == 0 && snapshots {
			w.readTotal(ctx, s, client, rec)
			w.pace(ctx, t)
			continue
		}
		src, dst := rand.Int64N(n), rand.Int64N(n-1)
		if dst >= src {
			dst++
		}
		amount := 1 + rand.Int64N(w.initial()/2)
		id := w.runID<<40 | int64(client)<<32 | seq
		w.mu.Lock()
		w.attempted[id] = true
		w.mu.Unlock()
		o := Op{Workload: "bank", Client: client, Kind: "transfer", Key: w.acct(src), Value: w.acct(dst), Value2: id, Ranges: [][2]uint64{{uint64(amount), 0}}, Start: rec.now()}
		applied, err := w.transfer(ctx, s, id, w.acct(src), w.acct(dst), amount)
		o.End, o.OK, o.Err = rec.now(), err == nil, errText(err)
		if err != nil {
			s.fail()
		}
		rec.add(o, applied || err != nil)
		w.pace(ctx, t)
	}
}

// transfer moves amount from src to dst if src has it, logging the
// transfer in the same transaction. applied is false when src was short.
func (w *bankWorkload) transfer(ctx context.Context, s *sess, id, src, dst, amount int64) (applied bool, err error) {
	c, err := s.get(ctx)
	if err != nil {
		return false, err
	}
	oc, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	tx, err := c.BeginTx(oc, nil)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil || !applied {
			_ = tx.Rollback()
		}
	}()
	r, err := tx.ExecContext(oc, "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?", amount, src, amount)
	if err != nil {
		return false, err
	}
	if k, _ := r.RowsAffected(); k != 1 {
		return false, nil
	}
	if _, err = tx.ExecContext(oc, "UPDATE accounts SET balance = balance + ? WHERE id = ?", amount, dst); err != nil {
		return false, err
	}
	if _, err = tx.ExecContext(oc, "INSERT INTO transfers (id, src, dst, amount) VALUES (?, ?, ?, ?)", id, src, dst, amount); err != nil {
		return false, err
	}
	if err = tx.Commit(); err != nil {
		return false, err
	}
	return true, nil
}

// readTotal reads every balance in one transaction (a snapshot on the
// primary) and records the total and the minimum.
func (w *bankWorkload) readTotal(ctx context.Context, s *sess, client int, rec *recorder) {
	o := Op{Workload: "bank", Client: client, Kind: "balance", Start: rec.now()}
	err := func() error {
		c, err := s.get(ctx)
		if err != nil {
			return err
		}
		oc, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		tx, err := c.BeginTx(oc, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		return tx.QueryRowContext(oc, "SELECT COALESCE(SUM(balance), 0), COALESCE(MIN(balance), 0) FROM accounts WHERE id >= ? AND id < ?", w.acct(0), w.acct(w.accounts())).Scan(&o.Key, &o.Value)
	}()
	o.End, o.OK, o.Err = rec.now(), err == nil, errText(err)
	if err != nil {
		s.fail()
	}
	rec.add(o, true)
}

func (w *bankWorkload) Check(ctx context.Context, rec *recorder) CheckResult {
	res := CheckResult{Name: "bank", Passed: true}
	total := w.accounts() * w.initial()
	hist := rec.history("bank")
	reads := 0
	for _, o := range hist {
		if o.Kind != "balance" || !o.OK {
			continue
		}
		reads++
		if o.Key != total {
			res.add(Anomaly{Kind: "total not conserved", Detail: fmt.Sprintf("a snapshot read found a total of %d, not %d", o.Key, total), Ops: []string{o.String()}})
		}
		if o.Value < 0 {
			res.add(Anomaly{Kind: "negative balance", Detail: fmt.Sprintf("a snapshot read found a balance of %d", o.Value), Ops: []string{o.String()}})
		}
	}
	d, c, err := w.finalConn(ctx, w.db())
	if err != nil {
		res.Passed, res.Summary = false, err.Error()
		return res
	}
	defer d.Close()
	defer c.Close()
	bal := map[int64]int64{}
	rows, err := c.QueryContext(ctx, "SELECT id, balance FROM accounts WHERE id >= ? AND id < ?", w.acct(0), w.acct(w.accounts()))
	if err == nil {
		for rows.Next() {
			var id, b int64
			_ = rows.Scan(&id, &b)
			bal[id] = b
		}
		err = rows.Err()
		rows.Close()
	}
	if err != nil {
		res.Passed, res.Summary = false, "final read: "+err.Error()
		return res
	}
	logged := map[int64]bool{}
	want := map[int64]int64{}
	for i := int64(0); i < w.accounts(); i++ {
		want[w.acct(i)] = w.initial()
	}
	rows, err = c.QueryContext(ctx, "SELECT id, src, dst, amount FROM transfers WHERE id >= ? AND id < ?", w.runID<<40, (w.runID+1)<<40)
	if err == nil {
		for rows.Next() {
			var id, src, dst, amt int64
			_ = rows.Scan(&id, &src, &dst, &amt)
			logged[id] = true
			want[src] -= amt
			want[dst] += amt
		}
		err = rows.Err()
		rows.Close()
	}
	if err != nil {
		res.Passed, res.Summary = false, "final read: "+err.Error()
		return res
	}
	acked, lost := 0, 0
	for _, o := range hist {
		if o.Kind == "transfer" && o.OK {
			acked++
			if !logged[o.Value2] {
				lost++
				res.add(Anomaly{Kind: "lost transfer", Detail: fmt.Sprintf("transfer #%d was acknowledged but is not applied", o.Value2), Ops: []string{o.String()}})
			}
		}
	}
	w.mu.Lock()
	for id := range logged {
		if !w.attempted[id] {
			res.add(Anomaly{Kind: "unexpected transfer", Detail: fmt.Sprintf("transfer #%d is applied but no client made it", id)})
		}
	}
	w.mu.Unlock()
	sum := int64(0)
	for id, b := range bal {
		sum += b
		if b < 0 {
			res.add(Anomaly{Kind: "negative balance", Detail: fmt.Sprintf("account %d ends at %d", id, b)})
		}
		if want[id] != b {
			res.add(Anomaly{Kind: "balance disagrees with the transfer log", Detail: fmt.Sprintf("account %d ends at %d; the applied transfers give %d", id, b, want[id])})
		}
	}
	if sum != total {
		res.add(Anomaly{Kind: "total not conserved", Detail: fmt.Sprintf("the final balances sum to %d, not %d", sum, total)})
	}
	res.Summary = fmt.Sprintf("%d transfers acknowledged, %d lost, %d applied in all; %d snapshot reads; final total %d of %d", acked, lost, len(logged), reads, sum, total)
	return res
}
