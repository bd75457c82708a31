package session

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/strata-db/strata/shardproxy/backend"
	"vitess.io/vitess/go/mysql/collations"
)

// ClientCharset implements engine.SessionCharset: the character set in
// which the session's statements and parameters reach the shards
// (character_set_client), as the backend connections running them have
// it. The engine hashes a non-ASCII string shard key only when that is
// UTF-8: a latin1 session's 'é' (C3 A9 in a Go string) means "Ã©" to the
// server. The session's State holds what the connections get: NAMES (from
// the handshake's character set, SET NAMES or SET CHARACTER SET), then an
// explicit character_set_client, applied after NAMES; with neither, the
// backend connections' own utf8mb4. "" when the value cannot be read, which
// the engine takes for not UTF-8.
func (s *Session) ClientCharset() string {
	if v, ok := s.State.Get("character_set_client"); ok {
		return s.sh.assignedCharset(v)
	}
	if v, ok := s.State.Get(backend.NamesVar); ok {
		if m := namesCharsetRE.FindStringSubmatch(v); m != nil {
			return strings.ToLower(m[1])
		}
		return ""
	}
	return "utf8mb4"
}

// namesCharsetRE reads the character set of a NAMES assignment of the
// State: NAMES 'latin1' [COLLATE ...], CHARACTER SET 'latin1', NAMES
// utf8mb4.
var namesCharsetRE = regexp.MustCompile(`^(?:NAMES|CHARACTER SET)\s+'?([A-Za-z0-9_]+)'?`)

// assignedCharset reads the character set of an assignment the State
// holds for a character_set_* variable ("@@session.character_set_client =
// 'latin1'"): a name, or a number, which MariaDB takes for a collation's.
func (srv *Shared) assignedCharset(assign string) string {
	_, v, ok := strings.Cut(assign, "= ")
	if !ok {
		return ""
	}
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 1<<16 && srv != nil && srv.Collations != nil {
		name := srv.Collations.LookupName(collations.ID(n))
		cs, _, _ := strings.Cut(name, "_")
		return cs
	}
	if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' || !identRE.MatchString(v[1:len(v)-1]) {
		return ""
	}
	return strings.ToLower(v[1 : len(v)-1])
}

// identRE matches a bare name: a character set or collation.
var identRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
