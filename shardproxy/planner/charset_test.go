package planner

import (
	"context"
	"errors"
	"testing"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/planner/internal/difftest"
)

// latin1Cursor is a session whose character set is latin1.
type latin1Cursor struct{ *shardCursor }

func (latin1Cursor) ClientCharset() string { return "latin1" }

var _ engine.SessionCharset = latin1Cursor{}

// latin1 encodes s (whose runes are all below U+0100) in latin1.
func latin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

// TestLatin1Session runs statements of a session with SET NAMES latin1:
// its string key values and text results are not UTF-8, which the proxy
// hashes and compares. Keys with other bytes go to every shard, merges of
// such text are refused, and plain ASCII is handled as usual.
func TestLatin1Session(t *testing.T) {
	e := startEnv(t)
	loadDiff(t, e)
	ctx := context.Background()
	for _, lc := range e.cursor.conns {
		if _, err := lc.c.ExecuteFetch("SET NAMES latin1", 0, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.single.ExecuteFetch("SET NAMES latin1", 0, false); err != nil {
		t.Fatal(err)
	}
	session := latin1Cursor{e.cursor}
	for _, vc := range []engine.VCursor{session, e.cursor} {
		for _, q := range []string{
			"select tag, cnt from tags where tag = 'Straße'",
			"select tag, cnt from tags where tag = 'naïve'",
			"select tag from tags where tag in ('naïve', 'éclair', 'Straße', 'go')",
			"select tag from tags where tag < 'd' order by tag",
			"select region_id, count(*), min(email) from users where email < 'c' group by region_id order by region_id",
			"select count(*) from users where name = 'Ève'",
		} {
			q = latin1(q)
			want, err := e.runSingle(q)
			if err != nil {
				t.Fatalf("%s: single server: %v", q, err)
			}
			got, err := e.runWith(ctx, vc, q)
			if err != nil {
				t.Errorf("%T %q: %v", vc, q, err)
				continue
			}
			if d := difftest.Diff(q, difftest.FromSQLTypes(want), difftest.FromSQLTypes(got)); d != "" {
				t.Errorf("%T %q:\n%s", vc, q, d)
			}
		}
		for _, q := range []string{
			"select tag from tags order by tag",
			"select name, count(*) from users group by name",
			"select max(name), min(name) from users",
			"select count(distinct name) from users",
			"select count(*), max(cnt) from tags where tag = 'naïve'",
			"insert into tags (tag, cnt) values ('Öl', 1)",
		} {
			q = latin1(q)
			_, err := e.runWith(ctx, vc, q)
			var se *sqlerror.SQLError
			if !errors.As(err, &se) || (se.Num != sqlerror.ERNotSupportedYet && se.Num != sqlerror.ERTruncatedWrongValueForField) {
				t.Errorf("%T %q: %v, want error 1235 (or 1366 for the insert)", vc, q, err)
			}
		}
	}
}
