package binlogtail

import (
	"fmt"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/binlog"
	"vitess.io/vitess/go/sqltypes"
)

// decodeImage decodes one row image into a value per table column; columns
// the image does not carry are NULL.
func decodeImage(tm *mysql.TableMap, ti *tableInfo, data []byte, present, nulls mysql.Bitmap) ([]sqltypes.Value, error) {
	out := make([]sqltypes.Value, len(ti.columns))
	pos, vi := 0, 0
	for c := 0; c < present.Count() && c < len(out); c++ {
		if !present.Bit(c) {
			continue
		}
		if nulls.Bit(vi) {
			vi++
			continue
		}
		v, l, err := binlog.CellValue(data, pos, tm.Types[c], tm.Metadata[c], ti.fields[c], false)
		if err != nil {
			return nil, fmt.Errorf("binlogtail: %s.%s column %s: %w", tm.Database, tm.Name, ti.columns[c], err)
		}
		out[c] = v
		pos += l
		vi++
	}
	return out, nil
}
