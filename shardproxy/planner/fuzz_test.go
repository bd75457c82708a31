package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/planner/internal/difftest"
)

// seedQueries are the golden and differential queries: the fuzzer's seeds.
func seedQueries(t testing.TB) []string {
	var out []string
	files, _ := filepath.Glob("testdata/*_cases.json")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cases []planCase
		if err := json.Unmarshal(data, &cases); err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			out = append(out, c.Query)
		}
	}
	for _, c := range difftest.Corpus() {
		out = append(out, c.Q)
	}
	return append(out, difftest.Refused()...)
}

// emptyCursor answers every query with an empty result.
type emptyCursor struct{}

func (emptyCursor) ExecuteShards(_ context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	out := make([]*sqltypes.Result, len(qs))
	for i := range out {
		out[i] = &sqltypes.Result{}
	}
	return out, nil
}

// checkBuild plans sql, raw and normalized, in a sharded, an unsharded
// and no database; Build must not panic (it is called without its recover)
// and the plans must explain and execute without panicking.
func checkBuild(sql string) {
	parser := sqlparser.NewTestParser()
	stmt, known, err := parseSafe(parser, sql)
	if err != nil {
		return
	}
	stmts := []sqlparser.Statement{stmt}
	bv := map[string]*querypb.BindVariable{}
	if again, _, err := parseSafe(parser, sql); err == nil {
		if ast, err := normalizeSafe(again, known, bv); err == nil {
			stmts = append(stmts, ast)
		}
	}
	v := testVSchema()
	for _, s := range stmts {
		for _, db := range []string{"demo", "test", ""} {
			p, err := build(s, v, db)
			if err != nil {
				continue
			}
			_ = p.Explain()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = p.Execute(engine.WithSQL(ctx, sql), emptyCursor{}, bv)
			cancel()
		}
	}
}

// parseSafe is Parse2 with vitess's own panics (e.g. on "set ````") turned
// into errors: they are the parser's, which the proxy's session recovers
// from; the planner is what is fuzzed here.
func parseSafe(p *sqlparser.Parser, sql string) (stmt sqlparser.Statement, known sqlparser.BindVars, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parser panic: %v", r)
		}
	}()
	return p.Parse2(sql)
}

// normalizeSafe is Normalize with its panics (e.g. on SELECT ... INTO @v)
// turned into errors, as parseSafe.
func normalizeSafe(stmt sqlparser.Statement, known sqlparser.BindVars, bv map[string]*querypb.BindVariable) (ast sqlparser.Statement, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("normalizer panic: %v", r)
		}
	}()
	res, err := sqlparser.Normalize(stmt, sqlparser.NewReservedVars("vtg", known), bv, true, "demo", -1, "", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return res.AST, nil
}

// FuzzBuild: Build never panics on a statement that parses. Run it with
// go test -run '^$' -fuzz FuzzBuild -fuzztime 1m ./shardproxy/planner.
func FuzzBuild(f *testing.F) {
	for _, q := range seedQueries(f) {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		checkBuild(sql)
	})
}

// TestBuildMutations is a short fuzz that runs with every go test: the
// seeds cut, spliced and with tokens swapped, a few thousand statements
// from a fixed seed, all planned without a panic.
func TestBuildMutations(t *testing.T) {
	seeds := seedQueries(t)
	r := rand.New(rand.NewPCG(1, 2))
	extra := []string{"(", ")", ",", "select", "from", "where", "and", "or", "not", "in", "exists", "join", "on", "using",
		"group by", "order by", "having", "limit", "union", "distinct", "count(*)", "sum(", "avg(", "*", "null", "?", "1", "'x'",
		"users", "orders", "regions", "u.id", "id", "=", "<=>", "between", "desc", "for update", "left join", "o.user_id"}
	deadline := time.Now().Add(3 * time.Second)
	n := 0
	for n < 20000 && time.Now().Before(deadline) {
		words := strings.Fields(seeds[r.IntN(len(seeds))])
		for k := 1 + r.IntN(3); k > 0 && len(words) > 0; k-- {
			i := r.IntN(len(words))
			switch r.IntN(5) {
			case 0:
				words = append(words[:i], words[i+1:]...)
			case 1:
				words[i] = extra[r.IntN(len(extra))]
			case 2:
				other := strings.Fields(seeds[r.IntN(len(seeds))])
				words = append(words[:i], other[r.IntN(len(other)):]...)
			case 3:
				j := r.IntN(len(words))
				words[i], words[j] = words[j], words[i]
			default:
				words = append(words[:i], append([]string{extra[r.IntN(len(extra))]}, words[i:]...)...)
			}
		}
		sql := strings.Join(words, " ")
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("panic planning %q: %v", sql, p)
				}
			}()
			checkBuild(sql)
		}()
		n++
	}
	t.Logf("%d mutated statements planned", n)
}
