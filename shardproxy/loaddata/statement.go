package loaddata

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/strata-db/strata/shardproxy/sqlmode"
)

// Statement is a LOAD DATA statement taken apart. Spans are byte offsets
// in the text given to Parse.
type Statement struct {
	Local bool
	// File is the file the statement names.
	File string
	// DB is the table's database as written ("" when unqualified), Table
	// its name; TableAt and TableEnd span both (with the qualifier and
	// quotes).
	DB, Table         string
	TableAt, TableEnd int
	// Charset is CHARACTER SET's name, "" when not given.
	Charset string
	// Format is how the file is read.
	Format Format
	// Ignore is IGNORE n LINES (or ROWS); IgnoreAt and IgnoreEnd span the
	// clause (0, 0 when absent).
	Ignore              int64
	IgnoreAt, IgnoreEnd int
	// Columns is the column list: column names, and user variables with
	// their @; nil when the statement has none (every column of the
	// table, in order). ColumnsAt and ColumnsEnd span the list with its
	// parentheses (0, 0 when absent).
	Columns               []string
	ColumnsAt, ColumnsEnd int
	// ListAt is where the column list starts, or where one would go when
	// there is none (before SET, or at the end).
	ListAt int
	// Set are the columns SET assigns (lower-case), in order.
	Set []string
	// Partition: the statement names partitions.
	Partition bool
}

// Format is how a file's text is read: FIELDS and LINES. An empty Enclosed
// or Escaped is none.
type Format struct {
	FieldsTerminated string
	Enclosed         string
	Optionally       bool
	Escaped          string
	LinesStarting    string
	LinesTerminated  string
}

// DefaultFormat is the format of a statement that gives none: tab between
// fields, newline after lines, backslash escapes.
func DefaultFormat() Format {
	return Format{FieldsTerminated: "\t", Escaped: "\\", LinesTerminated: "\n"}
}

// Error is a statement Parse cannot take apart; Syntax marks text MariaDB
// would refuse too (the caller lets the server give its 1064).
type Error struct {
	Msg    string
	Syntax bool
}

func (e *Error) Error() string { return e.Msg }

func syntaxErr(format string, a ...any) error {
	return &Error{Msg: fmt.Sprintf(format, a...), Syntax: true}
}

// Parse takes a LOAD DATA statement apart. sql is in the default sql_mode's
// text (backslash escapes in strings, " quotes strings).
func Parse(sql string) (*Statement, error) {
	p := &parser{sql: sql, toks: sqlmode.Tokens(sql, 0)}
	st := &Statement{Format: DefaultFormat()}
	if !p.word("LOAD") || !p.word("DATA") {
		return nil, syntaxErr("not a LOAD DATA statement")
	}
	p.word("LOW_PRIORITY")
	p.word("CONCURRENT")
	st.Local = p.word("LOCAL")
	if !p.word("INFILE") {
		return nil, syntaxErr("INFILE expected")
	}
	var err error
	if st.File, err = p.str(); err != nil {
		return nil, err
	}
	if !p.word("REPLACE") {
		p.word("IGNORE")
	}
	if !p.word("INTO") || !p.word("TABLE") {
		return nil, syntaxErr("INTO TABLE expected")
	}
	if err := p.table(st); err != nil {
		return nil, err
	}
	if p.word("PARTITION") {
		st.Partition = true
		if err := p.skipParens(); err != nil {
			return nil, err
		}
	}
	if p.word("CHARACTER") || p.word("CHARSET") {
		p.word("SET")
		t, ok := p.next()
		if !ok {
			return nil, syntaxErr("character set name expected")
		}
		if t.Kind == sqlmode.String {
			st.Charset, _ = sqlmode.Unquote(t.Text(sql))
		} else {
			st.Charset = t.Name(sql)
		}
	}
	if p.word("FIELDS") || p.word("COLUMNS") {
		n := 0
		for {
			switch {
			case p.word("TERMINATED"):
				if st.Format.FieldsTerminated, err = p.by(); err != nil {
					return nil, err
				}
			case p.word("OPTIONALLY"):
				st.Format.Optionally = true
				if !p.word("ENCLOSED") {
					return nil, syntaxErr("ENCLOSED expected")
				}
				fallthrough
			case p.peekWord("ENCLOSED"):
				p.word("ENCLOSED")
				if st.Format.Enclosed, err = p.by(); err != nil {
					return nil, err
				}
			case p.word("ESCAPED"):
				if st.Format.Escaped, err = p.by(); err != nil {
					return nil, err
				}
			default:
				if n == 0 {
					return nil, syntaxErr("TERMINATED, ENCLOSED or ESCAPED expected")
				}
				goto lines
			}
			n++
		}
	}
lines:
	if p.word("LINES") {
		n := 0
		for {
			switch {
			case p.word("STARTING"):
				if st.Format.LinesStarting, err = p.by(); err != nil {
					return nil, err
				}
			case p.word("TERMINATED"):
				if st.Format.LinesTerminated, err = p.by(); err != nil {
					return nil, err
				}
			default:
				if n == 0 {
					return nil, syntaxErr("STARTING or TERMINATED expected")
				}
				goto ignore
			}
			n++
		}
	}
ignore:
	if p.peekWord("IGNORE") {
		st.IgnoreAt = p.toks[p.i].Pos
		p.i++
		t, ok := p.next()
		if !ok || t.Kind != sqlmode.Word {
			return nil, syntaxErr("number expected after IGNORE")
		}
		if st.Ignore, err = strconv.ParseInt(t.Text(sql), 10, 64); err != nil || st.Ignore < 0 {
			return nil, syntaxErr("number expected after IGNORE")
		}
		if !p.word("LINES") && !p.word("ROWS") {
			return nil, syntaxErr("LINES or ROWS expected")
		}
		st.IgnoreEnd = p.toks[p.i-1].End
	}
	st.ListAt = len(sql)
	if p.i < len(p.toks) {
		st.ListAt = p.toks[p.i].Pos
	}
	if p.peekPunct("(") {
		st.ColumnsAt = p.toks[p.i].Pos
		p.i++
		st.Columns = []string{}
		if !p.punct(")") {
			for {
				t, ok := p.next()
				if !ok || (t.Kind != sqlmode.Word && t.Kind != sqlmode.Ident) {
					return nil, syntaxErr("column name expected")
				}
				name := t.Name(sql)
				for p.punct(".") { // t.col, db.t.col
					t, ok = p.next()
					if !ok || (t.Kind != sqlmode.Word && t.Kind != sqlmode.Ident) {
						return nil, syntaxErr("column name expected")
					}
					name = t.Name(sql)
				}
				st.Columns = append(st.Columns, name)
				if p.punct(")") {
					break
				}
				if !p.punct(",") {
					return nil, syntaxErr("',' or ')' expected in the column list")
				}
			}
		}
		st.ColumnsEnd = p.toks[p.i-1].End
	}
	if p.word("SET") {
		depth, expectName := 0, true
		for p.i < len(p.toks) {
			t := p.toks[p.i]
			txt := t.Text(sql)
			switch {
			case expectName && depth == 0 && (t.Kind == sqlmode.Word || t.Kind == sqlmode.Ident):
				name := t.Name(sql)
				for p.i+2 < len(p.toks) && p.toks[p.i+1].Text(sql) == "." {
					p.i += 2
					name = p.toks[p.i].Name(sql)
				}
				st.Set = append(st.Set, strings.ToLower(name))
				expectName = false
			case t.Kind == sqlmode.Punct && txt == "(":
				depth++
			case t.Kind == sqlmode.Punct && txt == ")":
				depth--
			case t.Kind == sqlmode.Punct && txt == "," && depth == 0:
				expectName = true
			}
			p.i++
		}
	}
	if p.i < len(p.toks) {
		return nil, syntaxErr("unexpected %q", p.toks[p.i].Text(sql))
	}
	return st, nil
}

type parser struct {
	sql  string
	toks []sqlmode.Token
	i    int
}

func (p *parser) next() (sqlmode.Token, bool) {
	if p.i >= len(p.toks) {
		return sqlmode.Token{}, false
	}
	p.i++
	return p.toks[p.i-1], true
}

func (p *parser) peekWord(w string) bool {
	return p.i < len(p.toks) && p.toks[p.i].Kind == sqlmode.Word && strings.EqualFold(p.toks[p.i].Text(p.sql), w)
}

func (p *parser) word(w string) bool {
	if p.peekWord(w) {
		p.i++
		return true
	}
	return false
}

func (p *parser) peekPunct(s string) bool {
	return p.i < len(p.toks) && p.toks[p.i].Kind == sqlmode.Punct && p.toks[p.i].Text(p.sql) == s
}

func (p *parser) punct(s string) bool {
	if p.peekPunct(s) {
		p.i++
		return true
	}
	return false
}

// str reads a string literal (with an optional _charset prefix).
func (p *parser) str() (string, error) {
	if p.i+1 < len(p.toks) && p.toks[p.i].Kind == sqlmode.Word && strings.HasPrefix(p.toks[p.i].Text(p.sql), "_") && p.toks[p.i+1].Kind == sqlmode.String {
		p.i++
	}
	t, ok := p.next()
	if !ok || t.Kind != sqlmode.String {
		return "", syntaxErr("string expected")
	}
	s, ok := sqlmode.Unquote(t.Text(p.sql))
	if !ok {
		return "", syntaxErr("bad string %s", t.Text(p.sql))
	}
	return s, nil
}

func (p *parser) by() (string, error) {
	if !p.word("BY") {
		return "", syntaxErr("BY expected")
	}
	return p.str()
}

func (p *parser) table(st *Statement) error {
	t, ok := p.next()
	if !ok || (t.Kind != sqlmode.Word && t.Kind != sqlmode.Ident) {
		return syntaxErr("table name expected")
	}
	st.TableAt, st.TableEnd = t.Pos, t.End
	st.Table = t.Name(p.sql)
	if p.punct(".") {
		t, ok = p.next()
		if !ok || (t.Kind != sqlmode.Word && t.Kind != sqlmode.Ident) {
			return syntaxErr("table name expected")
		}
		st.DB, st.Table = st.Table, t.Name(p.sql)
		st.TableEnd = t.End
	}
	return nil
}

func (p *parser) skipParens() error {
	if !p.punct("(") {
		return syntaxErr("'(' expected")
	}
	for depth := 1; depth > 0; {
		t, ok := p.next()
		if !ok {
			return syntaxErr("')' expected")
		}
		switch t.Text(p.sql) {
		case "(":
			depth++
		case ")":
			depth--
		}
	}
	return nil
}
