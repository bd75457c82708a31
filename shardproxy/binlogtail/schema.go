package binlogtail

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// tableInfo is what decoding a table's rows needs: its columns in order,
// the field types that give integers their sign, and its primary key.
type tableInfo struct {
	columns []string
	fields  []*querypb.Field
	pk      []int // indexes into columns; empty if the table has none
}

// schemaCache reads tableInfo from information_schema on the primary and
// keeps it until a DDL in the table's database is seen.
type schemaCache struct {
	mu     sync.Mutex
	tables map[string]*tableInfo // "db.table"
}

func (s *schemaCache) forget(db string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if db == "" {
		clear(s.tables)
		return
	}
	for k := range s.tables {
		if strings.HasPrefix(k, db+".") {
			delete(s.tables, k)
		}
	}
}

func (s *schemaCache) get(ctx context.Context, conn *mysql.Conn, db, table string) (*tableInfo, error) {
	key := db + "." + table
	s.mu.Lock()
	ti := s.tables[key]
	s.mu.Unlock()
	if ti != nil {
		return ti, nil
	}
	q := fmt.Sprintf(`SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, IF(k.COLUMN_NAME IS NULL, 0, 1)
FROM information_schema.COLUMNS c
LEFT JOIN information_schema.KEY_COLUMN_USAGE k
  ON k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME
 AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY'
WHERE c.TABLE_SCHEMA = %s AND c.TABLE_NAME = %s
ORDER BY c.ORDINAL_POSITION`, sqltypes.EncodeStringSQL(db), sqltypes.EncodeStringSQL(table))
	res, err := conn.ExecuteFetch(q, 10000, false)
	if err != nil {
		return nil, fmt.Errorf("binlogtail: columns of %s: %w", key, err)
	}
	ti = &tableInfo{}
	for i, row := range res.Rows {
		ti.columns = append(ti.columns, row[0].ToString())
		ti.fields = append(ti.fields, &querypb.Field{
			Name:       row[0].ToString(),
			Type:       fieldType(row[1].ToString(), row[2].ToString()),
			ColumnType: row[2].ToString(),
		})
		if row[3].ToString() == "1" {
			ti.pk = append(ti.pk, i)
		}
	}
	if len(ti.columns) == 0 {
		return nil, fmt.Errorf("binlogtail: table %s not found in information_schema", key)
	}
	s.mu.Lock()
	if s.tables == nil {
		s.tables = map[string]*tableInfo{}
	}
	s.tables[key] = ti
	s.mu.Unlock()
	return ti, nil
}

// fieldType gives integer columns their signed or unsigned type, which the
// row decoder needs; every other column decodes as raw bytes, which is what
// the row's key needs.
func fieldType(dataType, columnType string) querypb.Type {
	unsigned := strings.Contains(strings.ToLower(columnType), "unsigned")
	pick := func(s, u querypb.Type) querypb.Type {
		if unsigned {
			return u
		}
		return s
	}
	switch strings.ToLower(dataType) {
	case "tinyint":
		return pick(querypb.Type_INT8, querypb.Type_UINT8)
	case "smallint":
		return pick(querypb.Type_INT16, querypb.Type_UINT16)
	case "mediumint":
		return pick(querypb.Type_INT24, querypb.Type_UINT24)
	case "int", "integer":
		return pick(querypb.Type_INT32, querypb.Type_UINT32)
	case "bigint":
		return pick(querypb.Type_INT64, querypb.Type_UINT64)
	case "year":
		return querypb.Type_YEAR
	}
	return querypb.Type_VARBINARY
}
