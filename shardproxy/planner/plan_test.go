package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/vt/sqlparser"
)

var update = flag.Bool("update", false, "rewrite testdata/*_cases.json with the plans the planner builds now")

// planCase is one golden plan: a query and either its plan (EXPLAIN rows,
// one per line) or the error it gets.
type planCase struct {
	Comment string   `json:"comment"`
	Query   string   `json:"query"`
	Plan    []string `json:"plan,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// TestPlans compares the planner's plans with the golden files in
// testdata, like vitess's planbuilder tests. After a deliberate change, run
// go test -run TestPlans -update and review the diff.
func TestPlans(t *testing.T) {
	files, err := filepath.Glob("testdata/*_cases.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	vs := testVSchema()
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), "_cases.json"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var cases []planCase
			if err := json.Unmarshal(data, &cases); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for i := range cases {
				c := &cases[i]
				stmt, _ := normalize(t, c.Query)
				var plan []string
				var errText string
				p, err := Build(stmt, vs, "demo")
				if err != nil {
					errText = err.Error()
				} else {
					plan = planLines(p)
				}
				if *update {
					c.Plan, c.Error = plan, errText
					continue
				}
				if errText != c.Error || !slices.Equal(plan, c.Plan) {
					t.Errorf("%s\n%s\ngot plan:\n  %s\ngot error: %s\nwant plan:\n  %s\nwant error: %s",
						c.Comment, c.Query, strings.Join(plan, "\n  "), errText, strings.Join(c.Plan, "\n  "), c.Error)
				}
			}
			if *update {
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				if err := enc.Encode(cases); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// SELECT ... INTO @v would set the variable on a shard's connection, while
// the session's user variables live in the proxy: refused. (vitess's
// normalizer cannot rewrite INTO @v, so this is planned unnormalized.)
func TestSelectIntoVariablesRefused(t *testing.T) {
	for _, q := range []string{
		"select name into @n from users where id = 5",
		"select name from users where id = 5 into @n",
		"select count(*) from users into @c",
		"select id from users where id = 1 union all select id from users where id = 2 into @x",
	} {
		stmt, err := sqlparser.NewTestParser().Parse(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		_, err = Build(stmt, testVSchema(), "demo")
		var se *sqlerror.SQLError
		if !errors.As(err, &se) || se.Num != sqlerror.ERNotSupportedYet {
			t.Errorf("%s: %v, want error 1235", q, err)
		}
	}
}
