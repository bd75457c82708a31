package config

import (
	"fmt"
	"time"
)

// Transaction modes of a database (Database.TransactionMode), as Vitess
// has them.
const (
	// TxTwoPC makes every transaction atomic whatever shards it touches:
	// one shard stays a plain transaction, more become XA branches whose
	// outcome the coordinator records. The default when a coordinator is
	// configured.
	TxTwoPC = "twopc"
	// TxSingle refuses (error 1235) any statement of a transaction that
	// would reach a second shard. The default without a coordinator.
	TxSingle = "single"
	// TxMulti lets a transaction span shards and commits each shard in
	// turn: best effort, not atomic (a failure part-way leaves some shards
	// committed).
	TxMulti = "multi"
)

// Transactions connects the proxy to the transaction coordinator (package
// txcoord) for atomic cross-shard transactions.
type Transactions struct {
	// Coordinator lists the gRPC addresses of the coordinator group's nodes
	// (any subset works; all of them fail over best). Empty (the default):
	// no coordinator, and databases default to transaction_mode single.
	Coordinator []string `yaml:"coordinator"`
	// DecisionTimeout bounds recording one decision, retries across
	// coordinator nodes included. Default 10s.
	DecisionTimeout time.Duration `yaml:"decision_timeout"`
	// ResolveInterval is how often the proxy's resolver runs XA RECOVER on
	// every shard primary (it also runs at start and after a switchover or
	// failover). Default 10s.
	ResolveInterval time.Duration `yaml:"resolve_interval"`
	// AbandonAfter is how long a prepared branch of ours with no recorded
	// decision may stay before the resolver records abort for it and rolls
	// it back (presumed abort). It must be well above the time a commit
	// takes from PREPARE to the decision. Default 30s.
	AbandonAfter time.Duration `yaml:"abandon_after"`
	// DeadlockCheck is how long a statement of a cross-shard transaction
	// may wait for a lock before the proxy looks for a deadlock across
	// shards (each shard's server sees only its own part of such a cycle
	// and would wait out innodb_lock_wait_timeout), and how often it looks
	// again (every half of it) while one waits. 0 turns the check off.
	// Default 200ms: a server finds its own deadlocks at once, and a cycle
	// across shards holds every transaction queued behind its rows until it
	// is broken.
	DeadlockCheck time.Duration `yaml:"deadlock_check"`
}

// DefaultTransactions is Transactions' defaults: no coordinator.
func DefaultTransactions() Transactions {
	return Transactions{DecisionTimeout: 10 * time.Second, ResolveInterval: 10 * time.Second, AbandonAfter: 30 * time.Second, DeadlockCheck: 200 * time.Millisecond}
}

// Enabled reports whether a coordinator is configured.
func (t Transactions) Enabled() bool { return len(t.Coordinator) > 0 }

// validateTransactions checks the transactions section and each database's
// transaction_mode.
func (c *Config) validateTransactions() error {
	t := c.Transactions
	f := func(name, format string, args ...any) error {
		return fieldErr("transactions."+name, format, args...)
	}
	seen := map[string]bool{}
	for i, a := range t.Coordinator {
		name := fmt.Sprintf("coordinator[%d]", i)
		if err := checkAddr(a); err != nil {
			return f(name, "%v (the gRPC address of a txcoord node)", err)
		}
		if seen[a] {
			return f(name, "%s is listed twice", a)
		}
		seen[a] = true
	}
	switch {
	case t.DecisionTimeout <= 0:
		return f("decision_timeout", "must be positive, e.g. 10s")
	case t.ResolveInterval <= 0:
		return f("resolve_interval", "must be positive, e.g. 10s")
	case t.AbandonAfter < time.Second:
		return f("abandon_after", "%v is below 1s: a slow commit would be aborted under it", t.AbandonAfter)
	case t.DeadlockCheck < 0:
		return f("deadlock_check", "must not be negative (0 turns the check off), e.g. 1s")
	case t.DeadlockCheck > 0 && t.DeadlockCheck < 10*time.Millisecond:
		return f("deadlock_check", "%v is below 10ms: every lock wait would cost each shard a look at its lock waits", t.DeadlockCheck)
	}
	for name, d := range c.Databases {
		if d == nil {
			continue
		}
		switch d.TransactionMode {
		case "", TxSingle, TxMulti:
		case TxTwoPC:
			if !t.Enabled() {
				return fieldErr("databases."+name+".transaction_mode", "twopc needs a coordinator: list its nodes in transactions.coordinator")
			}
		default:
			return fieldErr("databases."+name+".transaction_mode", "%q is not twopc, single or multi", d.TransactionMode)
		}
	}
	return nil
}

// TxMode returns database db's transaction mode, its default applied:
// twopc when a coordinator is configured, single otherwise.
func (c *Config) TxMode(db string) string {
	if d := c.Databases[db]; d != nil && d.TransactionMode != "" {
		return d.TransactionMode
	}
	if c.Transactions.Enabled() {
		return TxTwoPC
	}
	return TxSingle
}
