package executor

import (
	"testing"

	"vitess.io/vitess/go/vt/sqlparser"
)

func TestPipeable(t *testing.T) {
	parser := sqlparser.NewTestParser()
	for sql, want := range map[string]bool{
		"select c from sbtest1 where id = 5":                              true,
		"select * from t where id = :id":                                  true,
		"select a, b as x, 'k', 1 from t where id = 5 and b > 2 limit 1":  true,
		"select a from t use index (primary) where id = 5 order by a":     true,
		"select sleep(1) from t where id = 5":                             false,
		"select a from t where id = 5 for update":                         false,
		"select a from t where id = 5 lock in share mode":                 false,
		"select a from t where id = (select 5)":                           false,
		"select a from t where id = 5 and exists (select 1 from u)":       false,
		"select count(*) from t where id = 5":                             false,
		"select a from t where id = 5 and get_lock('x', 10)":              false,
		"select a from t where id = 5 union select a from t where id = 6": false,
		"select a into @x from t where id = 5":                            false,
		"select a from t join u on t.id = u.id where t.id = 5":            false,
		"select a + 1 from t where id = 5":                                false,
	} {
		stmt, err := parser.Parse(sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if got := pipeable(stmt); got != want {
			t.Errorf("pipeable(%q) = %v, want %v", sql, got, want)
		}
	}
}
