package txcoord

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// ModuleXA is the ID of the XA-decision module.
const ModuleXA byte = 1

// Decision is the recorded outcome of a distributed transaction.
type Decision uint8

const (
	Unknown Decision = iota // nothing recorded
	Commit
	Abort
)

func (d Decision) String() string {
	switch d {
	case Commit:
		return "commit"
	case Abort:
		return "abort"
	default:
		return "unknown"
	}
}

// Limits of the XA module, part of its API.
const (
	// MaxBeginCount is the most transaction ids one Begin reserves.
	MaxBeginCount = 1_000_000
	// MaxShards is the most branches one decision may name, MaxNameLen the
	// longest shard or owner name: bounds on what a client can make the
	// group store.
	MaxShards  = 256
	MaxNameLen = 128
)

// TxRecord is one transaction's recorded decision.
type TxRecord struct {
	TxID     uint64   `json:"id"`
	Decision Decision `json:"d"`
	Shards   []string `json:"s,omitempty"`
	Owner    string   `json:"o,omitempty"`
	// DecidedMs and CompletedMs are Unix milliseconds from the proposer's
	// clock; CompletedMs is 0 until Complete.
	DecidedMs   int64 `json:"dt"`
	CompletedMs int64 `json:"ct,omitempty"`
}

// xaCmd is the XA module's Raft command: one Begin, a batch of decisions
// and completions, or a garbage collection.
type xaCmd struct {
	// NowMs is the proposer's clock; Apply uses no other.
	NowMs int64 `json:"now"`
	// Begin reserves this many ids.
	Begin uint64 `json:"begin,omitempty"`
	// Decide and Complete are batches.
	Decide   []TxRecord `json:"decide,omitempty"`
	Complete []uint64   `json:"complete,omitempty"`
	// GCBeforeMs forgets completed decisions completed before it.
	GCBeforeMs int64 `json:"gc,omitempty"`
}

// xaResult answers an xaCmd.
type xaResult struct {
	Start uint64 `json:"start,omitempty"` // Begin
	// Decided holds, per Decide item in order, the decision in force.
	Decided []Decision `json:"decided,omitempty"`
	// Errs holds, per Decide item, why it was refused ("" if not).
	Errs []string `json:"errs,omitempty"`
}

// xaState is the module's replicated state.
type xaState struct {
	NextTxID uint64               `json:"next"`
	Txs      map[uint64]*TxRecord `json:"txs"`
}

// XA is the XA-decision module: the state the proxies' two-phase commit
// records its decisions in, its gRPC service (Decisions) and the batching of
// concurrent decisions into one Raft entry. Create it with NewXA and pass it
// in Config.Modules.
type XA struct {
	cfg XAConfig

	mu sync.RWMutex
	st xaState

	batch   *batcher
	metrics *xaMetrics
	// decideEntries counts applied entries that carried decisions (tests
	// check the batching with it).
	decideEntries atomic.Uint64
}

var (
	_ Module      = (*XA)(nil)
	_ Runner      = (*XA)(nil)
	_ GRPCService = (*XA)(nil)
)

func emptyXAState() xaState { return xaState{NextTxID: 1, Txs: map[uint64]*TxRecord{}} }

// ID is ModuleXA.
func (x *XA) ID() byte { return ModuleXA }

// Apply applies one xaCmd.
func (x *XA) Apply(_ uint64, cmd []byte) ([]byte, error) {
	var c xaCmd
	if err := json.Unmarshal(cmd, &c); err != nil {
		return nil, fmt.Errorf("undecodable XA command: %w", err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var res xaResult
	if c.Begin > 0 {
		if c.Begin > MaxBeginCount {
			return nil, fmt.Errorf("begin count %d is above %d", c.Begin, MaxBeginCount)
		}
		res.Start = x.st.NextTxID
		x.st.NextTxID += c.Begin
	}
	if len(c.Decide) > 0 {
		x.decideEntries.Add(1)
		res.Decided = make([]Decision, len(c.Decide))
		res.Errs = make([]string, len(c.Decide))
		for i, d := range c.Decide {
			res.Decided[i], res.Errs[i] = x.decide(d, c.NowMs)
		}
	}
	for _, id := range c.Complete {
		r, ok := x.st.Txs[id]
		// A completed abort is kept, as a completed commit is, until the
		// garbage collection after the retention: forgotten at once, it
		// would read as no decision, and a proxy that prepared the
		// transaction, stalled past the resolver's presumed abort and then
		// asked for commit would have it granted for branches already
		// rolled back. Kept, that late commit is refused (the first
		// decision wins) for as long as the retention, which is far longer
		// than a decision request may take (transactions.decision_timeout).
		if ok && r.CompletedMs == 0 {
			r.CompletedMs = c.NowMs
		}
	}
	if c.GCBeforeMs > 0 {
		for id, r := range x.st.Txs {
			if r.CompletedMs != 0 && r.CompletedMs < c.GCBeforeMs {
				delete(x.st.Txs, id)
			}
		}
	}
	return json.Marshal(res)
}

// decide is the compare-and-set: the first decision for a transaction
// wins; the same decision again is accepted, a different one refused.
func (x *XA) decide(d TxRecord, nowMs int64) (Decision, string) {
	if err := checkDecide(d); err != nil {
		return Unknown, err.Error()
	}
	if d.TxID >= x.st.NextTxID {
		return Unknown, fmt.Sprintf("transaction %d was never begun (next id %d)", d.TxID, x.st.NextTxID)
	}
	if r, ok := x.st.Txs[d.TxID]; ok {
		if r.Decision != d.Decision {
			return r.Decision, fmt.Sprintf("transaction %d is already decided: %s", d.TxID, r.Decision)
		}
		return r.Decision, ""
	}
	x.st.Txs[d.TxID] = &TxRecord{TxID: d.TxID, Decision: d.Decision, Shards: d.Shards, Owner: d.Owner, DecidedMs: nowMs}
	return d.Decision, ""
}

// errInvalid marks a request's bad arguments (InvalidArgument over gRPC).
var errInvalid = errors.New("txcoord: invalid argument")

func checkDecide(d TxRecord) error {
	switch {
	case d.TxID == 0:
		return fmt.Errorf("%w: txid 0", errInvalid)
	case d.Decision != Commit && d.Decision != Abort:
		return fmt.Errorf("%w: decision must be commit or abort", errInvalid)
	case len(d.Shards) > MaxShards:
		return fmt.Errorf("%w: %d shards, at most %d", errInvalid, len(d.Shards), MaxShards)
	case len(d.Owner) > MaxNameLen:
		return fmt.Errorf("%w: owner longer than %d bytes", errInvalid, MaxNameLen)
	}
	for _, s := range d.Shards {
		if s == "" || len(s) > MaxNameLen {
			return fmt.Errorf("%w: shard name %q is empty or longer than %d bytes", errInvalid, s, MaxNameLen)
		}
	}
	return nil
}

// Snapshot returns the whole state as JSON.
func (x *XA) Snapshot() ([]byte, error) {
	encode, err := x.SnapshotCopy()
	if err != nil {
		return nil, err
	}
	return encode()
}

// SnapshotCopy copies the records (values: Apply changes a record in
// place when it completes) and returns their encoding as JSON, Snapshot's
// format, for later: with minutes of decisions retained under load (about
// 420,000 records at 700 decisions/s), marshalling them took the Raft FSM
// goroutine, and every Apply waiting behind it, for as long as that.
func (x *XA) SnapshotCopy() (func() ([]byte, error), error) {
	x.mu.RLock()
	next := x.st.NextTxID
	recs := make([]TxRecord, 0, len(x.st.Txs))
	for _, r := range x.st.Txs {
		recs = append(recs, *r) // Shards is never changed after the decision
	}
	x.mu.RUnlock()
	return func() ([]byte, error) {
		st := xaState{NextTxID: next, Txs: make(map[uint64]*TxRecord, len(recs))}
		for i := range recs {
			st.Txs[recs[i].TxID] = &recs[i]
		}
		return json.Marshal(st)
	}, nil
}

// Restore replaces the state.
func (x *XA) Restore(data []byte) error {
	st := emptyXAState()
	if len(data) > 0 {
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("XA snapshot: %w", err)
		}
		if st.Txs == nil {
			st.Txs = map[uint64]*TxRecord{}
		}
		if st.NextTxID == 0 {
			st.NextTxID = 1
		}
	}
	x.mu.Lock()
	x.st = st
	x.mu.Unlock()
	return nil
}

// Record returns a copy of txid's record, if any (this node's state: a
// follower's may lag; commit and abort are final, Unknown may be stale).
func (x *XA) Record(txid uint64) (TxRecord, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	r, ok := x.st.Txs[txid]
	if !ok {
		return TxRecord{TxID: txid}, false
	}
	c := *r
	c.Shards = slices.Clone(r.Shards)
	return c, true
}

// List returns up to limit records in txid order (oldest first); completed
// commits only with includeCompleted. It also returns the next txid.
func (x *XA) List(includeCompleted bool, limit int) ([]TxRecord, uint64) {
	x.mu.RLock()
	ids := make([]uint64, 0, len(x.st.Txs))
	for id, r := range x.st.Txs {
		if includeCompleted || r.CompletedMs == 0 {
			ids = append(ids, id)
		}
	}
	next := x.st.NextTxID
	x.mu.RUnlock()
	slices.Sort(ids)
	out := make([]TxRecord, 0, min(len(ids), limit))
	for _, id := range ids {
		if len(out) >= limit {
			break
		}
		if r, ok := x.Record(id); ok {
			out = append(out, r)
		}
	}
	return out, next
}
