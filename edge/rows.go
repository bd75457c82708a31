package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// RowSource reads one row by its key and runs the proxy's admin
// statements. The default speaks the MySQL protocol to the shard proxy
// (go-sql-driver), as any application would.
type RowSource interface {
	// Row is the row of db.table whose key columns equal key (one value per
	// key column); nil, nil when there is none.
	Row(ctx context.Context, db, table string, key []string) (map[string]any, error)
	// Query runs an admin statement (SHOW STRATA SERVERS, STRATA
	// SWITCHOVER ...) and returns its rows as column → text.
	Query(ctx context.Context, q string) ([]map[string]any, error)
}

// proxyRows is RowSource over the proxy.
type proxyRows struct {
	db   *sql.DB
	mu   sync.Mutex
	keys map[string][]string // "db.table" → key columns
}

func newProxyRows(p ProxyBackend) (*proxyRows, error) {
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = p.User, p.Password, "tcp", p.Addr
	mc.Timeout = p.Timeout
	// One COM_QUERY per read (no prepare round trips): the proxy's fast
	// lane and its cache see a plain point SELECT.
	mc.InterpolateParams = true
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("edge: proxy: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(p.MaxInFlight)
	db.SetMaxIdleConns(min(p.MaxInFlight, 64))
	db.SetConnMaxIdleTime(time.Minute)
	pr := &proxyRows{db: db, keys: map[string][]string{}}
	for t, cols := range p.Keys {
		for _, c := range strings.Split(cols, ",") {
			pr.keys[t] = append(pr.keys[t], strings.TrimSpace(c))
		}
	}
	return pr, nil
}

func (p *proxyRows) Close() error { return p.db.Close() }

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// keyColumns are the table's primary key columns, looked up once
// (SHOW KEYS through the proxy) unless the config names them.
func (p *proxyRows) keyColumns(ctx context.Context, db, table string) ([]string, error) {
	name := db + "." + table
	p.mu.Lock()
	cols, ok := p.keys[name]
	p.mu.Unlock()
	if ok {
		return cols, nil
	}
	rows, err := p.db.QueryContext(ctx, "SHOW KEYS FROM "+quoteIdent(table)+" FROM "+quoteIdent(db)+" WHERE Key_name = 'PRIMARY'")
	if err != nil {
		return nil, sqlError(err)
	}
	defer rows.Close()
	all, err := scanAll(rows)
	if err != nil {
		return nil, sqlError(err)
	}
	type kc struct {
		seq int
		col string
	}
	var kcs []kc
	for _, r := range all {
		seq, _ := strconv.Atoi(fmt.Sprint(r["Seq_in_index"]))
		kcs = append(kcs, kc{seq, fmt.Sprint(r["Column_name"])})
	}
	if len(kcs) == 0 {
		return nil, &clientError{status: http.StatusNotFound, reason: "no_primary_key", msg: name + " has no primary key (name its key columns in proxy.keys)"}
	}
	cols = make([]string, len(kcs))
	for _, k := range kcs {
		if k.seq < 1 || k.seq > len(cols) {
			return nil, fmt.Errorf("SHOW KEYS of %s: Seq_in_index %d", name, k.seq)
		}
		cols[k.seq-1] = k.col
	}
	p.mu.Lock()
	p.keys[name] = cols
	p.mu.Unlock()
	return cols, nil
}

func (p *proxyRows) Row(ctx context.Context, db, table string, key []string) (map[string]any, error) {
	cols, err := p.keyColumns(ctx, db, table)
	if err != nil {
		return nil, err
	}
	if len(cols) != len(key) {
		return nil, &clientError{status: http.StatusBadRequest, reason: "bad_key",
			msg: fmt.Sprintf("%s.%s's key is %d columns (%s): give as many comma-separated values", db, table, len(cols), strings.Join(cols, ","))}
	}
	var b strings.Builder
	b.WriteString("SELECT * FROM " + quoteIdent(db) + "." + quoteIdent(table) + " WHERE ")
	args := make([]any, len(key))
	for i, c := range cols {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(quoteIdent(c) + " = ?")
		args[i] = key[i]
	}
	b.WriteString(" LIMIT 1")
	rows, err := p.db.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, sqlError(err)
	}
	defer rows.Close()
	all, err := scanAll(rows)
	if err != nil || len(all) == 0 {
		return nil, sqlError(err)
	}
	return all[0], nil
}

func (p *proxyRows) Query(ctx context.Context, q string) ([]map[string]any, error) {
	rows, err := p.db.QueryContext(ctx, q)
	if err != nil {
		return nil, sqlError(err)
	}
	defer rows.Close()
	out, err := scanAll(rows)
	return out, sqlError(err)
}

// scanAll reads rows as column → value: integers and decimals as JSON
// numbers, NULL as null, everything else as text.
func scanAll(rows *sql.Rows) ([]map[string]any, error) {
	cols, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	out := []map[string]any{}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			switch {
			case vals[i] == nil:
				m[c.Name()] = nil
			case numeric(c.DatabaseTypeName()):
				m[c.Name()] = jsonNumber(string(vals[i]))
			default:
				m[c.Name()] = string(vals[i])
			}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func numeric(t string) bool {
	switch strings.TrimPrefix(t, "UNSIGNED ") {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "DECIMAL", "FLOAT", "DOUBLE", "YEAR":
		return true
	}
	return false
}

// jsonNumber keeps a number's text exactly (no float64 rounding of BIGINT
// or DECIMAL).
type jsonNumber string

func (n jsonNumber) MarshalJSON() ([]byte, error) {
	if _, err := strconv.ParseFloat(string(n), 64); err != nil {
		return []byte(strconv.Quote(string(n))), nil
	}
	return []byte(n), nil
}

// sqlError turns the server's refusals of the input (unknown table,
// syntax) into the client's fault, so they do not trip the breaker.
func sqlError(err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1046, 1049, 1054, 1064, 1146, 1105, 1235, 1227, 1142, 1044, 1045:
			code := http.StatusBadRequest
			reason := "bad_request"
			if me.Number == 1146 || me.Number == 1049 {
				code, reason = http.StatusNotFound, "not_found"
			}
			return &clientError{status: code, reason: reason, msg: me.Error()}
		}
	}
	return err
}

// serveRows: GET /v1/rows/{db}/{table}/{key}; key values of a several
// column key are comma-separated, each URL-escaped.
func (s *Server) serveRows(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	// The escaped path, so a key may hold an escaped "/" or ",".
	parts := strings.SplitN(strings.TrimPrefix(r.URL.EscapedPath(), "/v1/rows/"), "/", 3)
	if len(parts) != 3 || !identRE.MatchString(parts[0]) || !identRE.MatchString(parts[1]) || parts[2] == "" {
		writeError(w, http.StatusBadRequest, "bad_path", "the path is /v1/rows/{db}/{table}/{key}, db and table of A-Z a-z 0-9 _ $")
		return
	}
	var key []string
	for _, k := range strings.Split(parts[2], ",") {
		v, err := url.PathUnescape(k)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_key", "key is not URL-escaped text")
			return
		}
		key = append(key, v)
	}
	if s.rows == nil {
		writeError(w, http.StatusServiceUnavailable, "no_backend", "no proxy configured")
		return
	}
	var row map[string]any
	err := s.proxyG.do(r.Context(), func(ctx context.Context) error {
		var err error
		row, err = s.rows.Row(ctx, parts[0], parts[1], key)
		return err
	})
	if err != nil {
		s.backendError(w, c, "proxy", err)
		return
	}
	if row == nil {
		writeError(w, http.StatusNotFound, "no_row", "no row with that key")
		return
	}
	writeJSON(w, http.StatusOK, row)
}
