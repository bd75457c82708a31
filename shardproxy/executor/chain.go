package executor

import (
	"regexp"
	"strings"

	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/shardproxy/mysqlerr"
)

// txEndRE reads COMMIT / ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE],
// the forms vitess's parser does not read.
var txEndRE = regexp.MustCompile(`(?is)^\s*(COMMIT|ROLLBACK)(?:\s+WORK)?(\s+AND\s+(NO\s+)?CHAIN)?(\s+(NO\s+)?RELEASE)?\s*;?\s*$`)

// txEndChain runs COMMIT or ROLLBACK with AND CHAIN or RELEASE, as the
// session's own transaction (in a sharded database too, where it may span
// shards): AND CHAIN ends the transaction and begins the next one at once,
// with the same characteristics (START TRANSACTION READ ONLY / READ WRITE,
// and those SET TRANSACTION gave the one ended), as MariaDB does, even
// when no transaction was open; RELEASE ends it and closes the
// connection once the OK went out. ok is false for other statements.
func (s *Session) txEndChain(sql string) (res *sqltypes.Result, err error, ok bool) {
	m := txEndRE.FindStringSubmatchIndex(sql)
	if m == nil {
		return nil, nil, false
	}
	group := func(i int) bool { return m[2*i] >= 0 }
	commit := strings.EqualFold(sql[m[2]:m[3]], "COMMIT")
	chain := group(2) && !group(3)
	release := group(4) && !group(5)
	if chain && release {
		// MariaDB's grammar has no AND CHAIN RELEASE.
		at := m[8] + strings.Index(strings.ToUpper(sql[m[8]:m[9]]), "RELEASE")
		return nil, mysqlerr.SyntaxErrorAt(sql, at), true
	}
	var begin, iso, ro string
	if chain {
		begin, _, _ = strings.Cut(s.TxBegin, ";") // not the savepoints queued behind it
		iso, ro = s.Vars.NextIso, s.Vars.NextRO
		if s.Tx != nil && s.TxNext != "" {
			iso, ro = txCharacteristics(s.TxNext)
		}
	}
	err = s.endTx(commit)
	switch {
	case release:
		s.closeAfterAnswer()
	case chain && err == nil:
		s.ExplicitTx = true
		s.TxBegin = begin
		if s.TxBegin == "" {
			s.TxBegin = "BEGIN"
		}
		s.Vars.NextIso, s.Vars.NextRO = iso, ro
	}
	if err != nil {
		return nil, err, true
	}
	return okResult, nil, true
}

// txCharacteristics reads back the SET TRANSACTION that Vars.NextTxSQL
// made: its isolation level and access mode parts.
func txCharacteristics(set string) (iso, ro string) {
	for _, part := range strings.Split(strings.TrimPrefix(set, "SET TRANSACTION "), ", ") {
		if strings.HasPrefix(part, "ISOLATION") {
			iso = part
		} else {
			ro = part
		}
	}
	return iso, ro
}
