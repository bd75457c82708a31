package xa

import (
	"slices"
	"testing"
)

func TestVictims(t *testing.T) {
	ours := func(server string, conn uint32, tx uint64) Party[string] {
		return Party[string]{Server: server, Conn: conn, Tx: tx}
	}
	other := func(server string, conn uint32) Party[string] { return Party[string]{Server: server, Conn: conn} }
	w := func(a, b Party[string]) Wait[string] { return Wait[string]{Waiter: a, Holder: b} }
	for _, c := range []struct {
		name  string
		waits []Wait[string]
		want  []uint64
	}{
		{"none", nil, nil},
		{"a wait, no cycle", []Wait[string]{w(ours("A", 1, 7), ours("A", 2, 8))}, nil},
		{"two shards, two transactions", []Wait[string]{
			// 7 holds on A, waits on B for 8; 8 holds on B, waits on A.
			w(ours("B", 11, 7), ours("B", 12, 8)),
			w(ours("A", 2, 8), ours("A", 1, 7)),
		}, []uint64{8}},
		{"one server's cycle is the server's", []Wait[string]{
			w(ours("A", 1, 7), ours("A", 2, 8)),
			w(ours("A", 2, 8), ours("A", 1, 7)),
		}, nil},
		{"through a single-shard transaction", []Wait[string]{
			// 7 waits on B for a plain transaction (conn 30), which waits
			// on B for 9; 9 waits on A for 7.
			w(ours("B", 11, 7), other("B", 30)),
			w(other("B", 30), ours("B", 13, 9)),
			w(ours("A", 3, 9), ours("A", 1, 7)),
		}, []uint64{9}},
		{"no transaction of ours", []Wait[string]{
			w(other("A", 1), other("A", 2)),
			w(other("B", 2), other("B", 1)),
		}, nil},
		{"two cycles sharing nothing", []Wait[string]{
			w(ours("B", 11, 1), ours("B", 12, 2)),
			w(ours("A", 2, 2), ours("A", 1, 1)),
			w(ours("B", 21, 5), ours("B", 22, 4)),
			w(ours("A", 22, 4), ours("A", 21, 5)),
		}, []uint64{2, 5}},
		{"one victim breaks both cycles through it", []Wait[string]{
			w(ours("B", 11, 1), ours("B", 13, 3)),
			w(ours("A", 3, 3), ours("A", 1, 1)),
			w(ours("B", 12, 2), ours("B", 13, 3)),
			w(ours("A", 3, 3), ours("A", 2, 2)),
		}, []uint64{3}},
		{"prepared branch (no connection) holds: no cycle", []Wait[string]{
			w(ours("A", 1, 7), other("A", 0)),
			w(ours("B", 5, 8), other("B", 0)),
		}, nil},
	} {
		got := Victims(c.waits)
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: victims %v, want %v", c.name, got, c.want)
		}
	}
}
