package sqlmode_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/sqlmode"
)

// answer is MariaDB's answer to one probe: its error number, or its
// column names and first row.
type answer struct {
	err  uint16
	cols []string
	row  []string
}

func (a answer) String() string {
	if a.err != 0 {
		return fmt.Sprintf("error %d", a.err)
	}
	return fmt.Sprintf("columns %q row %q", a.cols, a.row)
}

func ask(ctx context.Context, c *sql.Conn, query string) (answer, error) {
	rows, err := c.QueryContext(ctx, query)
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			return answer{err: me.Number}, nil
		}
		return answer{}, err
	}
	defer rows.Close()
	var a answer
	if a.cols, err = rows.Columns(); err != nil {
		return a, err
	}
	vals := make([]sql.RawBytes, len(a.cols))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return a, err
		}
		for _, v := range vals {
			a.row = append(a.row, string(v))
		}
	}
	return a, rows.Close()
}

// parsed is what vitess's parser reads from a probe: whether it parsed,
// and the single string literal's value (SELECT <lit>) or the alias
// (SELECT 1 AS <lit>) when that is what it read.
type parsed struct {
	ok, str bool
	val     string
}

func parse(p *sqlparser.Parser, query string, alias bool) parsed {
	stmt, err := p.Parse(query)
	if err != nil {
		return parsed{}
	}
	sel, ok := stmt.(*sqlparser.Select)
	if !ok || len(sel.SelectExprs.Exprs) != 1 || len(sel.From) > 0 && !isDual(sel.From) {
		return parsed{ok: true}
	}
	ae, ok := sel.SelectExprs.Exprs[0].(*sqlparser.AliasedExpr)
	if !ok {
		return parsed{ok: true}
	}
	if alias {
		return parsed{ok: true, str: true, val: ae.As.String()}
	}
	e := ae.Expr
	if u, ok := e.(*sqlparser.UnaryExpr); ok && u.Operator == sqlparser.NStringOp {
		e = u.Expr // N'…'
	}
	if lit, ok := e.(*sqlparser.Literal); ok && lit.Type == sqlparser.StrVal && ae.As.IsEmpty() {
		return parsed{ok: true, str: true, val: lit.Val}
	}
	return parsed{ok: true}
}

func isDual(f []sqlparser.TableExpr) bool {
	return len(f) == 1 && sqlparser.String(f[0]) == "dual"
}

// asUtf8mb3 is s as MariaDB sends it where it converts to utf8mb3 (column
// names, N'…' literals): each byte of a 4-byte character becomes ?.
func asUtf8mb3(s string, perByte bool) string {
	return strings.Map(func(r rune) rune {
		if r > 0xFFFF {
			return '\uFFFF' // placeholder, expanded below
		}
		return r
	}, s)
}

func utf8mb3(s string, perByte bool) string {
	rep := "?"
	if perByte {
		rep = "????"
	}
	return strings.ReplaceAll(asUtf8mb3(s, perByte), "\uFFFF", rep)
}

// pieces of random literals: quotes, backslashes, escapes, multibyte
// characters, comment and concat markers.
var pieces = []string{"a", "Z", "0", "n", "t", "b", "r", "%", "_", "é", "漢", "😀", `\`, `\\`, `'`, `"`, "`", `''`, `""`, "--", "#", "/*", "*/", "/*!", "||", "\n", " ", "N"}

func randomLiteral(r *rand.Rand) string {
	q := []string{`'`, `"`}[r.IntN(2)]
	var b strings.Builder
	if r.IntN(4) == 0 {
		b.WriteString([]string{"N", "n", "X", "B", "_utf8mb4", "_binary", "_utf8mb4 "}[r.IntN(7)])
	}
	b.WriteString(q)
	for n := r.IntN(10); n > 0; n-- {
		p := pieces[r.IntN(len(pieces))]
		if p == `\` && r.IntN(2) == 0 {
			p += q // an escaped (or, without escapes, a closing) quote
		}
		b.WriteString(p)
	}
	b.WriteString(q)
	return b.String()
}

// TestMatchesMariaDB is a fuzz test against MariaDB itself. For random
// literals of quotes, backslashes, comment markers and multibyte characters,
// under each sql_mode that changes reading, it sends SELECT <lit> and
// SELECT 1 AS <lit>, and checks:
//   - Normalize is exact: MariaDB answers the statement under the mode and
//     the normalized statement under the default mode the same way (same
//     error number, or same values and aliases; a column that an
//     expression names is named by its text, which normalizing changes:
//     a statement that passes through whole should go as the client wrote
//     it, under the client's sql_mode);
//   - vitess's parser reads the normalized statement as MariaDB does: it
//     refuses it when MariaDB answers 1064, parses it otherwise, and when it
//     reads a single string literal (or an alias) it is MariaDB's value
//     (or column name).
func TestMatchesMariaDB(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	db, err := sql.Open("mysql", topo.Shards()[0].Primary().DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn0, err := db.Conn(ctx) // in the default sql_mode
	if err != nil {
		t.Fatal(err)
	}
	defer conn0.Close()
	if _, err := conn0.ExecContext(ctx, "SET SESSION sql_mode = DEFAULT"); err != nil {
		t.Fatal(err)
	}
	parser := sqlparser.NewTestParser()
	seed := testSeed(t)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	const perMode = 300
	for _, mode := range []string{"", "NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "NO_BACKSLASH_ESCAPES,ANSI_QUOTES", "ANSI"} {
		if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = '"+mode+"'"); err != nil {
			t.Fatal(err)
		}
		m := sqlmode.Parse(mode)
		bad, strs, emptyIdent, pipes := 0, 0, 0, 0
		fail := func(format string, args ...any) {
			bad++
			if bad <= 10 {
				t.Errorf("sql_mode %q: "+format, append([]any{mode}, args...)...)
			}
		}
		for i := 0; i < perMode; i++ {
			lit := randomLiteral(rng)
			for _, alias := range []bool{false, true} {
				q := "SELECT " + lit
				if alias {
					q = "SELECT 1 AS " + lit
				}
				r := sqlmode.Normalize(q, m)
				norm := r.SQL
				want, err := ask(ctx, conn, q)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				if r.Unterminated {
					// The caller answers 1064 itself (or lets MariaDB).
					if want.err != 1064 && want.err != 1300 {
						fail("%s: Normalize says unterminated, MariaDB %v", q, want)
					}
					continue
				}
				if r.Pipes {
					// || under PIPES_AS_CONCAT: the proxy never plans such a
					// statement (vitess would read OR) and hands the
					// normalized text to the server under the client's
					// sql_mode, which must read it as it reads the original.
					again, err := ask(ctx, conn, norm)
					if err != nil {
						t.Fatalf("%s: %v", norm, err)
					}
					cmpWant, cmpAgain := want, again
					if !alias {
						cmpWant.cols, cmpAgain.cols = nil, nil
					}
					if cmpWant.String() != cmpAgain.String() {
						fail("%s\n  MariaDB under the mode: %v\n  normalized %s, same mode: %v", q, want, norm, again)
					}
					pipes++
					continue
				}
				again, err := ask(ctx, conn0, norm)
				if err != nil {
					t.Fatalf("%s: %v", norm, err)
				}
				// A column named by an expression is named by its text,
				// which normalizing changes: compare names of aliases only.
				cmpWant, cmpAgain := want, again
				if !alias {
					cmpWant.cols, cmpAgain.cols = nil, nil
				}
				if cmpWant.String() != cmpAgain.String() {
					fail("%s\n  MariaDB under the mode:      %v\n  normalized %s, default mode: %v", q, want, norm, again)
					continue
				}
				got := parse(parser, norm, alias)
				switch {
				case want.err == 1064 && got.ok:
					fail("%s (normalized %s): MariaDB 1064, vitess parsed it", q, norm)
				case want.err == 1300:
					// An invalid character where MariaDB wants an
					// identifier: refused by MariaDB whatever vitess does.
				case want.err != 1064 && !got.ok && strings.Contains(norm, "``"):
					// vitess refuses an empty quoted identifier, which
					// MariaDB takes: a known limit of vitess's parser.
					emptyIdent++
				case want.err != 1064 && !got.ok:
					fail("%s (normalized %s): MariaDB %v, vitess refused it", q, norm, want)
				case want.err != 0 || !got.str:
				case alias:
					// MariaDB drops an alias's leading spaces and control characters.
					// It also shows a NUL in a column name as \x00.
					w := strings.TrimLeftFunc(utf8mb3(got.val, false), func(r rune) bool { return r <= ' ' })
					w = strings.ReplaceAll(w, "\x00", `\x00`)
					if len(want.cols) != 1 || want.cols[0] != w {
						fail("%s (normalized %s): MariaDB names the column %q, vitess reads alias %q", q, norm, want.cols, got.val)
					}
				default:
					strs++
					v := got.val
					if lit[0] == 'N' || lit[0] == 'n' {
						v = utf8mb3(v, true)
					}
					if len(want.row) != 1 || want.row[0] != v {
						fail("%s (normalized %s): MariaDB reads %q, vitess reads %q", q, norm, want.row, got.val)
					}
				}
			}
		}
		t.Logf("sql_mode %q: %d probes, %d string literals compared, %d mismatches, %d refused by vitess for an empty quoted identifier, %d with || left to the server", mode, 2*perMode, strs, bad, emptyIdent, pipes)
	}
}

// TestDenormalizeMatchesMariaDB: a default-mode literal that MariaDB reads
// as v under the default mode is read as v under NO_BACKSLASH_ESCAPES once
// denormalized.
func TestDenormalizeMatchesMariaDB(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	db, err := sql.Open("mysql", topo.Shards()[0].Primary().DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nbe, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer nbe.Close()
	if _, err := nbe.ExecContext(ctx, "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'"); err != nil {
		t.Fatal(err)
	}
	def, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	if _, err := def.ExecContext(ctx, "SET SESSION sql_mode = DEFAULT"); err != nil {
		t.Fatal(err)
	}
	seed := testSeed(t)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	compared := 0
	for i := 0; i < 400; i++ {
		q := "SELECT " + randomLiteral(rng)
		want, err := ask(ctx, def, q)
		if err != nil {
			t.Fatal(err)
		}
		if want.err != 0 || len(want.row) != 1 {
			continue
		}
		d := sqlmode.Denormalize(q, sqlmode.NoBackslashEscapes)
		got, err := ask(ctx, nbe, d)
		if err != nil {
			t.Fatal(err)
		}
		compared++
		if got.err != 0 || len(got.row) != 1 || got.row[0] != want.row[0] {
			t.Errorf("%s: default mode reads %v; denormalized %s under NO_BACKSLASH_ESCAPES reads %v", q, want, d, got)
		}
	}
	t.Logf("%d literals compared", compared)
}

// testSeed is the random literals' seed: fixed, so that make test is
// deterministic, unless STRATA_SQLMODE_SEED says "random" or a number (the
// way to hunt for new mismatches; a failure logs its seed to replay it).
func testSeed(t *testing.T) uint64 {
	switch v := os.Getenv("STRATA_SQLMODE_SEED"); v {
	case "":
		return 1796638971168371207
	case "random":
		return uint64(time.Now().UnixNano())
	default:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("STRATA_SQLMODE_SEED=%q: %v", v, err)
		}
		return n
	}
}
