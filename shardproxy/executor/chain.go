package executor

import (
	"regexp"
	"strings"

	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/session"
)

// txEndRE reads COMMIT / ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE],
// the forms vitess's parser does not read.
var txEndRE = regexp.MustCompile(`(?is)^\s*(COMMIT|ROLLBACK)(?:\s+WORK)?(\s+AND\s+(NO\s+)?CHAIN)?(\s+(NO\s+)?RELEASE)?\s*;?\s*$`)

// clause is an AND [NO] CHAIN or [NO] RELEASE clause: absent, or saying
// yes or no.
type clause int

const (
	clauseAbsent clause = iota
	clauseYes
	clauseNo
)

// txEndChain runs COMMIT or ROLLBACK with AND CHAIN or RELEASE, as the
// session's own transaction (in a sharded database too, where it may span
// shards). ok is false for other statements.
func (s *Session) txEndChain(sql string) (res *sqltypes.Result, err error, ok bool) {
	m := txEndRE.FindStringSubmatchIndex(sql)
	if m == nil {
		return nil, nil, false
	}
	group := func(i int) bool { return m[2*i] >= 0 }
	commit := strings.EqualFold(sql[m[2]:m[3]], "COMMIT")
	chain, release := clauseAbsent, clauseAbsent
	switch {
	case group(3):
		chain = clauseNo
	case group(2):
		chain = clauseYes
	}
	switch {
	case group(5):
		release = clauseNo
	case group(4):
		release = clauseYes
	}
	if chain == clauseYes && release == clauseYes {
		// MariaDB's grammar has no AND CHAIN RELEASE.
		at := m[8] + strings.Index(strings.ToUpper(sql[m[8]:m[9]]), "RELEASE")
		return nil, mysqlerr.SyntaxErrorAt(sql, at), true
	}
	res, err = s.txEnd(commit, chain, release)
	return res, err, true
}

// txEnd runs the client's COMMIT or ROLLBACK: AND CHAIN ends the
// transaction and begins the next one at once, with the same
// characteristics (START TRANSACTION READ ONLY / READ WRITE, and those SET
// TRANSACTION gave the one ended), as MariaDB does, even when no
// transaction was open; RELEASE ends it and closes the connection once the
// OK went out (after AND CHAIN began the next one, as MariaDB does). A
// clause absent is what the session's completion_type says.
func (s *Session) txEnd(commit bool, chainClause, releaseClause clause) (*sqltypes.Result, error) {
	chain := chainClause == clauseYes || (chainClause == clauseAbsent && s.Vars.Completion == session.Chain)
	release := releaseClause == clauseYes || (releaseClause == clauseAbsent && s.Vars.Completion == session.Release)
	var begin, iso, ro string
	if chain {
		begin, _, _ = strings.Cut(s.TxBegin, ";") // not the savepoints queued behind it
		iso, ro = s.Vars.NextIso, s.Vars.NextRO
		if s.Tx != nil && s.TxNext != "" {
			iso, ro = txCharacteristics(s.TxNext)
		}
	}
	err := s.endTx(commit)
	if chain && err == nil {
		s.ExplicitTx = true
		s.TxBegin = begin
		if s.TxBegin == "" {
			s.TxBegin = "BEGIN"
		}
		s.Vars.NextIso, s.Vars.NextRO = iso, ro
	}
	if release {
		s.closeAfterAnswer()
	}
	if err != nil {
		return nil, err
	}
	return okResult, nil
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
