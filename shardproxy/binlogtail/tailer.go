package binlogtail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/replication"
	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/sqlparser"
)

// RowChange is one row a transaction inserted, updated or deleted.
type RowChange struct {
	DB, Table string
	// Key holds the primary key's values. An update reports two
	// RowChanges, its before image and its after image.
	Key []sqltypes.Value
	// Columns and Row are the table's columns and the image Key came from;
	// a column the image does not carry (binlog_row_image=MINIMAL) is NULL
	// in Row.
	Columns []string
	Row     []sqltypes.Value
}

// TableChange is a change the tailer cannot attribute to rows: every row of
// Table may have changed, or of every table in DB when Table is empty, or
// of every table when DB is empty too.
type TableChange struct {
	DB, Table string
}

// Txn is one committed transaction.
type Txn struct {
	Shard string
	// GTID is the transaction's MariaDB GTID, e.g. "0-1-42".
	GTID string
	// Time is the commit time from the event header (second resolution).
	Time   time.Time
	Rows   []RowChange
	Tables []TableChange
}

// Stats describes the tailer now.
type Stats struct {
	Shard       string
	Primary     string // the server being tailed, "" while disconnected
	Position    string // GTID position of the last transaction delivered
	Connected   bool
	Txns        uint64
	Rows        uint64
	Reconnects  uint64
	Switchovers uint64
	// LastLag is the last lag sample; Lag50 and Lag99 are over the last
	// 4096 samples (see the package comment for what a sample is).
	LastLag, Lag50, Lag99, LagMax time.Duration
	// Behind is how long the oldest unanswered probe has waited: it grows
	// while the tailer is stuck or disconnected.
	Behind  time.Duration
	Samples int
}

// Tailer tails one shard. Run it; read Stats from any goroutine.
type Tailer struct {
	cfg   Config
	onTxn func(Txn)
	log   *slog.Logger

	schema schemaCache
	parser *sqlparser.Parser

	mu       sync.Mutex
	pos      replication.MariadbGTIDSet // delivered so far
	primary  string                     // tailed now
	last     string                     // tailed last, to count switchovers
	lostAt   time.Time                  // when the connection was lost (or the tailer made)
	inflight time.Time                  // when the probe being asked was taken
	probes   []probe
	samples  []time.Duration // ring
	next     int
	lagMax   time.Duration

	txns, rows, reconnects, switchovers atomic.Uint64
}

type probe struct {
	want map[uint32]uint64
	t0   time.Time
}

const maxSamples = 4096

// New makes a tailer that calls onTxn for every committed transaction, in
// commit order, from Run's goroutine. onTxn must not block for long: the
// lag includes it.
func New(cfg Config, onTxn func(Txn)) (*Tailer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if onTxn == nil {
		return nil, errors.New("binlogtail: onTxn is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ServerID == 0 {
		cfg.ServerID = 1<<30 + rand.Uint32N(1<<30)
	}
	t := &Tailer{cfg: cfg, onTxn: onTxn, log: cfg.Logger.With("shard", cfg.Shard), lostAt: time.Now()}
	t.pos, _ = parsePos(cfg.StartPos)
	// Without a parser every DDL invalidates its whole database: safe.
	t.parser, _ = sqlparser.New(sqlparser.Options{})
	return t, nil
}

func parsePos(s string) (replication.MariadbGTIDSet, error) {
	out := replication.MariadbGTIDSet{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	set, err := replication.ParseMariadbGTIDSet(s)
	if err != nil {
		return nil, fmt.Errorf("bad GTID position %q: %w", s, err)
	}
	for d, g := range set.(replication.MariadbGTIDSet) {
		out[d] = g
	}
	return out, nil
}

func posString(p replication.MariadbGTIDSet) string {
	if len(p) == 0 {
		return ""
	}
	return p.String()
}

// Run tails until ctx ends, reconnecting (to whichever server Primary then
// names) after every error. It returns ctx's error.
func (t *Tailer) Run(ctx context.Context) error {
	first := true
	for ctx.Err() == nil {
		if !first {
			t.reconnects.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(t.cfg.RetryBackoff):
			}
		}
		first = false
		addr, err := t.cfg.Primary(ctx)
		if err != nil {
			t.log.Warn("binlogtail: no primary", "err", err)
			continue
		}
		if err := t.stream(ctx, addr); err != nil && ctx.Err() == nil {
			t.log.Info("binlogtail: stream ended", "primary", addr, "err", err)
		}
	}
	t.mu.Lock()
	t.primary, t.lostAt = "", time.Now()
	t.mu.Unlock()
	return ctx.Err()
}

func (t *Tailer) connect(ctx context.Context, addr string) (*mysql.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("binlogtail: primary address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("binlogtail: primary address %q: %w", addr, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := mysql.Connect(cctx, &mysql.ConnParams{Host: host, Port: p, Uname: t.cfg.User, Pass: t.cfg.Password})
	if err != nil {
		return nil, fmt.Errorf("binlogtail: connect %s: %w", addr, err)
	}
	return c, nil
}

// stream tails addr until an error, ctx's end, or Primary naming another
// server.
func (t *Tailer) stream(ctx context.Context, addr string) error {
	meta, err := t.connect(ctx, addr)
	if err != nil {
		return err
	}
	defer meta.Close()
	var metaMu sync.Mutex // the probe and the schema reads share meta
	bc, err := t.connect(ctx, addr)
	if err != nil {
		return err
	}
	defer bc.Close()

	t.mu.Lock()
	start := maps(t.pos)
	t.mu.Unlock()
	if len(start) == 0 {
		cur, err := gtidBinlogPos(meta)
		if err != nil {
			return err
		}
		if start, err = parsePos(cur); err != nil {
			return err
		}
		t.mu.Lock()
		t.pos = maps(start)
		t.mu.Unlock()
	}
	for _, q := range []string{
		"SET @master_binlog_checksum = @@global.binlog_checksum",
		fmt.Sprintf("SET @master_heartbeat_period = %d", t.cfg.Heartbeat.Nanoseconds()),
	} {
		if _, err := bc.ExecuteFetch(q, 0, false); err != nil {
			return fmt.Errorf("binlogtail: %s: %w", q, err)
		}
	}
	if err := bc.SendBinlogDumpGTIDCommand(t.cfg.ServerID, "", 4, replication.Position{GTIDSet: start}, 0); err != nil {
		return fmt.Errorf("binlogtail: binlog dump from %s on %s: %w", posString(start), addr, err)
	}
	t.mu.Lock()
	switched := t.last != "" && t.last != addr
	t.primary, t.last = addr, addr
	t.mu.Unlock()
	if switched {
		t.switchovers.Add(1)
	}
	t.log.Info("binlogtail: tailing", "primary", addr, "from", posString(start))

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchDone := make(chan struct{})
	var moved atomic.Bool
	go func() {
		defer close(watchDone)
		moved.Store(t.watch(sctx, addr, meta, &metaMu))
		// Unblock ReadBinlogEvent.
		bc.Close()
	}()
	err = t.read(sctx, bc, meta, &metaMu)
	cancel()
	<-watchDone
	t.mu.Lock()
	t.primary, t.lostAt = "", time.Now()
	t.mu.Unlock()
	if moved.Load() {
		return fmt.Errorf("binlogtail: left %s: %w", addr, errMoved)
	}
	return err
}

var errMoved = errors.New("primary moved")

// watch asks Primary every CheckInterval and probes lag every
// ProbeInterval, until ctx ends or the primary moves (then it returns
// true).
func (t *Tailer) watch(ctx context.Context, addr string, meta *mysql.Conn, metaMu *sync.Mutex) bool {
	check := time.NewTicker(t.cfg.CheckInterval)
	defer check.Stop()
	pr := time.NewTicker(t.cfg.ProbeInterval)
	defer pr.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-check.C:
			now, err := t.cfg.Primary(ctx)
			if err == nil && now != addr {
				t.log.Info("binlogtail: primary moved", "from", addr, "to", now)
				return true
			}
		case <-pr.C:
			t0 := time.Now()
			t.mu.Lock()
			t.inflight = t0 // a primary that does not answer is behind too
			t.mu.Unlock()
			metaMu.Lock()
			cur, err := gtidBinlogPos(meta)
			metaMu.Unlock()
			t.mu.Lock()
			t.inflight = time.Time{}
			t.mu.Unlock()
			if err != nil {
				t.log.Info("binlogtail: probe", "err", err)
				return false
			}
			p, err := parsePos(cur)
			if err != nil {
				continue
			}
			want := map[uint32]uint64{}
			for d, g := range p {
				want[d] = g.Sequence
			}
			t.addProbe(probe{want: want, t0: t0})
		}
	}
}

func (t *Tailer) addProbe(p probe) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.probes) >= 1024 {
		t.probes = t.probes[1:]
	}
	t.probes = append(t.probes, p)
	t.settleLocked(time.Now())
}

// settleLocked records a lag sample for every probe the delivered position
// now covers.
func (t *Tailer) settleLocked(now time.Time) {
	n := 0
	for _, p := range t.probes {
		if !t.coversLocked(p.want) {
			break
		}
		t.sampleLocked(now.Sub(p.t0))
		n++
	}
	t.probes = t.probes[n:]
}

func (t *Tailer) coversLocked(want map[uint32]uint64) bool {
	for d, seq := range want {
		if g, ok := t.pos[d]; !ok || g.Sequence < seq {
			return false
		}
	}
	return true
}

func (t *Tailer) sampleLocked(d time.Duration) {
	if len(t.samples) < maxSamples {
		t.samples = append(t.samples, d)
	} else {
		t.samples[t.next] = d
		t.next = (t.next + 1) % maxSamples
	}
	t.lagMax = max(t.lagMax, d)
}

// read decodes events until an error.
func (t *Tailer) read(ctx context.Context, bc, meta *mysql.Conn, metaMu *sync.Mutex) error {
	var (
		format mysql.BinlogFormat
		maps_  = map[uint64]*mysql.TableMap{}
		cur    *Txn
		gtid   replication.MariadbGTID
		inTrx  bool
	)
	commit := func() {
		if cur == nil {
			return
		}
		t.onTxn(*cur)
		t.txns.Add(1)
		t.rows.Add(uint64(len(cur.Rows)))
		t.mu.Lock()
		t.pos[gtid.Domain] = gtid
		t.settleLocked(time.Now())
		t.mu.Unlock()
		cur, inTrx = nil, false
	}
	for {
		ev, err := bc.ReadBinlogEvent()
		if err != nil {
			return fmt.Errorf("binlogtail: read event: %w", err)
		}
		if !ev.IsValid() {
			return errors.New("binlogtail: invalid event")
		}
		if ev.IsFormatDescription() {
			if format, err = ev.Format(); err != nil {
				return fmt.Errorf("binlogtail: format description: %w", err)
			}
			continue
		}
		if format.IsZero() {
			continue
		}
		if ev, _, err = ev.StripChecksum(format); err != nil {
			return fmt.Errorf("binlogtail: checksum: %w", err)
		}
		switch {
		case ev.IsGTID():
			g, hasBegin, _, _, err := ev.GTID(format)
			if err != nil {
				return fmt.Errorf("binlogtail: gtid: %w", err)
			}
			mg, ok := g.(replication.MariadbGTID)
			if !ok {
				return fmt.Errorf("binlogtail: not a MariaDB GTID: %v", g)
			}
			gtid, inTrx = mg, hasBegin
			cur = &Txn{Shard: t.cfg.Shard, GTID: mg.String(), Time: time.Unix(int64(ev.Timestamp()), 0)}
		case ev.IsTableMap():
			tm, err := ev.TableMap(format)
			if err != nil {
				return fmt.Errorf("binlogtail: table map: %w", err)
			}
			maps_[ev.TableID(format)] = tm
		case ev.IsWriteRows(), ev.IsUpdateRows(), ev.IsDeleteRows(), ev.IsPartialUpdateRows():
			if cur == nil {
				continue
			}
			tm := maps_[ev.TableID(format)]
			if tm == nil {
				return errors.New("binlogtail: rows event without its table map")
			}
			rows, err := ev.Rows(format, tm)
			if err != nil {
				return fmt.Errorf("binlogtail: rows of %s.%s: %w", tm.Database, tm.Name, err)
			}
			metaMu.Lock()
			ti, err := t.schema.get(ctx, meta, tm.Database, tm.Name)
			metaMu.Unlock()
			if err != nil {
				return err
			}
			t.decode(cur, tm, ti, &rows)
		case ev.IsXID():
			commit()
		case ev.IsQuery():
			q, err := ev.Query(format)
			if err != nil {
				return fmt.Errorf("binlogtail: query: %w", err)
			}
			switch strings.ToUpper(strings.TrimSpace(q.SQL)) {
			case "BEGIN":
			case "COMMIT":
				commit()
			case "ROLLBACK":
				cur, inTrx = nil, false
			default:
				// DDL or a statement-format change: rows unknown.
				changed := t.affected(q.Database, q.SQL)
				for _, tc := range changed {
					t.schema.forget(tc.DB)
				}
				if cur != nil {
					cur.Tables = append(cur.Tables, changed...)
					if !inTrx {
						commit()
					}
				}
			}
		}
	}
}

// decode appends the changed rows' keys to tx; a table whose shape does
// not match what information_schema says (a DDL raced) or that has no
// primary key becomes a whole-table change.
func (t *Tailer) decode(tx *Txn, tm *mysql.TableMap, ti *tableInfo, rows *mysql.Rows) {
	whole := func() {
		tx.Tables = append(tx.Tables, TableChange{DB: tm.Database, Table: tm.Name})
	}
	if len(ti.pk) == 0 || len(tm.Types) != len(ti.columns) {
		if len(tm.Types) != len(ti.columns) {
			t.schema.forget(tm.Database)
		}
		whole()
		return
	}
	for i := range rows.Rows {
		r := &rows.Rows[i]
		var images [][]sqltypes.Value
		if rows.IdentifyColumns.Count() > 0 {
			img, err := decodeImage(tm, ti, r.Identify, rows.IdentifyColumns, r.NullIdentifyColumns)
			if err != nil {
				whole()
				return
			}
			images = append(images, img)
		}
		if rows.DataColumns.Count() > 0 {
			img, err := decodeImage(tm, ti, r.Data, rows.DataColumns, r.NullColumns)
			if err != nil {
				whole()
				return
			}
			images = append(images, img)
		}
		var first []sqltypes.Value
		for _, img := range images {
			key := make([]sqltypes.Value, len(ti.pk))
			ok := true
			for j, c := range ti.pk {
				if img[c].IsNull() {
					ok = false // MINIMAL after image without the key
					break
				}
				key[j] = img[c]
			}
			if !ok {
				continue
			}
			// Both images of an update are reported, even with the same
			// key: a consumer keyed by another column needs both values.
			if first == nil {
				first = key
			}
			tx.Rows = append(tx.Rows, RowChange{DB: tm.Database, Table: tm.Name, Key: key, Columns: ti.columns, Row: img})
		}
		if first == nil {
			whole()
			return
		}
	}
}

// affected names the tables a statement changes when it is a DDL the
// parser knows (TRUNCATE, ALTER, DROP, RENAME, CREATE); anything else
// changes every table of db, or of every database when db is empty.
func (t *Tailer) affected(db, sql string) []TableChange {
	if t.parser != nil {
		if stmt, err := t.parser.Parse(sql); err == nil {
			if ddl, ok := stmt.(sqlparser.DDLStatement); ok && len(ddl.AffectedTables()) > 0 {
				var out []TableChange
				for _, tn := range ddl.AffectedTables() {
					d := tn.Qualifier.String()
					if d == "" {
						d = db
					}
					if d == "" {
						return []TableChange{{}}
					}
					out = append(out, TableChange{DB: d, Table: tn.Name.String()})
				}
				return out
			}
		}
	}
	return []TableChange{{DB: db}}
}

func maps(p replication.MariadbGTIDSet) replication.MariadbGTIDSet {
	out := replication.MariadbGTIDSet{}
	for d, g := range p {
		out[d] = g
	}
	return out
}

// gtidBinlogPos reads the server's binlog position with SHOW VARIABLES,
// which the server counts as Com_show_variables: the probes, ten a second,
// stay out of the Com_select that operators (and tests) watch.
func gtidBinlogPos(c *mysql.Conn) (string, error) {
	res, err := c.ExecuteFetch("SHOW GLOBAL VARIABLES LIKE 'gtid_binlog_pos'", 1, false)
	if err != nil {
		return "", fmt.Errorf("binlogtail: gtid_binlog_pos: %w", err)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 2 {
		return "", errors.New("binlogtail: gtid_binlog_pos: unexpected result")
	}
	return res.Rows[0][1].ToString(), nil
}

// Behind is how long the oldest unanswered lag probe has waited (0 when
// every probe is answered), counting a probe the primary has not answered
// yet and, while disconnected, the time since the connection was lost: it
// grows while the tailer is stuck, disconnected or its primary frozen.
func (t *Tailer) Behind() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.behindLocked()
}

func (t *Tailer) behindLocked() time.Duration {
	var d time.Duration
	if len(t.probes) > 0 {
		d = time.Since(t.probes[0].t0)
	}
	if !t.inflight.IsZero() {
		d = max(d, time.Since(t.inflight))
	}
	if t.primary == "" {
		d = max(d, time.Since(t.lostAt))
	}
	return d
}

// Stats returns the tailer's state.
func (t *Tailer) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{
		Shard:       t.cfg.Shard,
		Primary:     t.primary,
		Connected:   t.primary != "",
		Position:    posString(t.pos),
		Txns:        t.txns.Load(),
		Rows:        t.rows.Load(),
		Reconnects:  t.reconnects.Load(),
		Switchovers: t.switchovers.Load(),
		LagMax:      t.lagMax,
		Samples:     len(t.samples),
	}
	if len(t.samples) > 0 {
		last := t.next - 1
		if len(t.samples) < maxSamples {
			last = len(t.samples) - 1
		} else if last < 0 {
			last = maxSamples - 1
		}
		s.LastLag = t.samples[last]
		sorted := slices.Clone(t.samples)
		slices.Sort(sorted)
		s.Lag50 = sorted[len(sorted)*50/100]
		s.Lag99 = sorted[min(len(sorted)*99/100, len(sorted)-1)]
	}
	s.Behind = t.behindLocked()
	return s
}
