package engine

import (
	"slices"
	"testing"

	"vitess.io/vitess/go/vt/sqlparser"
)

func TestSelectItemTexts(t *testing.T) {
	p := sqlparser.NewTestParser()
	for sql, want := range map[string][]string{
		"SELECT COUNT(*), a+b , concat(x, ',', y) FROM t": {"COUNT(*)", "a+b", "concat(x, ',', y)"},
		"select distinct  Sum(x)  from t where y = 1":     {"Sum(x)"},
		"select 1+1": {"1+1"},
		"select ?+1, (select max(a) from u where u.b = t.b) from t": {"?+1", "(select max(a) from u where u.b = t.b)"},
		"select a as `from`, b c from t order by 1":                 {"a as `from`", "b c"},
		"select x from t;":   {"x"},
		"select x, y":        {"x", "y"},
		"update t set a = 1": nil,
		"select (a":          nil,
	} {
		if got := SelectItemTexts(p, sql); !slices.Equal(got, want) {
			t.Errorf("SelectItemTexts(%q) = %q, want %q", sql, got, want)
		}
	}
}
