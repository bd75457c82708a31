package engine

import (
	"context"
	"strings"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"
)

// MySQL names a result column that has no alias and is not a plain column
// after the select-list item's text exactly as the client wrote it:
// "COUNT(*)", "a+b", "?" in a prepared statement. Plans are built from the
// normalized statement and shared by every spelling of it, and the shards
// see re-formatted SQL ("count(*)", "a + b"), so the proxy puts the client's
// text back: the session passes it in the context, and ColumnNames renames.

type sqlTextKey struct{}

// WithSQL returns a context carrying the statement text as the client sent
// it, for ColumnNames.
func WithSQL(ctx context.Context, sql string) context.Context {
	return context.WithValue(ctx, sqlTextKey{}, sql)
}

func sqlFrom(ctx context.Context) string {
	s, _ := ctx.Value(sqlTextKey{}).(string)
	return s
}

// ColumnNames gives the columns of select-list items that MySQL names by
// their text the names the client's text implies. Without the text in the
// context (see WithSQL) it changes nothing.
type ColumnNames struct {
	Input Primitive
	// FromText has one entry per select-list item (the list has no *): true
	// when the item is named by its text.
	FromText []bool
	Parser   *sqlparser.Parser
}

// Execute implements Primitive.
func (c *ColumnNames) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	res, err := c.Input.Execute(ctx, vc, bv)
	if err != nil {
		return nil, err
	}
	sql := sqlFrom(ctx)
	if sql == "" || len(res.Fields) != len(c.FromText) {
		return res, nil
	}
	texts := SelectItemTexts(c.Parser, sql)
	if len(texts) != len(c.FromText) {
		return res, nil
	}
	out := *res
	out.Fields = make([]*querypb.Field, len(res.Fields))
	copy(out.Fields, res.Fields)
	for i, fromText := range c.FromText {
		if fromText && texts[i] != "" && out.Fields[i].Name != texts[i] {
			f := out.Fields[i].CloneVT()
			f.Name = texts[i]
			out.Fields[i] = f
		}
	}
	return &out, nil
}

// Explain implements Primitive.
func (c *ColumnNames) Explain() []ExplainRow {
	return nest(ExplainRow{Operator: "ColumnNames", Detail: "name unaliased expressions as the client wrote them"}, c.Input)
}

// SelectItemTexts returns the text of each item of the outermost select
// list of sql, as written (trimmed), or nil when sql does not start with a
// SELECT the tokenizer understands.
func SelectItemTexts(p *sqlparser.Parser, sql string) []string {
	tok := p.NewStringTokenizer(sql)
	typ, _ := tok.Scan()
	if typ != sqlparser.SELECT {
		return nil
	}
	// Modifiers between SELECT and the first item.
	start := tok.Pos
	for {
		typ, _ = tok.Scan()
		switch typ {
		case sqlparser.ALL, sqlparser.DISTINCT, sqlparser.DISTINCTROW, sqlparser.HIGH_PRIORITY, sqlparser.STRAIGHT_JOIN,
			sqlparser.SQL_SMALL_RESULT, sqlparser.SQL_BIG_RESULT, sqlparser.SQL_BUFFER_RESULT, sqlparser.SQL_NO_CACHE,
			sqlparser.SQL_CACHE, sqlparser.SQL_CALC_FOUND_ROWS:
			start = tok.Pos
			continue
		}
		break
	}
	var out []string
	depth := 0
	for {
		switch typ {
		case 0, sqlparser.LEX_ERROR, ';':
			if depth != 0 {
				return nil
			}
			return append(out, strings.TrimSpace(sql[start:min(tok.Pos, len(sql))]))
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(sql[start:tok.Pos-1]))
				start = tok.Pos
			}
		case sqlparser.FROM, sqlparser.INTO, sqlparser.WHERE, sqlparser.GROUP, sqlparser.HAVING, sqlparser.ORDER,
			sqlparser.LIMIT, sqlparser.FOR, sqlparser.LOCK, sqlparser.UNION, sqlparser.WINDOW:
			if depth == 0 {
				return append(out, strings.TrimSpace(sql[start:tok.Pos-len(keywordText(sql, tok.Pos))]))
			}
		}
		typ, _ = tok.Scan()
	}
}

// keywordText is the keyword that ends at pos (the tokenizer's position
// after scanning it).
func keywordText(sql string, pos int) string {
	i := pos
	for i > 0 && isWordByte(sql[i-1]) {
		i--
	}
	return sql[i:pos]
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
