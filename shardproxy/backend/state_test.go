package backend

import "testing"

func TestStateDiff(t *testing.T) {
	var st States
	a := st.With(nil, "sql_mode", "@@session.sql_mode = 'ANSI'")
	a2 := st.With(nil, "sql_mode", "@@session.sql_mode = 'ANSI'")
	if a != a2 {
		t.Fatal("equal states not interned to one pointer")
	}
	b := st.With(a, NamesVar, "NAMES 'latin1'")
	c := st.With(b, "character_set_results", "@@session.character_set_results = NULL")
	d := st.With(nil, "character_set_client", "@@session.character_set_client = 'cp1251'")
	e := st.With(nil, NamesVar, "NAMES 'latin1'")
	cases := []struct {
		from, to *State
		want     string
	}{
		{nil, nil, ""},
		{a, a, ""},
		{nil, a, "SET @@session.sql_mode = 'ANSI'"},
		{a, nil, "SET @@session.sql_mode = DEFAULT"},
		{a, b, "SET NAMES 'latin1'"},
		{b, a, "SET NAMES utf8mb4"},
		// NAMES changes: character_set_results goes again after it.
		{a, c, "SET NAMES 'latin1', @@session.character_set_results = NULL"},
		// A reset charset variable gets the global value: NAMES again after it.
		{c, b, "SET @@session.character_set_results = DEFAULT, NAMES 'latin1'"},
		{c, nil, "SET @@session.character_set_results = DEFAULT, @@session.sql_mode = DEFAULT, NAMES utf8mb4"},
		// A connection that carried an explicit character_set_client, handed
		// to a session with SET NAMES: the reset must not undo NAMES.
		{d, e, "SET @@session.character_set_client = DEFAULT, NAMES 'latin1'"},
	}
	for i, tc := range cases {
		if got := diffSQL(tc.from, tc.to); got != tc.want {
			t.Errorf("%d: got %q want %q", i, got, tc.want)
		}
	}
	if st.With(a, "sql_mode", "") != nil {
		t.Error("removing the only variable should give the default (nil) state")
	}
}
