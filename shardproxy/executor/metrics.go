package executor

import "github.com/prometheus/client_golang/prometheus"

// stmtKind classifies statements for metrics and transaction handling.
type stmtKind uint8

const (
	kindSelect stmtKind = iota
	kindInsert
	kindUpdate
	kindDelete
	kindDDL
	kindSet
	kindShow
	kindTx
	kindOther
	numKinds
)

var kindNames = [numKinds]string{"select", "insert", "update", "delete", "ddl", "set", "show", "transaction", "other"}

// Metrics are the executor's metrics, by statement kind.
type Metrics struct {
	Statements [NumKinds]prometheus.Counter
	StmtErrors [NumKinds]prometheus.Counter
	Slow       prometheus.Counter
}

// NumKinds is the number of statement kinds; KindName names each (the
// metrics' kind label).
const NumKinds = int(numKinds)

// KindName is the kind label of statement kind k.
func KindName(k int) string { return kindNames[k] }
