package rowcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/cachetier"
	"github.com/strata-db/strata/shardproxy/binlogtail"
)

// TableConfig caches one table.
type TableConfig struct {
	DB, Table string
	// Unique lists single-column unique keys point selects may use too.
	Unique []string
	// Shards hold the table's rows (names from Config.Shards); empty means
	// every shard. A reference table names one shard: its copies are equal.
	Shards []string
	// Cache sizes the table's cache; MaxBytes is the table's whole budget,
	// shared evenly by its key caches.
	Cache cachetier.Config
}

// Shard is where the table's rows live and whose binlog is tailed.
type Shard struct {
	Name string
	// Primary returns the shard's primary now (host:port).
	Primary func(ctx context.Context) (string, error)
}

// Config configures the Manager.
type Config struct {
	Tables []TableConfig
	Shards []Shard
	// User and Password read the tables' keys at start and tail the
	// binlogs (REPLICATION SLAVE is needed).
	User, Password string
	// Binlog turns on the binlog tailers (writes that bypass this proxy).
	Binlog bool
	// BloomRebuildDelay: after a write that may have inserted rows it
	// cannot name, a table's bloom filter is off until rebuilt this long
	// after (so a burst of such writes costs one rebuild).
	BloomRebuildDelay time.Duration
	Logger            *slog.Logger
	// MaxLag: while a shard's binlog tailer is further behind than this
	// (its oldest unanswered lag probe is older; a disconnected tailer
	// falls behind too), point selects skip the cache, so a write that
	// bypasses the proxy is never hidden longer than about MaxLag. 0 means
	// 5s.
	MaxLag time.Duration
}

type keyCache struct {
	col   string // lowered
	isInt bool
	// padSpace: the key's collation ignores trailing spaces ('abc' and
	// 'abc ' name one row), so row keys are cached without them.
	padSpace bool
	// textCharset: the column has a character set, so a value's bytes
	// depend on the charset it was sent in (a latin1 session's é is not a
	// utf8mb4 one's, nor the binlog's): only ASCII values are cached.
	textCharset bool
	c           *cachetier.Cache[*entry]
}

type table struct {
	m       *Manager
	db, tbl string
	shards  []Shard
	pk      *keyCache
	uniques []*keyCache
	// otherUnique: a unique index besides the primary key exists. Read
	// at start and again after a table-wide invalidation, as parents are.
	otherUnique atomic.Bool
	// parents ("db.table") have a foreign key of this table whose ON
	// DELETE/UPDATE changes its rows (CASCADE, SET NULL, SET DEFAULT):
	// a write of a parent changes rows of this table that neither the
	// statement nor the binlog names (InnoDB does not log them). Read at
	// start and again after a table-wide invalidation (an ALTER may have
	// added one).
	parents atomic.Pointer[[]string]
	// writers ("db.table") are other tables with a trigger and views
	// whose text mentions this table: a write through the proxy of one
	// may change (or insert) rows of this table. (The binlog logs what
	// triggers change; views are not in it.) Read as parents are.
	writers atomic.Pointer[[]string]
	// live: the caches exist and writes invalidate them; ready: and reads
	// may use them (the bloom filters are built).
	live    atomic.Bool
	ready   atomic.Bool
	rebuild chan struct{}
	// schema counts the table-wide invalidations (DDL among them): a
	// statement shape's columns (Manager.templates) learnt before the last
	// one may not be the table's now.
	schema atomic.Uint64
}

func (t *table) name() string { return t.db + "." + t.tbl }

func (t *table) keyFor(lowered string) *keyCache {
	if t.pk.col == lowered {
		return t.pk
	}
	for _, u := range t.uniques {
		if u.col == lowered {
			return u
		}
	}
	return nil
}

func (t *table) all() []*keyCache { return append([]*keyCache{t.pk}, t.uniques...) }

// Manager is the proxy's row cache. Nil-safe: a nil *Manager caches nothing.
type Manager struct {
	cfg       Config
	log       *slog.Logger
	tables    map[string]*table // "db.table"
	tailers   []*binlogtail.Tailer
	templates sync.Map    // variant → *columns, valid while their table's schema count holds
	bypass    atomic.Bool // a tailer is further behind than MaxLag
	bypasses  atomic.Uint64
	nTmpl     atomic.Int64
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// New checks cfg and makes the caches; Start reads the schema, builds the
// bloom filters and starts the tailers.
func New(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BloomRebuildDelay <= 0 {
		cfg.BloomRebuildDelay = 2 * time.Second
	}
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = 5 * time.Second
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, tables: map[string]*table{}}
	for _, tc := range cfg.Tables {
		if err := tc.Cache.Validate(); err != nil {
			return nil, fmt.Errorf("rowcache: %s.%s: %w", tc.DB, tc.Table, err)
		}
		t := &table{m: m, db: tc.DB, tbl: tc.Table, rebuild: make(chan struct{}, 1)}
		for _, sh := range cfg.Shards {
			if len(tc.Shards) == 0 || slices.Contains(tc.Shards, sh.Name) {
				t.shards = append(t.shards, sh)
			}
		}
		if len(t.shards) == 0 {
			return nil, fmt.Errorf("rowcache: %s.%s: none of its shards %v is configured", tc.DB, tc.Table, tc.Shards)
		}
		m.tables[tc.DB+"."+tc.Table] = t
	}
	return m, nil
}

// resultCost is a result's size: its header and its rows. Column
// definitions are shared by every entry of a statement shape (Get) and
// held once per shape, outside the budget (at most maxTemplates shapes).
func resultCost(r *sqltypes.Result) int64 {
	if r == nil {
		return 0
	}
	n := int64(96)
	for _, row := range r.Rows {
		n += 24
		for _, v := range row {
			n += int64(32 + v.Len())
		}
	}
	return n
}

// entryCost is an entry's size: its header and result, whose values are
// slices of its encoded rows when it has them (the packets' headers and
// length prefixes are then what the encoding adds).
func entryCost(e *entry) int64 {
	const header = 48 // the entry itself
	if e == nil {
		return 0
	}
	if e.rows == nil {
		return header + resultCost(e.res)
	}
	n := int64(header + 96 + len(e.rows))
	for _, row := range e.res.Rows {
		n += 24 + 32*int64(len(row))
	}
	return n
}

// Start reads each table's keys from information_schema (refusing keys it
// cannot cache by value), builds the bloom filters from every shard, and
// starts the binlog tailers. It returns once the caches are ready.
func (m *Manager) Start(ctx context.Context) error {
	if m == nil || len(m.tables) == 0 {
		return nil
	}
	if len(m.cfg.Shards) == 0 {
		return errors.New("rowcache: no shards")
	}
	rctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	// The tailers start first: a write that bypasses the proxy after they
	// have connected reaches the caches (and a bloom filter being built)
	// however early it comes.
	if m.cfg.Binlog {
		for _, sh := range m.cfg.Shards {
			bc := binlogtail.DefaultConfig()
			bc.Shard, bc.Primary, bc.User, bc.Password, bc.Logger = sh.Name, sh.Primary, m.cfg.User, m.cfg.Password, m.log
			tl, err := binlogtail.New(bc, m.OnTxn)
			if err != nil {
				cancel()
				return err
			}
			m.tailers = append(m.tailers, tl)
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				_ = tl.Run(rctx)
			}()
		}
		m.wg.Add(1)
		go m.watchLag(rctx)
		// Writes committed before the tailers connected are in no cache
		// yet; wait for them to connect so that every later one is seen.
		deadline := time.Now().Add(10 * time.Second)
		for _, tl := range m.tailers {
			for !tl.Stats().Connected {
				if time.Now().After(deadline) {
					m.Close()
					return fmt.Errorf("rowcache: binlog of shard %s: not connected after 10s", tl.Stats().Shard)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	for _, tc := range m.cfg.Tables {
		t := m.tables[tc.DB+"."+tc.Table]
		err := m.initTable(ctx, t, tc)
		if errors.Is(err, errNoTable) {
			// Not created yet (strata up creates its demo tables through
			// the proxy after it starts): uncached until it exists.
			m.log.Info("rowcache: table not there yet; cached once it is", "table", t.name())
			m.wg.Add(1)
			go m.awaitTable(rctx, t, tc)
			continue
		}
		if err != nil {
			m.Close()
			return err
		}
		m.wg.Add(1)
		go m.rebuilder(rctx, t)
	}
	return nil
}

// watchLag sets bypass while any tailer is further behind than MaxLag.
func (m *Manager) watchLag(ctx context.Context) {
	defer m.wg.Done()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		behind := false
		for _, tl := range m.tailers {
			if tl.Behind() > m.cfg.MaxLag {
				behind = true
			}
		}
		if behind != m.bypass.Load() {
			m.log.Warn("rowcache: binlog lag", "behind_max_lag", behind, "max_lag", m.cfg.MaxLag)
			m.bypass.Store(behind)
		}
	}
}

// Close stops the tailers and rebuilders and releases the caches.
func (m *Manager) Close() {
	if m == nil || m.cancel == nil {
		return
	}
	m.cancel()
	m.wg.Wait()
	for _, t := range m.tables {
		if !t.live.Load() {
			continue
		}
		for _, kc := range t.all() {
			kc.c.Close()
		}
	}
}

func (m *Manager) connect(ctx context.Context, sh Shard) (*mysql.Conn, error) {
	addr, err := sh.Primary(ctx)
	if err != nil {
		return nil, fmt.Errorf("rowcache: primary of %s: %w", sh.Name, err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("rowcache: primary of %s: %w", sh.Name, err)
	}
	p, _ := strconv.Atoi(port)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := mysql.Connect(cctx, &mysql.ConnParams{Host: host, Port: p, Uname: m.cfg.User, Pass: m.cfg.Password})
	if err != nil {
		return nil, fmt.Errorf("rowcache: connect to %s primary %s: %w", sh.Name, addr, err)
	}
	return c, nil
}

// errNoTable: the table does not exist (yet).
var errNoTable = errors.New("rowcache: no such table")

// initTable makes t's caches (live: writes invalidate them from now on),
// builds their bloom filters, and opens them to reads (ready).
func (m *Manager) initTable(ctx context.Context, t *table, tc TableConfig) error {
	if err := m.loadSchema(ctx, t, tc); err != nil {
		return err
	}
	t.live.Store(true)
	var err error
	for range 5 {
		// A table-wide write during the scan spoils it (ErrBloomRaced).
		if err = m.buildBlooms(ctx, t); !errors.Is(err, cachetier.ErrBloomRaced) {
			break
		}
	}
	if err != nil {
		return err
	}
	t.ready.Store(true)
	return nil
}

// awaitTable retries initTable every second until the table exists.
func (m *Manager) awaitTable(ctx context.Context, t *table, tc TableConfig) {
	defer m.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if t.pk == nil {
			err := m.loadSchema(ctx, t, tc)
			if errors.Is(err, errNoTable) {
				continue
			}
			if err != nil {
				m.log.Warn("rowcache: table not cached", "table", t.name(), "err", err)
				return
			}
			t.live.Store(true)
		}
		if err := m.buildBlooms(ctx, t); err != nil {
			m.log.Warn("rowcache: bloom build", "table", t.name(), "err", err)
			continue
		}
		t.ready.Store(true)
		m.log.Info("rowcache: table cached", "table", t.name())
		m.wg.Add(1)
		go m.rebuilder(ctx, t)
		return
	}
}

// keySet is what a table's caches are made for: its keys as cached
// (keyCaches without their caches) and foreign keys.
type keySet struct {
	pk          *keyCache
	uniques     []*keyCache
	otherUnique bool
	parents     []string
	writers     []string
}

// same reports whether the keys are cached alike (what else the set has
// aside).
func (a *keySet) same(b *keySet) bool {
	eq := func(x, y *keyCache) bool {
		return x.col == y.col && x.isInt == y.isInt && x.padSpace == y.padSpace && x.textCharset == y.textCharset
	}
	if !eq(a.pk, b.pk) || len(a.uniques) != len(b.uniques) {
		return false
	}
	for i := range a.uniques {
		if !eq(a.uniques[i], b.uniques[i]) {
			return false
		}
	}
	return true
}

// errKeyRefused: the table's keys cannot be cached (see readKeys).
var errKeyRefused = errors.New("rowcache: key not cacheable")

// loadSchema reads t's keys (readKeys) and makes their caches.
func (m *Manager) loadSchema(ctx context.Context, t *table, tc TableConfig) error {
	ks, err := m.readKeys(ctx, t, tc)
	if err != nil {
		return err
	}
	budget := tc.Cache.MaxBytes / int64(1+len(tc.Unique))
	for _, kc := range append([]*keyCache{ks.pk}, ks.uniques...) {
		cc := tc.Cache
		cc.MaxBytes = max(budget, 1)
		if kc.c, err = cachetier.New(cc, entryCost); err != nil {
			return fmt.Errorf("rowcache: %s: %w", t.name(), err)
		}
	}
	t.pk, t.uniques = ks.pk, ks.uniques
	t.otherUnique.Store(ks.otherUnique)
	t.parents.Store(&ks.parents)
	t.writers.Store(&ks.writers)
	return nil
}

// readKeys reads t's keys from information_schema and how each is cached,
// refusing (errKeyRefused) keys it cannot cache by value, and the
// foreign keys whose cascades change t's rows.
func (m *Manager) readKeys(ctx context.Context, t *table, tc TableConfig) (*keySet, error) {
	ks := &keySet{}
	conn, err := m.connect(ctx, t.shards[0])
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	esc := sqltypes.EncodeStringSQL
	// Whether the table exists is asked first: asked after its keys, a
	// table created between the two looked like one without a primary
	// key, and was never cached.
	exists, err := conn.ExecuteFetch(fmt.Sprintf("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", esc(t.db), esc(t.tbl)), 1, false)
	if err != nil {
		return nil, fmt.Errorf("rowcache: %s: %w", t.name(), err)
	}
	if len(exists.Rows) == 0 {
		return nil, errNoTable
	}
	res, err := conn.ExecuteFetch(fmt.Sprintf(`SELECT s.INDEX_NAME, s.COLUMN_NAME, c.DATA_TYPE, IFNULL(c.COLLATION_NAME, ''), IFNULL(c.CHARACTER_SET_NAME, ''),
  (SELECT COUNT(*) FROM information_schema.STATISTICS s2 WHERE s2.TABLE_SCHEMA = s.TABLE_SCHEMA AND s2.TABLE_NAME = s.TABLE_NAME AND s2.INDEX_NAME = s.INDEX_NAME)
FROM information_schema.STATISTICS s JOIN information_schema.COLUMNS c
  ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
WHERE s.TABLE_SCHEMA = %s AND s.TABLE_NAME = %s AND s.NON_UNIQUE = 0`, esc(t.db), esc(t.tbl)), 10000, false)
	if err != nil {
		return nil, fmt.Errorf("rowcache: keys of %s: %w", t.name(), err)
	}
	type col struct {
		dataType, coll, charset string
		single                  bool
	}
	uniq := map[string]col{} // lowered column of a single-column unique key
	var pk []string
	for _, r := range res.Rows {
		idx, name, n := r[0].ToString(), strings.ToLower(r[1].ToString()), r[5].ToString()
		c := col{
			dataType: strings.ToLower(r[2].ToString()),
			coll:     strings.ToLower(r[3].ToString()),
			charset:  strings.ToLower(r[4].ToString()),
			single:   n == "1",
		}
		if idx == "PRIMARY" {
			pk = append(pk, name)
			if c.single {
				uniq[name] = c
			}
			continue
		}
		ks.otherUnique = true
		if c.single {
			uniq[name] = c
		}
	}
	if len(pk) != 1 {
		return nil, fmt.Errorf("%w: cache of %s: the table needs a one-column primary key (has %d columns)", errKeyRefused, t.name(), len(pk))
	}
	fks, err := conn.ExecuteFetch(fmt.Sprintf(`SELECT DISTINCT UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s
  AND (DELETE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') OR UPDATE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT'))`, esc(t.db), esc(t.tbl)), 1000, false)
	if err != nil {
		return nil, fmt.Errorf("rowcache: foreign keys of %s: %w", t.name(), err)
	}
	for _, r := range fks.Rows {
		ks.parents = append(ks.parents, r[0].ToString()+"."+r[1].ToString())
	}
	// Triggers and views that may write t: their text names it (a
	// mention that is not a write costs invalidations, not correctness).
	ws, err := conn.ExecuteFetch(fmt.Sprintf(`SELECT EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE LOCATE(%[1]s, ACTION_STATEMENT) > 0
UNION SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS WHERE LOCATE(%[1]s, VIEW_DEFINITION) > 0`, esc(t.tbl)), 10000, false)
	if err != nil {
		return nil, fmt.Errorf("rowcache: triggers and views of %s: %w", t.name(), err)
	}
	for _, r := range ws.Rows {
		if w := r[0].ToString() + "." + r[1].ToString(); w != t.name() {
			ks.writers = append(ks.writers, w)
		}
	}
	mk := func(colName string) (*keyCache, error) {
		c, ok := uniq[strings.ToLower(colName)]
		if !ok {
			return nil, fmt.Errorf("%w: cache of %s: %s is not a one-column unique key", errKeyRefused, t.name(), colName)
		}
		kc := &keyCache{col: strings.ToLower(colName)}
		switch c.dataType {
		case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
			kc.isInt = true
		case "char", "varchar", "binary", "varbinary":
			// A key is cached by its text: the column must compare texts
			// byte for byte (a binary collation), but for trailing spaces
			// where the collation pads.
			switch {
			case c.coll == "" || c.coll == "binary":
			case strings.HasSuffix(c.coll, "_bin"):
				kc.padSpace = !strings.Contains(c.coll, "_nopad_")
				kc.textCharset = true
			default:
				return nil, fmt.Errorf("%w: cache of %s: key %s has collation %s, which lets two texts name one row; only integer or binary-collated keys are cached", errKeyRefused, t.name(), colName, c.coll)
			}
			switch c.charset {
			case "ucs2", "utf16", "utf16le", "utf32", "swe7":
				// ASCII is not these charsets' bytes for it.
				return nil, fmt.Errorf("%w: cache of %s: key %s has character set %s; only ASCII-compatible character sets are cached", errKeyRefused, t.name(), colName, c.charset)
			}
		default:
			// Dates, times, decimals, floats, enums, bits: one value has
			// several spellings ('2024-1-5' is '2024-01-05'), which the
			// cache cannot tell apart by text.
			return nil, fmt.Errorf("%w: cache of %s: key %s is of type %s; only integer and CHAR/VARCHAR/BINARY/VARBINARY keys are cached", errKeyRefused, t.name(), colName, c.dataType)
		}
		return kc, nil
	}
	if ks.pk, err = mk(pk[0]); err != nil {
		return nil, err
	}
	for _, u := range tc.Unique {
		kc, err := mk(u)
		if err != nil {
			return nil, err
		}
		ks.uniques = append(ks.uniques, kc)
	}
	return ks, nil
}

// buildBlooms builds every key cache's filter from every shard's rows.
func (m *Manager) buildBlooms(ctx context.Context, t *table) error {
	for _, kc := range t.all() {
		var total uint
		conns := make([]*mysql.Conn, 0, len(t.shards))
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for _, sh := range t.shards {
			c, err := m.connect(ctx, sh)
			if err != nil {
				return err
			}
			conns = append(conns, c)
			res, err := c.ExecuteFetch("SELECT COUNT(*) FROM "+sqlID(t.db)+"."+sqlID(t.tbl), 1, false)
			if err != nil {
				return fmt.Errorf("rowcache: count %s on %s: %w", t.name(), sh.Name, err)
			}
			n, _ := res.Rows[0][0].ToUint64()
			total += uint(n)
		}
		err := kc.c.BuildBloom(total*2, func(add func(string)) error {
			for i, c := range conns {
				q := "SELECT " + sqlID(kc.col) + " FROM " + sqlID(t.db) + "." + sqlID(t.tbl)
				if err := c.ExecuteStreamFetch(q); err != nil {
					return fmt.Errorf("rowcache: scan %s on %s: %w", t.name(), t.shards[i].Name, err)
				}
				if _, err := c.Fields(); err != nil {
					return err
				}
				for {
					row, err := c.FetchNext(nil)
					if err != nil {
						return err
					}
					if row == nil {
						break
					}
					if k, ok := kc.canonValue(row[0], "", false); ok {
						add(k)
					}
				}
				c.CloseResult()
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func sqlID(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// rebuilder rebuilds t's bloom filters when a write may have inserted rows
// it could not name, at most once per BloomRebuildDelay.
func (m *Manager) rebuilder(ctx context.Context, t *table) {
	defer m.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.rebuild:
		}
		// The invalidation may have been an ALTER (or DROP and CREATE)
		// done on the shard: the caches were made for the keys read at
		// start, and are no use for keys cached otherwise now (a key whose
		// collation became case-insensitive names one row by several
		// texts).
		if !m.keysStillFit(ctx, t) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.cfg.BloomRebuildDelay):
		}
		if err := m.buildBlooms(ctx, t); err != nil && ctx.Err() == nil {
			m.log.Warn("rowcache: bloom rebuild", "table", t.name(), "err", err)
			select {
			case t.rebuild <- struct{}{}:
			default:
			}
		}
	}
}

// keysStillFit re-reads t's keys after a table-wide invalidation. If they
// are no longer cached as t's caches are, t's reads stop using the cache
// (false; until the proxy restarts). A table that is not there (dropped,
// to be created again) or unreadable fits: the bloom rebuild retries.
func (m *Manager) keysStillFit(ctx context.Context, t *table) bool {
	var tc TableConfig
	for _, c := range m.cfg.Tables {
		if c.DB == t.db && c.Table == t.tbl {
			tc = c
		}
	}
	ks, err := m.readKeys(ctx, t, tc)
	cur := &keySet{pk: t.pk, uniques: t.uniques}
	switch {
	case err == nil && ks.same(cur):
		t.otherUnique.Store(ks.otherUnique)
		t.parents.Store(&ks.parents)
		t.writers.Store(&ks.writers)
		return true
	case err == nil || errors.Is(err, errKeyRefused):
		t.ready.Store(false)
		m.log.Error("rowcache: the table's keys changed on the shard; its point selects skip the cache until the proxy restarts", "table", t.name(), "err", err)
		return false
	}
	return true
}

func (t *table) scheduleRebuild() {
	select {
	case t.rebuild <- struct{}{}:
	default:
	}
}

// canonValue is a key column value's text as a cache row key (see
// canonText): session and write as there.
func (kc *keyCache) canonValue(v sqltypes.Value, session string, write bool) (string, bool) {
	if v.IsNull() {
		return "", false
	}
	if kc.isInt {
		return canonInt(v)
	}
	return kc.canonText(v.ToString(), session, write)
}

// canonText is a string key's row key: without trailing spaces where the
// collation pads. The cache leaves alone (ok false) a value with non-ASCII
// bytes in a column with a character set (its bytes depend on the charset
// it was sent in: a latin1 session's é is not a utf8mb4 one's, nor the
// binlog's), and in a binary column when the session may have changed its
// character set (session, the session's settings, is not the server's
// defaults: the proxy reads such a session's text in its own charset while
// MariaDB compares the bytes it was sent). The binlog and the bloom filter
// pass session "". For a write (write true), a value no entry can hold is
// its own row key: invalidating it touches nothing.
func (kc *keyCache) canonText(s, session string, write bool) (string, bool) {
	if !isASCII(s) {
		if kc.textCharset {
			return s, write
		}
		if session != "" {
			return "", false
		}
	}
	if kc.padSpace {
		s = strings.TrimRight(s, " ")
	}
	return s, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Get answers p from memory or through load, which runs the client's
// statement on the shard's primary. A result without rows is remembered as
// "absent" for the table's negative TTL.
//
// load may run on another goroutine (the load is shared with concurrent
// readers of the same key and shape) while Get waits; Get waits for it
// even if ctx is cancelled, so that a load using the caller's session
// never outlives the caller's statement. Loads are bounded by the table's
// LoadTimeout.
func (m *Manager) Get(ctx context.Context, p Point, load func(ctx context.Context) (*sqltypes.Result, error)) (*sqltypes.Result, error) {
	e, err := m.get(ctx, p, load)
	if err != nil {
		return nil, err
	}
	// Readers share the cached result: each gets its own header.
	cp := *e.res
	return &cp, nil
}

// Load is Get for the fast lane: the answer as packets (see Packets). ok
// is false when the answer is not encoded (rows over one packet, fields
// that are not the shape's): the caller then takes the ordinary path,
// whose Get finds what this load stored.
func (m *Manager) Load(ctx context.Context, p Point, load func(ctx context.Context) (*sqltypes.Result, error)) (pk Packets, ok bool, err error) {
	e, err := m.get(ctx, p, load)
	if err != nil {
		return Packets{}, false, err
	}
	pk, ok = e.packets()
	return pk, ok, nil
}

func (m *Manager) get(ctx context.Context, p Point, load func(ctx context.Context) (*sqltypes.Result, error)) (*entry, error) {
	e, _, err := p.key.c.Get(context.WithoutCancel(ctx), p.row, p.variant, func(ctx context.Context, _, _ string) (*entry, bool, error) {
		sg := p.t.schema.Load()
		r, err := load(ctx)
		if err != nil {
			return nil, false, err
		}
		// Every entry of a shape shares the shape's column definitions
		// (which the cost does not count): an entry is its rows.
		return newEntry(r, m.keepTemplate(p, sg, r)), len(r.Rows) > 0, nil
	})
	if err != nil {
		return nil, err
	}
	if e != nil {
		return e, nil
	}
	// The bloom filter says the row does not exist; answer with the
	// shape's columns if a load of this shape was seen since the table's
	// last table-wide invalidation (an ALTER may have changed them, or
	// dropped one: then the answer is the shard's error), else ask.
	if c := m.template(p); c != nil {
		return &entry{res: &sqltypes.Result{Fields: c.fields}, cols: c}, nil
	}
	sg := p.t.schema.Load()
	r, err := load(ctx)
	if err != nil {
		return nil, err
	}
	return newEntry(r, m.keepTemplate(p, sg, r)), nil
}

// Packets answers p from memory only, as packets for the client (see
// Packets); ok false when memory does not hold the answer (then Get or
// Load loads it) or it is not encoded (see Load). A row the bloom filter
// or a negative entry knows to be absent is answered with the shape's
// columns and no rows.
func (m *Manager) Packets(p Point) (Packets, bool) {
	e, _, ok := p.key.c.Peek(p.row, p.variant)
	if !ok {
		return Packets{}, false
	}
	if e == nil {
		// The bloom filter's answer.
		c := m.template(p)
		if c == nil {
			return Packets{}, false
		}
		return Packets{Columns: c.pkts, Result: &sqltypes.Result{Fields: c.fields}, Binary: c.binary}, true
	}
	return e.packets()
}

// BinaryEncodable reports whether the binary-protocol rows of p's shape
// are known to be encodable by AppendBinaryRows (a load of the shape was
// seen and its columns have no date or time): a prepared statement's
// miss is worth loading in the fast lane.
func (m *Manager) BinaryEncodable(p Point) bool {
	c := m.template(p)
	return c != nil && c.binary
}

// template is p's shape's columns, if they are known for the table's
// schema now.
func (m *Manager) template(p Point) *columns {
	v, ok := m.templates.Load(p.variant)
	if !ok {
		return nil
	}
	if c := v.(*columns); c.schema == p.t.schema.Load() {
		return c
	}
	return nil
}

const maxTemplates = 10000

func sameFields(a, b []*querypb.Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Type != b[i].Type || a[i].Table != b[i].Table ||
			a[i].OrgName != b[i].OrgName || a[i].Charset != b[i].Charset || a[i].Flags != b[i].Flags ||
			a[i].ColumnLength != b[i].ColumnLength || a[i].Decimals != b[i].Decimals || a[i].Database != b[i].Database {
			return false
		}
	}
	return true
}

// keepTemplate returns the shape's columns if r has them, remembering
// them for the shape when it has none yet or has them from before the
// table's last table-wide invalidation; nil if r's fields differ, or if
// that invalidation came while r loaded (sg is the table's schema count
// before the load), since r may predate the change.
func (m *Manager) keepTemplate(p Point, sg uint64, r *sqltypes.Result) *columns {
	for {
		if p.t.schema.Load() != sg {
			return nil
		}
		v, ok := m.templates.Load(p.variant)
		if !ok {
			break
		}
		c := v.(*columns)
		if c.schema == sg {
			if sameFields(c.fields, r.Fields) {
				return c
			}
			return nil
		}
		// Learnt before the last table-wide invalidation: replace it.
		nc := newColumns(r.Fields)
		nc.schema = sg
		if m.templates.CompareAndSwap(p.variant, v, nc) {
			return nc
		}
	}
	if m.nTmpl.Load() >= maxTemplates {
		return nil
	}
	nc := newColumns(r.Fields)
	nc.schema = sg
	v, loaded := m.templates.LoadOrStore(p.variant, nc)
	if !loaded {
		m.nTmpl.Add(1)
	}
	if c := v.(*columns); c.schema == sg && sameFields(c.fields, r.Fields) {
		return c
	}
	return nil
}

func lower(s string) string { return strings.ToLower(s) }
