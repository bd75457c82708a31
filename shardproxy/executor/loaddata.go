package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqlescape"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/loaddata"
	"github.com/strata-db/strata/shardproxy/mariadbcoll"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/sqlmode"
	"github.com/strata-db/strata/shardproxy/vschema"
	"github.com/strata-db/strata/shardproxy/wire"
)

// LOAD DATA LOCAL INFILE. The client holds the file; the proxy asks it
// for the file (wire.Conn.RequestFile) and answers the shards' requests
// with it (session.Infile, backend.Conn.ExecLocal):
//
//   - a table that lives whole on one shard (an unsharded database, an
//     unsharded table): the statement goes to that shard as the client
//     wrote it, the server's file request is relayed to the client and the
//     client's packets to the server as they come, and the server answers;
//   - a reference table: the proxy reads the file, and every shard loads
//     all of it with the client's statement;
//   - a sharded table: the proxy reads the file, cuts it into records as
//     the server would (package loaddata), and sends each record's bytes
//     untouched to the shard (and sub-table) its shard key picks, in a LOAD
//     DATA LOCAL per shard part with the client's FIELDS, LINES, column
//     list and SET (IGNORE n LINES done by the proxy). Each shard reads its
//     records exactly as the server would have read them in the whole
//     file: conversions, NULLs, SET, warnings and errors are MariaDB's. The
//     row numbers in messages are turned back into the file's.
//
// The shard parts run as one statement of several shards does: in an open
// transaction on its connections; in autocommit with transaction_mode
// twopc as one atomic cross-shard write (a bad row on one shard rolls back
// every shard's part); otherwise each shard's part commits on its own.

// maxShardedLoad bounds the file a sharded load holds in memory.
const maxShardedLoad = 1 << 30

// loadData runs a LOAD DATA statement. Those without LOCAL go on as before
// (the server's own file: passed through in an unsharded database).
func (s *Session) loadData(ctx context.Context, sql string) (*sqltypes.Result, error) {
	if !isLocalLoad(sql) {
		return nil, mysqlerr.NotSupported("LOAD DATA")
	}
	f, _ := s.Conn.GetRawConn().(*wire.Conn)
	if f == nil {
		return nil, mysqlerr.NotSupported("LOAD DATA LOCAL INFILE without a client connection")
	}
	if !f.LocalFiles() {
		return nil, errNoLocalFiles
	}
	if s.laterStmt {
		return nil, errLaterLoad
	}
	st, perr := loaddata.Parse(sql)
	db := s.DB
	if perr == nil && st.DB != "" {
		db = st.DB
	}
	d := s.srv.vs.Databases[db]
	if d == nil || !d.Sharded {
		shard := ""
		switch {
		case d != nil:
			shard = d.Shard
		case s.DB == "":
			return nil, sqlerror.NewSQLError(sqlerror.ERNoDb, sqlerror.SSNoDB, "No database selected")
		case s.srv.vs.Databases[s.DB] != nil && !s.srv.vs.Databases[s.DB].Sharded:
			// A database the proxy does not know, named from an unsharded
			// one: its server answers.
			shard = s.srv.vs.Databases[s.DB].Shard
		default:
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERBadDb, sqlerror.SSClientError, "Unknown database '%s'", db)
		}
		return s.relayLoad(ctx, shard, sql)
	}
	if perr != nil {
		var le *loaddata.Error
		if errors.As(perr, &le) && !le.Syntax {
			return nil, mysqlerr.NotSupported("%s", le.Msg)
		}
		return nil, mysqlerr.SyntaxErrorAt(sql, 0)
	}
	_, t, err := s.srv.vs.FindTable(db, st.Table)
	if err != nil {
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERNoSuchTable, sqlerror.SSUnknownTable, "Table '%s.%s' doesn't exist", db, st.Table)
	}
	switch t.Kind {
	case vschema.Unsharded:
		return s.relayLoad(ctx, t.Shard, sql)
	case vschema.Reference:
		return s.referenceLoad(ctx, f, st, sql)
	}
	return s.shardedLoad(ctx, f, db, t, st, sql)
}

// isLocalLoad: LOAD {DATA | XML} [LOW_PRIORITY | CONCURRENT] LOCAL.
func isLocalLoad(sql string) bool {
	toks := sqlmode.Tokens(sql, 0)
	for i, t := range toks {
		if i > 3 || t.Kind != sqlmode.Word {
			return false
		}
		if strings.EqualFold(t.Text(sql), "LOCAL") {
			return true
		}
	}
	return false
}

// relayInfile makes the shard query the session runs next relay the
// server's file request to the client (for SET STATEMENT ... FOR LOAD
// DATA LOCAL, passed through): done ends it.
func (s *Session) relayInfile() (done func(), err error) {
	f, _ := s.Conn.GetRawConn().(*wire.Conn)
	switch {
	case f == nil:
		return nil, mysqlerr.NotSupported("LOAD DATA LOCAL INFILE without a client connection")
	case !f.LocalFiles():
		return nil, errNoLocalFiles
	case s.laterStmt:
		return nil, errLaterLoad
	}
	s.Infile = &session.Infile{File: func(string, string) backend.LocalFile {
		return func(name string, send func([]byte) error) error { return f.RequestFile(name, send) }
	}}
	return func() { s.Infile = nil }, nil
}

// setStatementBody is the statement after SET STATEMENT ... FOR, "" when
// sql is not one.
func setStatementBody(sql string) string {
	toks := sqlmode.Tokens(sql, 0)
	if len(toks) < 2 || !strings.EqualFold(toks[1].Text(sql), "STATEMENT") {
		return ""
	}
	for _, t := range toks {
		if t.Kind == sqlmode.Word && strings.EqualFold(t.Text(sql), "FOR") {
			return sql[t.End:]
		}
	}
	return ""
}

// MariaDB's answer to a client that did not announce CLIENT_LOCAL_FILES.
var errNoLocalFiles = sqlerror.NewSQLError(4166, sqlerror.SSClientError,
	"The used command is not allowed because the MariaDB server or client has disabled the local infile capability")

var errLaterLoad = mysqlerr.NotSupported("LOAD DATA LOCAL INFILE after another statement of the same text (send it on its own)")

// relayLoad runs the client's statement on shard, relaying the server's
// file request to the client and the client's content to the server.
func (s *Session) relayLoad(ctx context.Context, shard, sql string) (*sqltypes.Result, error) {
	done, err := s.relayInfile()
	if err != nil {
		return nil, err
	}
	defer done()
	out, err := s.ExecuteShards(ctx, []engine.ShardQuery{{Shard: shard, SQL: sql}})
	if err != nil {
		return nil, err
	}
	return s.loaded(out, 0), nil
}

// loaded is a load's result: the rows of every shard part (of one, for a
// reference table), the first generated key as the last insert id.
func (s *Session) loaded(out []*sqltypes.Result, firstKey int64) *sqltypes.Result {
	res := &sqltypes.Result{}
	for _, r := range out {
		res.RowsAffected += r.RowsAffected
		res.Info = engine.SumInfo(res.Info, r.Info)
		if res.InsertID == 0 {
			res.InsertID = r.InsertID
		}
	}
	if firstKey > 0 {
		res.InsertID = uint64(firstKey)
	}
	s.RowCount = int64(res.RowsAffected)
	if res.InsertID != 0 {
		s.LastInsertID = res.InsertID
	}
	return res
}

// readFile asks the client for the statement's file and returns it whole.
func readFile(f *wire.Conn, name string) ([]byte, error) {
	var data []byte
	over := false
	err := f.RequestFile(name, func(p []byte) error {
		if over || len(data)+len(p) > maxShardedLoad {
			over, data = true, nil
			return nil // read on to the end
		}
		data = append(data, p...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if over {
		return nil, mysqlerr.NotSupported("LOAD DATA LOCAL INFILE of more than %d MiB into a sharded or reference table (split the file)", maxShardedLoad>>20)
	}
	return data, nil
}

// fileSender answers a shard's file request with data.
func fileSender(data []byte) backend.LocalFile {
	return func(_ string, send func([]byte) error) error {
		const chunk = 64 << 10
		for len(data) > 0 {
			n := min(chunk, len(data))
			if err := send(data[:n]); err != nil {
				return err
			}
			data = data[n:]
		}
		return nil
	}
}

// referenceLoad loads the whole file on every shard.
func (s *Session) referenceLoad(ctx context.Context, f *wire.Conn, st *loaddata.Statement, sql string) (*sqltypes.Result, error) {
	data, err := readFile(f, st.File)
	if err != nil {
		return nil, err
	}
	qs := make([]engine.ShardQuery, len(s.srv.vs.Shards))
	for i, sh := range s.srv.vs.Shards {
		qs[i] = engine.ShardQuery{Shard: sh, SQL: sql}
	}
	s.Infile = &session.Infile{File: func(string, string) backend.LocalFile { return fileSender(data) }}
	defer func() { s.Infile = nil }()
	out, err := s.ExecuteShards(ctx, qs)
	if err != nil {
		return nil, err
	}
	// Each shard holds a copy: the client loaded one.
	res := s.loaded(out[:1], 0)
	if n := len(s.Warnings); n > 0 && len(qs) > 1 {
		s.WMu.Lock()
		s.Warnings = s.Warnings[:n/len(qs)]
		s.WMu.Unlock()
	}
	return res, nil
}

// loadPart is one (shard, physical table)'s part of a sharded load.
type loadPart struct {
	shard, table, sql string
	data              []byte
	rows              []int // the file's row number of each of its rows
}

// asciiCharsets are the character sets whose multibyte characters (if
// any) never contain an ASCII byte: the proxy cuts their files bytewise.
var asciiCharsets = map[string]bool{"": true, "utf8": true, "utf8mb3": true, "utf8mb4": true, "latin1": true, "binary": true, "ascii": true}

// shardedLoad splits the file by shard key and loads each shard's part.
func (s *Session) shardedLoad(ctx context.Context, f *wire.Conn, db string, t *vschema.Table, st *loaddata.Statement, sql string) (*sqltypes.Result, error) {
	switch {
	case st.Partition:
		return nil, mysqlerr.NotSupported("LOAD DATA ... PARTITION into sharded table %s", t.Name)
	case !asciiCharsets[strings.ToLower(st.Charset)]:
		return nil, mysqlerr.NotSupported("LOAD DATA ... CHARACTER SET %s into sharded table %s (utf8mb4, utf8, latin1, ascii and binary files are split by the proxy)", st.Charset, t.Name)
	case t.Sub.By == vschema.SubMonth:
		return nil, mysqlerr.NotSupported("LOAD DATA into sharded table %s, whose sub-tables are by month", t.Name)
	}
	fields, err := s.tableFields(ctx, db, t)
	if err != nil {
		return nil, err
	}
	cols := st.Columns
	if cols == nil {
		cols = make([]string, len(fields))
		for i, f := range fields {
			cols[i] = f.Name
		}
	}
	var keyField *querypb.Field
	for _, f := range fields {
		if strings.EqualFold(f.Name, t.Column) {
			keyField = f
		}
	}
	keyCol := -1
	for i, c := range cols {
		if strings.EqualFold(c, t.Column) {
			keyCol = i
		}
	}
	for _, c := range st.Set {
		if strings.EqualFold(c, t.Column) {
			return nil, mysqlerr.NotSupported("LOAD DATA into sharded table %s whose shard key %s is set by SET (name it in the column list)", t.Name, t.Column)
		}
	}
	// Columns of sequences: (the proxy fills them in INSERTs, not here):
	// the file gives them.
	for _, q := range t.Sequences {
		named := false
		for _, c := range append(append([]string{}, cols...), st.Set...) {
			named = named || strings.EqualFold(c, q.Column)
		}
		if !named {
			return nil, mysqlerr.NotSupported("LOAD DATA into sharded table %s without its sequence column %s (name it in the column list, with its values in the file)", t.Name, q.Column)
		}
	}
	// A shard key left out is generated by the ID service, as for an
	// INSERT that leaves it out (GenerateKeys says so when there is none).
	generate := keyCol < 0
	if _, err := loaddata.NewReader(nil, st.Format, len(cols), 0); err != nil {
		if errors.Is(err, loaddata.ErrSeparator) {
			return nil, sqlerror.NewSQLError(sqlerror.ERWrongFieldTerminators, sqlerror.SSUnknownSQLState, "Field separator argument is not what is expected; check the manual")
		}
		return nil, mysqlerr.NotSupported("LOAD DATA into sharded table %s with empty FIELDS or LINES TERMINATED BY, or both the same", t.Name)
	}

	data, err := readFile(f, st.File)
	if err != nil {
		return nil, err
	}
	var keys []int64
	if generate {
		r, _ := loaddata.NewReader(data, st.Format, len(cols), st.Ignore)
		n := 0
		for _, ok := r.Next(); ok; _, ok = r.Next() {
			n++
		}
		if n > 0 {
			if keys, err = s.GenerateKeys(ctx, db, t.Name, n); err != nil {
				return nil, err
			}
		}
	}
	parts, order, err := s.splitLoad(data, t, st, len(cols), keyCol, keys, keyStored(t, keyField, st.Charset))
	if err != nil {
		return nil, err
	}
	if len(order) == 0 {
		return s.loaded(nil, 0), nil
	}
	qs := make([]engine.ShardQuery, len(order))
	bySQL := map[string]*loadPart{}
	for i, k := range order {
		p := parts[k]
		p.sql = partSQL(sql, st, t, k.table, generate)
		qs[i] = engine.ShardQuery{Shard: p.shard, SQL: p.sql}
		bySQL[p.shard+"\x00"+p.sql] = p
	}
	s.Infile = &session.Infile{
		File: func(shard, q string) backend.LocalFile {
			if p := bySQL[shard+"\x00"+q]; p != nil {
				return fileSender(p.data)
			}
			return fileSender(nil)
		},
		Message: func(shard, q, msg string) string {
			p := bySQL[shard+"\x00"+q]
			if p == nil {
				return msg
			}
			if p.table != t.Name {
				// The sub-table's name is the proxy's business.
				msg = strings.ReplaceAll(msg, "`"+p.table+"`", "`"+t.Name+"`")
			}
			return fileRows(msg, p.rows)
		},
	}
	defer func() { s.Infile = nil }()
	out, err := s.ExecuteShards(ctx, qs)
	if err != nil {
		return nil, err
	}
	s.sortWarnings()
	first := int64(0)
	if len(keys) > 0 {
		first = keys[0]
	}
	return s.loaded(out, first), nil
}

type partKey struct{ shard, table string }

// splitLoad cuts data into the parts of each (shard, physical table).
func (s *Session) splitLoad(data []byte, t *vschema.Table, st *loaddata.Statement, n, keyCol int, keys []int64, stored func(sqltypes.Value, int) error) (map[partKey]*loadPart, []partKey, error) {
	r, err := loaddata.NewReader(data, st.Format, n, st.Ignore)
	if err != nil {
		return nil, nil, err
	}
	parts := map[partKey]*loadPart{}
	var order []partKey
	vs := s.srv.vs
	for row := 1; ; row++ {
		rec, ok := r.Next()
		if !ok {
			break
		}
		var v sqltypes.Value
		raw := data[rec.At:rec.End]
		if keys != nil {
			k := keys[row-1]
			v = sqltypes.NewInt64(k)
			// The generated key goes first, as a field of its own.
			lead := data[rec.At:rec.FieldsAt]
			buf := make([]byte, 0, len(raw)+24)
			buf = append(buf, lead...)
			buf = strconv.AppendInt(buf, k, 10)
			buf = append(buf, st.Format.FieldsTerminated...)
			raw = append(buf, raw[len(lead):]...)
		} else {
			if keyCol >= len(rec.Fields) {
				return nil, nil, sqlerror.NewSQLErrorf(mysqlerr.ERWarnTooFewRecords, sqlerror.SSUnknownSQLState,
					"Row %d doesn't contain data for all columns (its shard key %s, which the proxy needs to pick its shard)", row, t.Column)
			}
			fl := rec.Fields[keyCol]
			if fl.Null {
				return nil, nil, sqlerror.NewSQLErrorf(sqlerror.ERBadNullError, sqlerror.SSConstraintViolation,
					"Column '%s' cannot be null at row %d: it is the shard key of %s", t.Column, row, t.Name)
			}
			v = sqltypes.MakeTrusted(sqltypes.VarChar, fl.Value)
		}
		shard, err := vs.KeyShard(t, v, vschema.ForInsert)
		if err == nil {
			err = stored(v, row)
		}
		var se *sqlerror.SQLError
		switch {
		case errors.As(err, &se):
			return nil, nil, err
		case errors.Is(err, vschema.ErrNoRange):
			return nil, nil, sqlerror.NewSQLErrorf(mysqlerr.ERNoPartitionForGivenValue, sqlerror.SSUnknownSQLState,
				"Table has no partition for value %s (row %d): no range of %s holds it", v.ToString(), row, t.Name)
		case err != nil:
			return nil, nil, sqlerror.NewSQLErrorf(sqlerror.ERTruncatedWrongValueForField, sqlerror.SSUnknownSQLState,
				"Incorrect value %s for shard key '%s' of %s at row %d: %v", v.String(), t.Column, t.Name, row, err)
		}
		table := t.Name
		if t.Sub.By == vschema.SubHash {
			sub, err := vs.KeySub(t, v, vschema.ForInsert)
			if err != nil {
				return nil, nil, err
			}
			table = t.SubName(t.Name, sub)
		}
		k := partKey{shard, table}
		p := parts[k]
		if p == nil {
			p = &loadPart{shard: shard, table: table}
			parts[k] = p
			order = append(order, k)
		}
		p.data = append(p.data, raw...)
		p.rows = append(p.rows, row)
	}
	return parts, order, nil
}

// partSQL is the client's statement for one part: the physical table, no
// IGNORE (the proxy skipped those lines), and the generated key's column
// first in the column list when the proxy generates it.
func partSQL(sql string, st *loaddata.Statement, t *vschema.Table, table string, generate bool) string {
	var b strings.Builder
	b.WriteString(sql[:st.TableAt])
	if st.DB != "" {
		b.WriteString(sqlescape.EscapeID(st.DB) + ".")
	}
	b.WriteString(sqlescape.EscapeID(table))
	pos := st.TableEnd
	cut := func(at, end int) {
		if end > at && at >= pos {
			b.WriteString(sql[pos:at])
			pos = end
		}
	}
	cut(st.IgnoreAt, st.IgnoreEnd)
	if generate {
		b.WriteString(sql[pos:st.ListAt])
		pos = st.ListAt
		b.WriteString(" (" + sqlescape.EscapeID(t.Column))
		for _, c := range st.Columns {
			b.WriteString(", ")
			if strings.HasPrefix(c, "@") {
				b.WriteString(c)
			} else {
				b.WriteString(sqlescape.EscapeID(c))
			}
		}
		b.WriteString(") ")
		if st.ColumnsEnd > 0 {
			pos = st.ColumnsEnd
		}
	}
	b.WriteString(sql[pos:])
	return b.String()
}

// tableFields reads a sharded table's columns, in order, on its first
// shard, outside the session's transaction (which it must not widen).
func (s *Session) tableFields(ctx context.Context, db string, t *vschema.Table) ([]*querypb.Field, error) {
	name := t.Name
	if t.Sub.By == vschema.SubHash {
		name = t.SubName(t.Name, 0)
	}
	q := "SELECT * FROM " + sqlescape.EscapeID(db) + "." + sqlescape.EscapeID(name) + " LIMIT 0"
	out, err := s.ExecuteOutsideTx(ctx, []engine.ShardQuery{{Shard: s.srv.vs.Shards[0], SQL: q, Read: true}})
	if err != nil {
		return nil, err
	}
	return out[0].Fields, nil
}

// keyStored checks that the shard key's column stores a record's key as
// the proxy routes it: LOAD DATA LOCAL makes a value out of the column's
// range or too long a warning, and the server stores it clipped or cut,
// a value that hashes to another shard than the one the row went to,
// where no read by its key would find it. Such a key is refused with the
// error the server gives in strict mode (1264, 1406). key is nil when the
// column list names no column of the table as the key (generated keys on
// a table read without one: nothing to check).
func keyStored(t *vschema.Table, key *querypb.Field, fileCharset string) func(v sqltypes.Value, row int) error {
	if key == nil {
		return func(sqltypes.Value, int) error { return nil }
	}
	why := fmt.Sprintf("it is the shard key of %s: the server would store another value than the one the proxy routes the row by", t.Name)
	if lo, hi, ok := intRange(key.Type); ok {
		return func(v sqltypes.Value, row int) error {
			k, err := vschema.IntKey(v)
			if err != nil {
				return nil // KeyShard took it: not a plain integer to check
			}
			if k < lo || k > hi {
				return sqlerror.NewSQLErrorf(sqlerror.ERWarnDataOutOfRange, sqlerror.SSDataOutOfRange,
					"Out of range value for column '%s' at row %d (%s)", key.Name, row, why)
			}
			return nil
		}
	}
	if !sqltypes.IsText(key.Type) && !sqltypes.IsBinary(key.Type) {
		return func(sqltypes.Value, int) error { return nil }
	}
	// The column's length is in bytes of the result's character set (its
	// longest character); binary columns count bytes.
	width := uint32(1)
	bytewise := key.Charset == 63
	if c, ok := mariadbcoll.ByID(uint16(key.Charset)); ok && !bytewise {
		width = charsetWidth(c.Charset)
	}
	limit := int(key.ColumnLength / width)
	switch strings.ToLower(fileCharset) {
	case "latin1", "ascii", "binary":
		bytewise = true
	}
	return func(v sqltypes.Value, row int) error {
		// Trailing spaces cut are only a note, and compare alike.
		b := bytes.TrimRight(v.Raw(), " ")
		n := len(b)
		if !bytewise {
			n = utf8.RuneCount(b)
		}
		if n > limit {
			return sqlerror.NewSQLErrorf(sqlerror.ERDataTooLong, sqlerror.SSDataTooLong,
				"Data too long for column '%s' at row %d (%s)", key.Name, row, why)
		}
		return nil
	}
}

// intRange is the range of an integer column type.
func intRange(typ querypb.Type) (lo, hi int64, ok bool) {
	switch typ {
	case sqltypes.Int8:
		return math.MinInt8, math.MaxInt8, true
	case sqltypes.Uint8:
		return 0, math.MaxUint8, true
	case sqltypes.Int16:
		return math.MinInt16, math.MaxInt16, true
	case sqltypes.Uint16:
		return 0, math.MaxUint16, true
	case sqltypes.Int24:
		return -1 << 23, 1<<23 - 1, true
	case sqltypes.Uint24:
		return 0, 1<<24 - 1, true
	case sqltypes.Int32:
		return math.MinInt32, math.MaxInt32, true
	case sqltypes.Uint32:
		return 0, math.MaxUint32, true
	case sqltypes.Int64:
		return math.MinInt64, math.MaxInt64, true
	case sqltypes.Uint64:
		// Keys from 2^63 up are not plain numbers to KeyShard (refused).
		return 0, math.MaxInt64, true
	}
	return 0, 0, false
}

// charsetWidth is the longest character of a character set, in bytes (1
// for those not listed: a limit never smaller than the column's).
func charsetWidth(cs string) uint32 {
	switch cs {
	case "utf8mb4", "utf16", "utf16le", "utf32", "gb18030":
		return 4
	case "utf8mb3", "utf8", "ujis", "eucjpms":
		return 3
	case "ucs2", "big5", "gbk", "sjis", "cp932", "euckr", "gb2312":
		return 2
	}
	return 1
}

var rowNumRE = regexp.MustCompile(`(at row |^Row )(\d+)`)

// fileRows turns a shard part's row numbers in msg into the file's.
func fileRows(msg string, rows []int) string {
	return rowNumRE.ReplaceAllStringFunc(msg, func(m string) string {
		sub := rowNumRE.FindStringSubmatch(m)
		n, err := strconv.Atoi(sub[2])
		if err != nil || n < 1 || n > len(rows) {
			return m
		}
		return sub[1] + strconv.Itoa(rows[n-1])
	})
}

// sortWarnings puts a load's warnings, gathered from shards in parallel,
// in the file's row order, as the server gives them, when each names its
// row; otherwise (a duplicate key names none) they stay in shard order.
func (s *Session) sortWarnings() {
	s.WMu.Lock()
	defer s.WMu.Unlock()
	rows := make([]int, len(s.Warnings))
	for i, w := range s.Warnings {
		if len(w) < 3 {
			return
		}
		m := rowNumRE.FindStringSubmatch(w[2].ToString())
		if m == nil {
			return
		}
		rows[i], _ = strconv.Atoi(m[2])
	}
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rows[idx[a]] < rows[idx[b]] })
	sorted := make([][]sqltypes.Value, len(idx))
	for i, j := range idx {
		sorted[i] = s.Warnings[j]
	}
	copy(s.Warnings, sorted)
}
