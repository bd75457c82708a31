package fleet

import "testing"

func TestParsePosition(t *testing.T) {
	p, err := ParsePosition(" 1-2-5,0-1-100 ")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != "0-1-100,1-2-5" {
		t.Fatalf("String() = %q", got)
	}
	if p, err := ParsePosition(""); err != nil || len(p) != 0 {
		t.Fatalf("empty: %v %v", p, err)
	}
	for _, bad := range []string{"0-1", "a-b-c", "0-1-2-3", "0-1-2,", "-1-1-1"} {
		if _, err := ParsePosition(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestPositionContains(t *testing.T) {
	mp := func(s string) Position {
		p, err := ParsePosition(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		p, q string
		want bool
	}{
		{"0-1-100", "0-1-100", true},
		{"0-1-100", "0-1-101", false},
		{"0-2-101", "0-1-100", true}, // a new primary continues the domain's seq
		{"0-1-100", "", true},
		{"", "0-1-1", false},
		{"0-1-100,1-1-5", "1-1-5", true},
		{"0-1-100", "1-1-5", false},
	}
	for _, c := range cases {
		if got := mp(c.p).Contains(mp(c.q)); got != c.want {
			t.Errorf("%q contains %q = %v, want %v", c.p, c.q, got, c.want)
		}
	}
	a, b := mp("0-1-10,1-1-3"), mp("0-1-9,1-1-4")
	if a.Compare(b) != 0 || a.Compare(mp("0-1-9")) != 1 || mp("0-1-9").Compare(a) != -1 {
		t.Error("Compare")
	}
	m := a.Merge(b)
	if m.String() != "0-1-10,1-1-4" {
		t.Errorf("Merge = %s", m)
	}
	if a.String() != "0-1-10,1-1-3" {
		t.Errorf("Merge modified its receiver: %s", a)
	}
}
