package executor

import (
	"testing"

	"github.com/strata-db/strata/shardproxy/backend"
)

// TestClientCharsetFromState: the character set a session's State gives
// its backend connections' character_set_client.
func TestClientCharsetFromState(t *testing.T) {
	srv := offlineServer(t)
	for _, c := range []struct{ names, client, want string }{
		{"", "", "utf8mb4"},
		{"NAMES 'latin1'", "", "latin1"},
		{"NAMES 'latin1' COLLATE 'latin1_bin'", "", "latin1"},
		{"CHARACTER SET 'cp1251'", "", "cp1251"},
		{backend.DefaultNames, "", "utf8mb4"},
		{"", "'LATIN1'", "latin1"},
		{"", "8", "latin1"}, // a collation's number: latin1_swedish_ci
		{"NAMES 'latin1'", "'utf8mb4'", "utf8mb4"},
		{"NAMES 'utf8mb4'", "'binary'", "binary"},
		{"", "'a b'", ""},
	} {
		ss := newSession(srv, nil)
		if c.names != "" {
			ss.State = srv.cluster.States.With(ss.State, backend.NamesVar, c.names)
		}
		if c.client != "" {
			ss.State = srv.cluster.States.With(ss.State, "character_set_client", "@@session.character_set_client = "+c.client)
		}
		if got := ss.ClientCharset(); got != c.want {
			t.Errorf("%s / %s: %q, want %q", c.names, c.client, got, c.want)
		}
	}
}
