package idserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// FSM is the ID service's replicated state: per tag, the high-water mark
// (the first ID not yet reserved) and step; for snowflake mode, the layout
// and each worker's lease and timestamp reservation. It implements
// raftstore.FSM. Commands carry every input the FSM needs (including the
// leader's clock), so Apply is deterministic.
type FSM struct {
	mu sync.RWMutex
	st fsmState
}

type fsmState struct {
	Tags      map[string]*tagRecord `json:"tags"`
	Snowflake snowState             `json:"snowflake"`
}

type tagRecord struct {
	Next uint64 `json:"next"` // first ID not yet reserved
	Step uint64 `json:"step"` // the tag's own (smallest) step
}

type snowState struct {
	Layout  *Layout                  `json:"layout,omitempty"`
	Workers map[uint64]*workerRecord `json:"workers"`
}

// workerRecord is one snowflake worker ID. Times are unix milliseconds.
type workerRecord struct {
	Owner string `json:"owner"`
	// Expires is when the lease lapses, by the leader's clock; 0 after a
	// release. A lapsed worker may go to another owner.
	Expires int64 `json:"expires"`
	// ReservedUntil is the last timestamp any holder of this worker was
	// allowed to use; the next holder starts above it.
	ReservedUntil int64 `json:"reserved_until"`
}

// NewFSM returns an empty state machine.
func NewFSM() *FSM {
	return &FSM{st: newState()}
}

func newState() fsmState {
	return fsmState{Tags: map[string]*tagRecord{}, Snowflake: snowState{Workers: map[uint64]*workerRecord{}}}
}

// Command operations.
const (
	opReserve   = "reserve"    // reserve Count IDs of Tag (creating it with Start/Step if new)
	opCreate    = "create"     // create Tag with Start and Step
	opSFAcquire = "sf_acquire" // lease a worker to Owner
	opSFReserve = "sf_reserve" // renew Owner's lease of Worker and reserve timestamps up to Until
	opSFRelease = "sf_release" // give Worker up
)

// command is one log entry. Fields not used by an op are empty.
type command struct {
	Op string `json:"op"`

	Tag     string `json:"tag,omitempty"`
	Count   uint64 `json:"count,omitempty"`
	Start   uint64 `json:"start,omitempty"`
	Step    uint64 `json:"step,omitempty"`
	MaxTags int    `json:"max_tags,omitempty"`

	Owner     string  `json:"owner,omitempty"`
	Worker    uint64  `json:"worker,omitempty"`
	Now       int64   `json:"now,omitempty"`        // leader's clock, unix ms
	ClientNow int64   `json:"client_now,omitempty"` // the requesting node's clock, unix ms
	TTL       int64   `json:"ttl,omitempty"`        // ms
	Until     int64   `json:"until,omitempty"`      // unix ms
	Layout    *Layout `json:"layout,omitempty"`
}

// reserveResult is the answer to opReserve and opCreate.
type reserveResult struct {
	Start, Count uint64 // the IDs [Start, Start+Count)
	Step         uint64 // the tag's own step
}

// workerGrant is the answer to the snowflake ops. It travels as JSON from
// the leader to a follower that asked for it.
type workerGrant struct {
	Worker        uint64 `json:"worker"`
	Expires       int64  `json:"expires"`
	ReservedUntil int64  `json:"reserved_until"`
	// Err and Code carry an FSM error across the wire (see fsmError).
	Err  string `json:"err,omitempty"`
	Code string `json:"code,omitempty"`
}

// fsmError is an error the FSM returns as Apply's result. Code survives a
// trip through JSON, so errors.Is works on a follower too.
type fsmError struct {
	Code string
	Msg  string
}

const (
	codeInvalid   = "invalid"
	codeExists    = "exists"
	codeExhausted = "exhausted"
	codeLeaseLost = "lease_lost"
	codeLayout    = "layout"
)

// errLeaseLost means the worker is no longer this owner's.
var errLeaseLost = errors.New("idserver: snowflake worker lease lost")

func (e *fsmError) Error() string { return "idserver: " + e.Msg }

func (e *fsmError) Is(target error) bool {
	switch e.Code {
	case codeInvalid, codeLayout:
		return target == ErrInvalid
	case codeExists:
		return target == ErrTagExists
	case codeExhausted:
		return target == ErrExhausted
	case codeLeaseLost:
		return target == errLeaseLost || target == ErrUnavailable
	}
	return false
}

func fsmErrorf(code, format string, args ...any) *fsmError {
	return &fsmError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Apply applies one committed command. It returns a reserveResult, a
// workerGrant or an *fsmError.
func (f *FSM) Apply(_ uint64, data []byte) any {
	var c command
	if err := json.Unmarshal(data, &c); err != nil {
		return fsmErrorf(codeInvalid, "undecodable command: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch c.Op {
	case opReserve:
		return f.st.reserve(c)
	case opCreate:
		return f.st.create(c)
	case opSFAcquire:
		return f.st.sfAcquire(c)
	case opSFReserve:
		return f.st.sfReserve(c)
	case opSFRelease:
		return f.st.sfRelease(c)
	default:
		return fsmErrorf(codeInvalid, "unknown command %q", c.Op)
	}
}

func (s *fsmState) reserve(c command) any {
	if c.Count == 0 {
		return fsmErrorf(codeInvalid, "reserve %q: count 0", c.Tag)
	}
	t, ok := s.Tags[c.Tag]
	if !ok {
		if len(s.Tags) >= c.MaxTags {
			return errTagLimit(c.Tag, c.MaxTags)
		}
		if c.Start < 1 || c.Start > MaxID || c.Step < 1 {
			return fsmErrorf(codeInvalid, "tag %q: bad defaults start %d step %d", c.Tag, c.Start, c.Step)
		}
		t = &tagRecord{Next: c.Start, Step: c.Step}
		s.Tags[c.Tag] = t
	}
	// IDs run up to MaxID inclusive: Next may reach MaxID+1.
	if c.Count > MaxID+1-t.Next {
		return fsmErrorf(codeExhausted, "tag %q: exhausted: %d IDs asked, %d left below %d", c.Tag, c.Count, MaxID+1-t.Next, uint64(MaxID))
	}
	r := reserveResult{Start: t.Next, Count: c.Count, Step: t.Step}
	t.Next += c.Count
	return r
}

// errTagLimit refuses a new tag in a cluster that holds maxTags.
func errTagLimit(tag string, maxTags int) *fsmError {
	return fsmErrorf(codeExhausted, "tag %q: the cluster already holds its maximum of %d tags", tag, maxTags)
}

func (s *fsmState) create(c command) any {
	if t, ok := s.Tags[c.Tag]; ok {
		return fsmErrorf(codeExists, "tag %q already exists (next ID %d, step %d)", c.Tag, t.Next, t.Step)
	}
	if len(s.Tags) >= c.MaxTags {
		return errTagLimit(c.Tag, c.MaxTags)
	}
	if c.Start < 1 || c.Start > MaxID || c.Step < 1 {
		return fsmErrorf(codeInvalid, "tag %q: start %d must be in [1, %d] and step %d at least 1", c.Tag, c.Start, uint64(MaxID), c.Step)
	}
	s.Tags[c.Tag] = &tagRecord{Next: c.Start, Step: c.Step}
	return reserveResult{Start: c.Start, Step: c.Step}
}

// checkCommand vets a snowflake command's owner and layout, and records
// the layout as the cluster's if it is the first.
func (s *fsmState) checkCommand(c command) *fsmError {
	if c.Owner == "" {
		return fsmErrorf(codeInvalid, "snowflake command without an owner")
	}
	return s.checkLayout(c.Layout)
}

func (s *fsmState) checkLayout(l *Layout) *fsmError {
	if l == nil {
		return fsmErrorf(codeInvalid, "snowflake command without a layout")
	}
	// Commands come from any node and, through the Internal service, from
	// anyone who reaches a gRPC port: an unchecked layout would become the
	// cluster's for good, and a bad WorkerBits panics or loops in every
	// node's Apply, again on every replay of the log.
	if err := l.Validate(); err != nil {
		return fsmErrorf(codeInvalid, "snowflake layout: %v", err)
	}
	if s.Snowflake.Layout == nil {
		cp := *l
		s.Snowflake.Layout = &cp
		return nil
	}
	if *s.Snowflake.Layout != *l {
		return fsmErrorf(codeLayout, "snowflake layout %v differs from the cluster's %v: every node must use the same epoch and bits", *l, *s.Snowflake.Layout)
	}
	return nil
}

// sfAcquire leases a worker to c.Owner. It prefers a free worker whose
// reservation is behind the owner's clock (so the owner can start at once
// without repeating any earlier holder's timestamp), its own previous
// worker first; failing that, the free worker with the lowest reservation,
// which the owner must wait out. A worker is free when unleased, lapsed, or
// already the owner's.
func (s *fsmState) sfAcquire(c command) any {
	if err := s.checkCommand(c); err != nil {
		return grantErr(err)
	}
	n := uint64(1) << c.Layout.WorkerBits
	free := func(w uint64) (*workerRecord, bool) {
		r := s.Snowflake.Workers[w]
		return r, r == nil || r.Owner == c.Owner || r.Expires <= c.Now
	}
	best, found := uint64(0), false
	var bestReserved int64
	consider := func(w uint64) {
		r, ok := free(w)
		if !ok {
			return
		}
		var reserved int64
		if r != nil {
			reserved = r.ReservedUntil
		}
		better := !found ||
			(reserved < c.ClientNow) && !(bestReserved < c.ClientNow) ||
			(bestReserved >= c.ClientNow && reserved < bestReserved)
		if better {
			best, bestReserved, found = w, reserved, true
		}
	}
	// The owner's own worker first, so a restart keeps its worker when it can.
	for _, w := range s.sortedWorkers() {
		if r := s.Snowflake.Workers[w]; r.Owner == c.Owner {
			consider(w)
		}
	}
	for w := range n {
		consider(w)
	}
	if !found {
		return grantErr(fsmErrorf(codeExhausted, "snowflake: all %d worker IDs are leased", n))
	}
	// One worker per owner: give up any other.
	for w, r := range s.Snowflake.Workers {
		if r.Owner == c.Owner && w != best {
			r.Expires = 0
			r.Owner = ""
		}
	}
	r := s.Snowflake.Workers[best]
	if r == nil {
		r = &workerRecord{}
		s.Snowflake.Workers[best] = r
	}
	r.Owner, r.Expires = c.Owner, c.Now+c.TTL
	return workerGrant{Worker: best, Expires: r.Expires, ReservedUntil: r.ReservedUntil}
}

func (s *fsmState) sortedWorkers() []uint64 {
	ws := make([]uint64, 0, len(s.Snowflake.Workers))
	for w := range s.Snowflake.Workers {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i] < ws[j] })
	return ws
}

// sfReserve renews the owner's lease and raises the worker's reservation.
// Only the worker's owner may: a node that lost its worker cannot extend
// what it may issue, which is what makes a worker change hands safely.
func (s *fsmState) sfReserve(c command) any {
	if err := s.checkCommand(c); err != nil {
		return grantErr(err)
	}
	r := s.Snowflake.Workers[c.Worker]
	if r == nil || r.Owner != c.Owner {
		return grantErr(fsmErrorf(codeLeaseLost, "snowflake: worker %d is not leased to %s", c.Worker, c.Owner))
	}
	r.Expires = c.Now + c.TTL
	r.ReservedUntil = max(r.ReservedUntil, c.Until)
	return workerGrant{Worker: c.Worker, Expires: r.Expires, ReservedUntil: r.ReservedUntil}
}

func (s *fsmState) sfRelease(c command) any {
	r := s.Snowflake.Workers[c.Worker]
	if r == nil || r.Owner != c.Owner {
		return grantErr(fsmErrorf(codeLeaseLost, "snowflake: worker %d is not leased to %s", c.Worker, c.Owner))
	}
	r.Expires = 0
	return workerGrant{Worker: c.Worker, ReservedUntil: r.ReservedUntil}
}

func grantErr(e *fsmError) workerGrant {
	return workerGrant{Err: e.Msg, Code: e.Code}
}

// err returns the grant's error, if any.
func (g workerGrant) err() error {
	if g.Code == "" && g.Err == "" {
		return nil
	}
	return &fsmError{Code: g.Code, Msg: g.Err}
}

// Snapshot serialises the whole state.
func (f *FSM) Snapshot() ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	b, err := json.Marshal(f.st)
	if err != nil {
		return nil, fmt.Errorf("idserver: snapshot: %w", err)
	}
	return b, nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(data []byte) error {
	st := newState()
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("idserver: restore snapshot: %w", err)
	}
	if st.Tags == nil {
		st.Tags = map[string]*tagRecord{}
	}
	if st.Snowflake.Workers == nil {
		st.Snowflake.Workers = map[uint64]*workerRecord{}
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	return nil
}

// tag returns a copy of a tag's record.
func (f *FSM) tag(name string) (tagRecord, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.st.Tags[name]
	if !ok {
		return tagRecord{}, false
	}
	return *t, true
}

// tagCount is the number of tags.
func (f *FSM) tagCount() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.st.Tags)
}

// worker returns a copy of a worker's record.
func (f *FSM) worker(w uint64) (workerRecord, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.st.Snowflake.Workers[w]
	if !ok {
		return workerRecord{}, false
	}
	return *r, true
}
