package seata

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/seata/seata-go/pkg/protocol/branch"
	"github.com/seata/seata-go/pkg/protocol/message"
	serr "github.com/seata/seata-go/pkg/util/errors"
)

// The global-transaction rules, as a deterministic state machine: every
// change is a command applied in Raft order, and the result of a command
// depends only on the state and the command (times travel inside commands).
// The rules follow Seata's server (io.seata.server.coordinator.DefaultCore):
// a commit of a transaction in Begin releases its row locks and becomes
// AsyncCommitting when every branch is AT (the TM is told Committed at once),
// Committing otherwise; a rollback becomes Rollbacking and keeps the locks
// until every branch is rolled back; a transaction past its timeout becomes
// TimeoutRollbacking; commit and rollback of a transaction already past
// Begin answer its status (the TM retries them); an unknown XID is Finished.

// Op names a command.
type Op string

const (
	OpBegin     Op = "begin"
	OpRegister  Op = "register"
	OpReport    Op = "report"
	OpCommit    Op = "commit"
	OpRollback  Op = "rollback"
	OpTimeout   Op = "timeout"
	OpStatus    Op = "status"
	OpLockQuery Op = "lockq"
	OpBranchEnd Op = "branchend" // phase-two answer of one branch
	OpRetrying  Op = "retrying"  // phase two failed this round; retried later
	OpFinish    Op = "finish"    // phase two done: final status, locks released, removed
	OpGlobalRep Op = "greport"
)

// Command is one change to the coordinator's state, the payload of a Raft
// entry after the module byte.
type Command struct {
	Op        Op                   `json:"op"`
	XID       string               `json:"xid,omitempty"`
	Name      string               `json:"name,omitempty"`
	TimeoutMs int64                `json:"tmo,omitempty"`
	NowMs     int64                `json:"now,omitempty"` // proposer's wall clock
	Addr      string               `json:"addr,omitempty"`
	BranchID  int64                `json:"bid,omitempty"`
	Type      branch.BranchType    `json:"bt,omitempty"`
	Resource  string               `json:"res,omitempty"`
	LockKey   string               `json:"lk,omitempty"`
	AppData   []byte               `json:"ad,omitempty"`
	Branch    branch.BranchStatus  `json:"bs,omitempty"`
	Status    message.GlobalStatus `json:"gs,omitempty"`
	Client    string               `json:"cl,omitempty"` // see Branch.Client
}

// Result is what a command answers.
type Result struct {
	XID      string               `json:"xid,omitempty"`
	BranchID int64                `json:"bid,omitempty"`
	Status   message.GlobalStatus `json:"gs,omitempty"`
	Lockable bool                 `json:"ok,omitempty"`
	// Code and Msg describe a refusal; Code is seata-go's numbering (which
	// is shifted against Java's from NotRaftLeader on), since the clients
	// this TC serves are seata-go's.
	Code serr.TransactionErrorCode `json:"code,omitempty"`
	Msg  string                    `json:"msg,omitempty"`
}

// Refused reports whether the command was refused.
func (r Result) Refused() bool { return r.Msg != "" }

// Global is one global transaction.
type Global struct {
	XID       string               `json:"xid"`
	TxID      int64                `json:"txid"`
	Name      string               `json:"name"`
	Status    message.GlobalStatus `json:"status"`
	TimeoutMs int64                `json:"timeoutMs"`
	BeginMs   int64                `json:"beginMs"`
	Branches  []*Branch            `json:"branches"`
}

// Branch is one branch of a global transaction.
type Branch struct {
	ID       int64               `json:"id"`
	Type     branch.BranchType   `json:"type"`
	Resource string              `json:"resource"`
	LockKey  string              `json:"lockKey,omitempty"`
	AppData  []byte              `json:"appData,omitempty"`
	Status   branch.BranchStatus `json:"status"`
	// Client is the connection the branch was registered on, as "TC
	// address|client address": the RM that ran phase one, which phase two
	// goes back to when the leader holds that connection.
	Client string `json:"client,omitempty"`
}

// lockOwner holds one row lock.
type lockOwner struct {
	XID      string `json:"x"`
	BranchID int64  `json:"b"`
}

// State is the coordinator's replicated state: open global transactions,
// their branches, and the AT row locks. Not safe for concurrent use; the
// Module serialises access.
type State struct {
	Globals map[string]*Global   `json:"globals"`
	Locks   map[string]lockOwner `json:"locks"`
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Globals: map[string]*Global{}, Locks: map[string]lockOwner{}}
}

// ErrBadCommand is a command that cannot be decoded; it is refused the
// same way on every node.
var ErrBadCommand = errors.New("seata: bad command")

// Apply applies one command at Raft index idx. Indexes are unique and grow,
// so they double as transaction and branch IDs.
func (s *State) Apply(idx uint64, c Command) Result {
	switch c.Op {
	case OpBegin:
		return s.begin(idx, c)
	case OpRegister:
		return s.register(idx, c)
	case OpReport:
		return s.report(c)
	case OpCommit:
		return s.commit(c)
	case OpRollback:
		return s.rollback(c, message.GlobalStatusRollbacking)
	case OpTimeout:
		g := s.Globals[c.XID]
		if g == nil || g.Status != message.GlobalStatusBegin || c.NowMs < g.BeginMs+g.TimeoutMs {
			return s.status(c.XID)
		}
		return s.rollback(c, message.GlobalStatusTimeoutRollbacking)
	case OpStatus:
		return s.status(c.XID)
	case OpLockQuery:
		return Result{Lockable: s.lockable(c.XID, c.Resource, c.LockKey)}
	case OpBranchEnd:
		return s.branchEnd(c)
	case OpRetrying:
		g := s.Globals[c.XID]
		if g == nil {
			return s.status(c.XID)
		}
		if next, ok := retrying(g.Status); ok && c.Status == g.Status {
			g.Status = next
		}
		return Result{Status: g.Status}
	case OpFinish:
		return s.finish(c)
	case OpGlobalRep:
		return s.globalReport(c)
	}
	return Result{Code: serr.TransactionErrorCodeUnknown, Msg: fmt.Sprintf("unknown op %q", c.Op)}
}

func (s *State) status(xid string) Result {
	if g := s.Globals[xid]; g != nil {
		return Result{XID: xid, Status: g.Status}
	}
	return Result{XID: xid, Status: message.GlobalStatusFinished}
}

func (s *State) begin(idx uint64, c Command) Result {
	xid := fmt.Sprintf("%s:%d", c.Addr, idx)
	s.Globals[xid] = &Global{
		XID: xid, TxID: int64(idx), Name: c.Name, Status: message.GlobalStatusBegin,
		TimeoutMs: c.TimeoutMs, BeginMs: c.NowMs,
	}
	return Result{XID: xid, Status: message.GlobalStatusBegin}
}

func notActive(xid string, g *Global) Result {
	if g == nil {
		return Result{Code: serr.TransactionErrorCodeGlobalTransactionNotExist,
			Msg: fmt.Sprintf("global transaction %s does not exist", xid)}
	}
	return Result{Code: serr.TransactionErrorCodeGlobalTransactionStatusInvalid,
		Msg: fmt.Sprintf("global transaction %s is %s, not Begin", xid, StatusName(g.Status))}
}

func (s *State) register(idx uint64, c Command) Result {
	g := s.Globals[c.XID]
	if g == nil || g.Status != message.GlobalStatusBegin {
		return notActive(c.XID, g)
	}
	id := int64(idx)
	if c.Type == branch.BranchTypeAT && c.LockKey != "" {
		keys, err := rowKeys(c.Resource, c.LockKey)
		if err != nil {
			return Result{Code: serr.TransactionErrorCodeBranchRegisterFailed, Msg: err.Error()}
		}
		for _, k := range keys {
			if o, ok := s.Locks[k]; ok && o.XID != c.XID {
				return Result{Code: serr.TransactionErrorCodeLockKeyConflict,
					Msg: fmt.Sprintf("global lock conflict on %s: held by %s", k, o.XID)}
			}
		}
		for _, k := range keys {
			if _, ok := s.Locks[k]; !ok {
				s.Locks[k] = lockOwner{XID: c.XID, BranchID: id}
			}
		}
	}
	g.Branches = append(g.Branches, &Branch{
		ID: id, Type: c.Type, Resource: c.Resource, LockKey: c.LockKey,
		AppData: c.AppData, Status: branch.BranchStatusRegistered, Client: c.Client,
	})
	return Result{XID: c.XID, BranchID: id}
}

func (g *Global) branch(id int64) *Branch {
	for _, b := range g.Branches {
		if b.ID == id {
			return b
		}
	}
	return nil
}

func (s *State) report(c Command) Result {
	g := s.Globals[c.XID]
	if g == nil {
		return notActive(c.XID, g)
	}
	b := g.branch(c.BranchID)
	if b == nil {
		return Result{Code: serr.TransactionErrorCodeBranchTransactionNotExist,
			Msg: fmt.Sprintf("branch %d of %s does not exist", c.BranchID, c.XID)}
	}
	b.Status = c.Branch
	if len(c.AppData) > 0 {
		b.AppData = c.AppData
	}
	return Result{XID: c.XID}
}

func (s *State) commit(c Command) Result {
	g := s.Globals[c.XID]
	if g == nil {
		return s.status(c.XID)
	}
	if g.Status != message.GlobalStatusBegin {
		return Result{XID: c.XID, Status: g.Status}
	}
	// Seata releases the row locks at commit: an AT branch's data is
	// already committed locally, phase two only deletes its undo log.
	s.releaseLocks(g.XID)
	switch {
	case len(g.Branches) == 0:
		delete(s.Globals, g.XID)
		return Result{XID: c.XID, Status: message.GlobalStatusCommitted}
	case g.atOnly():
		g.Status = message.GlobalStatusAsyncCommitting
	default:
		g.Status = message.GlobalStatusCommitting
	}
	return Result{XID: c.XID, Status: g.Status}
}

func (g *Global) atOnly() bool {
	for _, b := range g.Branches {
		if b.Type != branch.BranchTypeAT {
			return false
		}
	}
	return true
}

func (s *State) rollback(c Command, to message.GlobalStatus) Result {
	g := s.Globals[c.XID]
	if g == nil {
		return s.status(c.XID)
	}
	if g.Status != message.GlobalStatusBegin {
		return Result{XID: c.XID, Status: g.Status}
	}
	if len(g.Branches) == 0 {
		delete(s.Globals, g.XID)
		if to == message.GlobalStatusTimeoutRollbacking {
			return Result{XID: c.XID, Status: message.GlobalStatusTimeoutRollbacked}
		}
		return Result{XID: c.XID, Status: message.GlobalStatusRollbacked}
	}
	g.Status = to
	return Result{XID: c.XID, Status: g.Status}
}

func (s *State) globalReport(c Command) Result {
	g := s.Globals[c.XID]
	if g == nil {
		return s.status(c.XID)
	}
	switch c.Status {
	case message.GlobalStatusCommitted, message.GlobalStatusRollbacked,
		message.GlobalStatusCommitFailed, message.GlobalStatusRollbackFailed,
		message.GlobalStatusTimeoutRollbacked, message.GlobalStatusTimeoutRollbackFailed:
		// A Saga TM reports the end of a transaction it drove itself.
		s.releaseLocks(g.XID)
		delete(s.Globals, g.XID)
		return Result{XID: c.XID, Status: c.Status}
	}
	return Result{XID: c.XID, Status: g.Status}
}

// branchEnd records an RM's phase-two answer. The answer that finishes the
// last branch ends the transaction in the same entry (no separate finish
// round trip): its final status, locks released, removed.
func (s *State) branchEnd(c Command) Result {
	g := s.Globals[c.XID]
	if g == nil {
		return s.status(c.XID)
	}
	b := g.branch(c.BranchID)
	if b == nil || !inPhaseTwo(g.Status) {
		return Result{XID: c.XID, Status: g.Status}
	}
	b.Status = c.Branch
	commit := committing(g.Status)
	for _, b := range g.Branches {
		if !branchDone(b.Status, commit) {
			return Result{XID: c.XID, Status: g.Status}
		}
	}
	end := endStatus(g.Status, true)
	s.releaseLocks(g.XID)
	delete(s.Globals, g.XID)
	return Result{XID: c.XID, Status: end}
}

func (s *State) finish(c Command) Result {
	g := s.Globals[c.XID]
	if g == nil {
		return s.status(c.XID)
	}
	if !inPhaseTwo(g.Status) || !final(c.Status) {
		return Result{XID: c.XID, Status: g.Status}
	}
	s.releaseLocks(g.XID)
	delete(s.Globals, g.XID)
	return Result{XID: c.XID, Status: c.Status}
}

func (s *State) releaseLocks(xid string) {
	g := s.Globals[xid]
	if g == nil {
		return
	}
	for _, b := range g.Branches {
		if b.Type != branch.BranchTypeAT || b.LockKey == "" {
			continue
		}
		keys, _ := rowKeys(b.Resource, b.LockKey)
		for _, k := range keys {
			if o, ok := s.Locks[k]; ok && o.XID == xid {
				delete(s.Locks, k)
			}
		}
	}
}

func (s *State) lockable(xid, resource, lockKey string) bool {
	keys, err := rowKeys(resource, lockKey)
	if err != nil {
		return false
	}
	for _, k := range keys {
		if o, ok := s.Locks[k]; ok && o.XID != xid {
			return false
		}
	}
	return true
}

// rowKeys splits an AT lock key "table:pk1,pk2;table2:pk3" into one key per
// row, prefixed by the resource (the data source), as Seata's lock store
// keys them.
func rowKeys(resource, lockKey string) ([]string, error) {
	var keys []string
	for _, part := range strings.Split(lockKey, ";") {
		if part == "" {
			continue
		}
		table, pks, ok := strings.Cut(part, ":")
		if !ok || table == "" || pks == "" {
			return nil, fmt.Errorf("bad lock key %q, want table:pk1,pk2;table2:pk3", part)
		}
		for _, pk := range strings.Split(pks, ",") {
			if pk == "" {
				return nil, fmt.Errorf("bad lock key %q: empty primary key", part)
			}
			keys = append(keys, resource+"^^^"+table+"^^^"+pk)
		}
	}
	return keys, nil
}

// inPhaseTwo reports whether the TC is finishing the transaction's branches.
func inPhaseTwo(s message.GlobalStatus) bool {
	switch s {
	case message.GlobalStatusCommitting, message.GlobalStatusCommitRetrying,
		message.GlobalStatusAsyncCommitting,
		message.GlobalStatusRollbacking, message.GlobalStatusRollbackRetrying,
		message.GlobalStatusTimeoutRollbacking, message.GlobalStatusTimeoutRollbackRetrying:
		return true
	}
	return false
}

// committing reports whether phase two commits (true) or rolls back.
func committing(s message.GlobalStatus) bool {
	switch s {
	case message.GlobalStatusCommitting, message.GlobalStatusCommitRetrying,
		message.GlobalStatusAsyncCommitting:
		return true
	}
	return false
}

func retrying(s message.GlobalStatus) (message.GlobalStatus, bool) {
	switch s {
	case message.GlobalStatusCommitting:
		return message.GlobalStatusCommitRetrying, true
	case message.GlobalStatusRollbacking:
		return message.GlobalStatusRollbackRetrying, true
	case message.GlobalStatusTimeoutRollbacking:
		return message.GlobalStatusTimeoutRollbackRetrying, true
	}
	return s, false
}

func final(s message.GlobalStatus) bool {
	switch s {
	case message.GlobalStatusCommitted, message.GlobalStatusCommitFailed,
		message.GlobalStatusRollbacked, message.GlobalStatusRollbackFailed,
		message.GlobalStatusTimeoutRollbacked, message.GlobalStatusTimeoutRollbackFailed,
		message.GlobalStatusFinished:
		return true
	}
	return false
}

// endStatus is the final status of a phase two that succeeded (ok) or
// failed for good.
func endStatus(s message.GlobalStatus, ok bool) message.GlobalStatus {
	switch s {
	case message.GlobalStatusCommitting, message.GlobalStatusCommitRetrying, message.GlobalStatusAsyncCommitting:
		if ok {
			return message.GlobalStatusCommitted
		}
		return message.GlobalStatusCommitFailed
	case message.GlobalStatusTimeoutRollbacking, message.GlobalStatusTimeoutRollbackRetrying:
		if ok {
			return message.GlobalStatusTimeoutRollbacked
		}
		return message.GlobalStatusTimeoutRollbackFailed
	}
	if ok {
		return message.GlobalStatusRollbacked
	}
	return message.GlobalStatusRollbackFailed
}

var statusNames = map[message.GlobalStatus]string{
	message.GlobalStatusUnKnown:                 "UnKnown",
	message.GlobalStatusBegin:                   "Begin",
	message.GlobalStatusCommitting:              "Committing",
	message.GlobalStatusCommitRetrying:          "CommitRetrying",
	message.GlobalStatusRollbacking:             "Rollbacking",
	message.GlobalStatusRollbackRetrying:        "RollbackRetrying",
	message.GlobalStatusTimeoutRollbacking:      "TimeoutRollbacking",
	message.GlobalStatusTimeoutRollbackRetrying: "TimeoutRollbackRetrying",
	message.GlobalStatusAsyncCommitting:         "AsyncCommitting",
	message.GlobalStatusCommitted:               "Committed",
	message.GlobalStatusCommitFailed:            "CommitFailed",
	message.GlobalStatusRollbacked:              "Rollbacked",
	message.GlobalStatusRollbackFailed:          "RollbackFailed",
	message.GlobalStatusTimeoutRollbacked:       "TimeoutRollbacked",
	message.GlobalStatusTimeoutRollbackFailed:   "TimeoutRollbackFailed",
	message.GlobalStatusFinished:                "Finished",
}

// StatusName is Seata's name of a global status.
func StatusName(s message.GlobalStatus) string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Status(%d)", s)
}

// list returns copies of the open transactions, oldest first.
func (s *State) list() []Global {
	out := make([]Global, 0, len(s.Globals))
	for _, g := range s.Globals {
		c := *g
		c.Branches = make([]*Branch, len(g.Branches))
		for i, b := range g.Branches {
			bc := *b
			c.Branches[i] = &bc
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TxID < out[j].TxID })
	return out
}

func (s *State) marshal() ([]byte, error) { return json.Marshal(s) }

func unmarshalState(data []byte) (*State, error) {
	s := NewState()
	if len(data) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("seata: restore snapshot: %w", err)
	}
	if s.Globals == nil {
		s.Globals = map[string]*Global{}
	}
	if s.Locks == nil {
		s.Locks = map[string]lockOwner{}
	}
	return s, nil
}

func marshalCommand(c Command) ([]byte, error) { return json.Marshal(c) }
