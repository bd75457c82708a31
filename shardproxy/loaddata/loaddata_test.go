package loaddata

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	sql := "LOAD DATA LOCAL INFILE '/tmp/a.csv' REPLACE INTO TABLE `db`.t1 CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' LINES STARTING BY 'x' TERMINATED BY '\\r\\n' IGNORE 2 LINES (a, @b, `c`) SET d = @b * 2, e = CONCAT(@b, 'x')"
	st, err := Parse(sql)
	if err != nil {
		t.Fatal(err)
	}
	want := Format{FieldsTerminated: ",", Enclosed: "\"", Optionally: true, Escaped: "\\", LinesStarting: "x", LinesTerminated: "\r\n"}
	if st.Format != want || !st.Local || st.File != "/tmp/a.csv" || st.DB != "db" || st.Table != "t1" || st.Charset != "utf8mb4" || st.Ignore != 2 {
		t.Fatalf("%+v", st)
	}
	if !reflect.DeepEqual(st.Columns, []string{"a", "@b", "c"}) || !reflect.DeepEqual(st.Set, []string{"d", "e"}) {
		t.Fatalf("columns %q set %q", st.Columns, st.Set)
	}
	if got := sql[st.TableAt:st.TableEnd]; got != "`db`.t1" {
		t.Fatalf("table span %q", got)
	}
	if got := sql[st.IgnoreAt:st.IgnoreEnd]; got != "IGNORE 2 LINES" {
		t.Fatalf("ignore span %q", got)
	}
	if got := sql[st.ColumnsAt:st.ColumnsEnd]; got != "(a, @b, `c`)" {
		t.Fatalf("columns span %q", got)
	}
	for _, bad := range []string{"LOAD DATA LOCAL INFILE x INTO TABLE t", "LOAD DATA LOCAL INFILE 'x' INTO t", "LOAD DATA INFILE 'x' INTO TABLE t IGNORE x LINES", "LOAD XML LOCAL INFILE 'x' INTO TABLE t"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestReader(t *testing.T) {
	type rec struct {
		raw    string
		fields []string // "\\N" for NULL
		cut    bool
	}
	cases := []struct {
		name   string
		f      Format
		n      int
		ignore int64
		data   string
		want   []rec
	}{
		{"tabs", DefaultFormat(), 2, 0, "1\ta\n2\tb\\tc\n3\t\\N\n", []rec{{"1\ta\n", []string{"1", "a"}, false}, {"2\tb\\tc\n", []string{"2", "b\tc"}, false}, {"3\t\\N\n", []string{"3", "\\N"}, false}}},
		{"no final newline, short and long lines", DefaultFormat(), 2, 0, "1\n2\tx\ty\n\n3\tz", []rec{{"1\n", []string{"1"}, false}, {"2\tx\ty\n", []string{"2", "x"}, true}, {"\n", []string{""}, false}, {"3\tz", []string{"3", "z"}, false}}},
		{"csv enclosed", Format{FieldsTerminated: ",", Enclosed: "\"", Escaped: "\\", LinesTerminated: "\n"}, 2, 1, "h1,h2\n\"1\",\"a,\"\"b\nc\"\n2,NULL\n\"3\",\"NULL\"\n", []rec{{"\"1\",\"a,\"\"b\nc\"\n", []string{"1", "a,\"b\nc"}, false}, {"2,NULL\n", []string{"2", "\\N"}, false}, {"\"3\",\"NULL\"\n", []string{"3", "NULL"}, false}}},
		{"starting by", Format{FieldsTerminated: ",", LinesStarting: "xx", LinesTerminated: "\n", Escaped: "\\"}, 2, 0, "junk\nxx1,a\nzzxx2,b\n", []rec{{"junk\nxx1,a\n", []string{"1", "a"}, false}, {"zzxx2,b\n", []string{"2", "b"}, false}}},
		{"crlf", Format{FieldsTerminated: ";", LinesTerminated: "\r\n", Escaped: "\\"}, 2, 0, "1;a\r\n2;b\rc\r\n", []rec{{"1;a\r\n", []string{"1", "a"}, false}, {"2;b\rc\r\n", []string{"2", "b\rc"}, false}}},
	}
	for _, c := range cases {
		r, err := NewReader([]byte(c.data), c.f, c.n, c.ignore)
		if err != nil {
			t.Fatal(err)
		}
		var got []rec
		for {
			x, ok := r.Next()
			if !ok {
				break
			}
			g := rec{raw: c.data[x.At:x.End], cut: x.Cut}
			for _, f := range x.Fields {
				if f.Null {
					g.fields = append(g.fields, "\\N")
				} else {
					g.fields = append(g.fields, string(f.Value))
				}
			}
			got = append(got, g)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", c.name, got, c.want)
		}
	}
}
