package seata

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/seata/seata-go/pkg/protocol/branch"
	"github.com/seata/seata-go/pkg/protocol/message"
	serr "github.com/seata/seata-go/pkg/util/errors"
)

type stateRun struct {
	t   *testing.T
	s   *State
	idx uint64
}

func (r *stateRun) do(c Command) Result {
	r.idx++
	return r.s.Apply(r.idx, c)
}

func (r *stateRun) begin() string {
	res := r.do(Command{Op: OpBegin, Addr: "127.0.0.1:8091", TimeoutMs: 60000, NowMs: 1000})
	if res.Refused() || res.XID == "" {
		r.t.Fatalf("begin: %+v", res)
	}
	return res.XID
}

func (r *stateRun) reg(xid string, bt branch.BranchType, lock string) Result {
	return r.do(Command{Op: OpRegister, XID: xid, Type: bt, Resource: "db1", LockKey: lock})
}

func TestStateCommitTCCInOrder(t *testing.T) {
	r := &stateRun{t: t, s: NewState()}
	x := r.begin()
	b1 := r.reg(x, branch.BranchTypeTCC, "")
	b2 := r.reg(x, branch.BranchTypeTCC, "")
	if b1.BranchID >= b2.BranchID {
		t.Fatalf("branch ids %d %d", b1.BranchID, b2.BranchID)
	}
	if got := r.do(Command{Op: OpCommit, XID: x}).Status; got != message.GlobalStatusCommitting {
		t.Fatalf("commit: %s", StatusName(got))
	}
	// Idempotent: the TM retries.
	if got := r.do(Command{Op: OpCommit, XID: x}).Status; got != message.GlobalStatusCommitting {
		t.Fatalf("commit again: %s", StatusName(got))
	}
	if got := r.do(Command{Op: OpRollback, XID: x}).Status; got != message.GlobalStatusCommitting {
		t.Fatalf("rollback after commit: %s", StatusName(got))
	}
	// A branch registered after commit is refused.
	if res := r.reg(x, branch.BranchTypeTCC, ""); res.Code != serr.TransactionErrorCodeGlobalTransactionStatusInvalid {
		t.Fatalf("late register: %+v", res)
	}
	r.do(Command{Op: OpBranchEnd, XID: x, BranchID: b1.BranchID, Branch: branch.BranchStatusPhasetwoCommitted})
	g := r.s.Globals[x]
	if g.Branches[0].Status != branch.BranchStatusPhasetwoCommitted || g.Branches[1].Status != branch.BranchStatusRegistered {
		t.Fatalf("branches %+v %+v", g.Branches[0], g.Branches[1])
	}
	if got := r.do(Command{Op: OpFinish, XID: x, Status: message.GlobalStatusCommitted}).Status; got != message.GlobalStatusCommitted {
		t.Fatalf("finish: %s", StatusName(got))
	}
	if got := r.do(Command{Op: OpStatus, XID: x}).Status; got != message.GlobalStatusFinished {
		t.Fatalf("status of a finished xid: %s", StatusName(got))
	}
	if got := r.do(Command{Op: OpCommit, XID: "127.0.0.1:8091:999"}).Status; got != message.GlobalStatusFinished {
		t.Fatalf("commit of an unknown xid: %s", StatusName(got))
	}
}

func TestStateATLocks(t *testing.T) {
	r := &stateRun{t: t, s: NewState()}
	x1, x2 := r.begin(), r.begin()
	if res := r.reg(x1, branch.BranchTypeAT, "t:1,2;u:9"); res.Refused() {
		t.Fatal(res)
	}
	// The same transaction may lock its rows again.
	if res := r.reg(x1, branch.BranchTypeAT, "t:2"); res.Refused() {
		t.Fatal(res)
	}
	if res := r.reg(x2, branch.BranchTypeAT, "t:3,2"); res.Code != serr.TransactionErrorCodeLockKeyConflict {
		t.Fatalf("conflict: %+v", res)
	}
	if len(r.s.Locks) != 3 {
		t.Fatalf("a refused registration took locks: %v", r.s.Locks)
	}
	if res := r.do(Command{Op: OpLockQuery, XID: x2, Resource: "db1", LockKey: "t:1"}); res.Lockable {
		t.Fatal("t:1 lockable by x2")
	}
	if res := r.do(Command{Op: OpLockQuery, XID: x2, Resource: "db2", LockKey: "t:1"}); !res.Lockable {
		t.Fatal("another resource's t:1 is not lockable")
	}
	if res := r.reg(x2, branch.BranchTypeAT, "t:"); res.Code != serr.TransactionErrorCodeBranchRegisterFailed {
		t.Fatalf("bad lock key: %+v", res)
	}
	// AT-only commit: locks go at once, phase two is asynchronous.
	if got := r.do(Command{Op: OpCommit, XID: x1}).Status; got != message.GlobalStatusAsyncCommitting {
		t.Fatalf("commit: %s", StatusName(got))
	}
	if len(r.s.Locks) != 0 {
		t.Fatalf("locks after commit: %v", r.s.Locks)
	}
	if res := r.reg(x2, branch.BranchTypeAT, "t:2"); res.Refused() {
		t.Fatal(res)
	}
	// Rollback keeps the locks until phase two ends.
	r.do(Command{Op: OpRollback, XID: x2})
	if len(r.s.Locks) != 1 {
		t.Fatalf("locks during rollback: %v", r.s.Locks)
	}
	r.do(Command{Op: OpFinish, XID: x2, Status: message.GlobalStatusRollbacked})
	if len(r.s.Locks) != 0 || len(r.s.Globals) != 1 {
		t.Fatalf("after rollback: %v %v", r.s.Locks, r.s.Globals)
	}
}

func TestStateTimeout(t *testing.T) {
	r := &stateRun{t: t, s: NewState()}
	x := r.begin() // at 1000 ms, 60 s timeout
	r.reg(x, branch.BranchTypeTCC, "")
	if got := r.do(Command{Op: OpTimeout, XID: x, NowMs: 30000}).Status; got != message.GlobalStatusBegin {
		t.Fatalf("early timeout: %s", StatusName(got))
	}
	if got := r.do(Command{Op: OpTimeout, XID: x, NowMs: 61000}).Status; got != message.GlobalStatusTimeoutRollbacking {
		t.Fatalf("timeout: %s", StatusName(got))
	}
	if got := r.do(Command{Op: OpCommit, XID: x}).Status; got != message.GlobalStatusTimeoutRollbacking {
		t.Fatalf("commit after timeout: %s", StatusName(got))
	}
	if got := r.do(Command{Op: OpRetrying, XID: x, Status: message.GlobalStatusTimeoutRollbacking}).Status; got != message.GlobalStatusTimeoutRollbackRetrying {
		t.Fatalf("retrying: %s", StatusName(got))
	}
	if got := r.do(Command{Op: OpFinish, XID: x, Status: endStatus(message.GlobalStatusTimeoutRollbackRetrying, true)}).Status; got != message.GlobalStatusTimeoutRollbacked {
		t.Fatalf("finish: %s", StatusName(got))
	}
	// Empty transactions end at once.
	y := r.begin()
	if got := r.do(Command{Op: OpCommit, XID: y}).Status; got != message.GlobalStatusCommitted {
		t.Fatalf("empty commit: %s", StatusName(got))
	}
}

func TestModuleSnapshotRestore(t *testing.T) {
	m := NewModule(NewMetrics(nil))
	p := &LocalProposer{Mod: m}
	cmd := func(c Command) Result {
		b, _ := marshalCommand(c)
		out, err := p.Propose(t.Context(), ModuleID, b)
		if err != nil {
			t.Fatal(err)
		}
		return decodeResult(t, out)
	}
	x := cmd(Command{Op: OpBegin, Addr: "a:1", TimeoutMs: 1000}).XID
	cmd(Command{Op: OpRegister, XID: x, Type: branch.BranchTypeAT, Resource: "r", LockKey: "t:1"})
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m2 := NewModule(nil)
	if err := m2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	l := m2.List()
	if len(l) != 1 || l[0].XID != x || len(l[0].Branches) != 1 || len(m2.st.Locks) != 1 {
		t.Fatalf("restored %+v locks %v", l, m2.st.Locks)
	}
	if _, err := m2.Apply(9, []byte("{")); err == nil {
		t.Fatal("a bad command was applied")
	}
	if err := m2.Restore([]byte("nope")); err == nil {
		t.Fatal("a bad snapshot was restored")
	}
}

func TestModuleMetrics(t *testing.T) {
	met := NewMetrics(prometheus.NewRegistry())
	m := NewModule(met)
	p := &LocalProposer{Mod: m}
	do := func(c Command) Result {
		b, _ := marshalCommand(c)
		out, err := p.Propose(t.Context(), ModuleID, b)
		if err != nil {
			t.Fatal(err)
		}
		return decodeResult(t, out)
	}
	x := do(Command{Op: OpBegin, Addr: "a:1"}).XID
	y := do(Command{Op: OpBegin, Addr: "a:1"}).XID
	do(Command{Op: OpRegister, XID: y, Type: branch.BranchTypeTCC, Resource: "r"})
	do(Command{Op: OpCommit, XID: x})
	do(Command{Op: OpRollback, XID: y})
	if got := testutil.ToFloat64(met.open.WithLabelValues("Rollbacking")); got != 1 {
		t.Fatalf("open Rollbacking %v", got)
	}
	if got := testutil.ToFloat64(met.open.WithLabelValues("Begin")); got != 0 {
		t.Fatalf("open Begin %v", got)
	}
	if got := testutil.ToFloat64(met.ended.WithLabelValues("Committed")); got != 1 {
		t.Fatalf("ended Committed %v", got)
	}
	do(Command{Op: OpFinish, XID: y, Status: message.GlobalStatusRollbacked})
	if got := testutil.ToFloat64(met.ended.WithLabelValues("Rollbacked")); got != 1 {
		t.Fatalf("ended Rollbacked %v", got)
	}
	if got := testutil.ToFloat64(met.open.WithLabelValues("Rollbacking")); got != 0 {
		t.Fatalf("open Rollbacking after finish %v", got)
	}
}

func TestStateLastBranchEnds(t *testing.T) {
	r := &stateRun{t: t, s: NewState()}
	x := r.begin()
	b1 := r.reg(x, branch.BranchTypeAT, "t:1")
	b2 := r.reg(x, branch.BranchTypeTCC, "")
	r.do(Command{Op: OpRollback, XID: x})
	// Reverse order: b2 first. The locks stay until the end.
	if got := r.do(Command{Op: OpBranchEnd, XID: x, BranchID: b2.BranchID, Branch: branch.BranchStatusPhasetwoRollbacked}).Status; got != message.GlobalStatusRollbacking {
		t.Fatalf("after one branch: %s", StatusName(got))
	}
	if len(r.s.Locks) != 1 {
		t.Fatalf("locks %v", r.s.Locks)
	}
	if got := r.do(Command{Op: OpBranchEnd, XID: x, BranchID: b1.BranchID, Branch: branch.BranchStatusPhasetwoRollbacked}).Status; got != message.GlobalStatusRollbacked {
		t.Fatalf("after the last branch: %s", StatusName(got))
	}
	if len(r.s.Locks) != 0 || len(r.s.Globals) != 0 {
		t.Fatalf("left %v %v", r.s.Locks, r.s.Globals)
	}
	// A late answer, e.g. a retry's, changes nothing.
	if got := r.do(Command{Op: OpBranchEnd, XID: x, BranchID: b1.BranchID, Branch: branch.BranchStatusPhasetwoRollbacked}).Status; got != message.GlobalStatusFinished {
		t.Fatalf("late answer: %s", StatusName(got))
	}
}
