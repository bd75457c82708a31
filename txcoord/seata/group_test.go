package seata

import (
	"bufio"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seata/seata-go/pkg/protocol/branch"
	"github.com/seata/seata-go/pkg/protocol/message"
)

// rawClient speaks Seata frames to one node, as seata-go's getty session
// would: requests wait for the response with their ID; requests from the
// TC go to onRequest.
type rawClient struct {
	t   testing.TB
	c   net.Conn
	wmu sync.Mutex
	id  atomic.Int32

	mu      sync.Mutex
	waiting map[int32]chan Frame

	onRequest func(f Frame)
}

func dialRaw(t testing.TB, addr string, onRequest func(Frame)) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{t: t, c: c, waiting: map[int32]chan Frame{}, onRequest: onRequest}
	t.Cleanup(func() { c.Close() })
	go func() {
		r := bufio.NewReader(c)
		for {
			f, err := readFrame(r)
			if err != nil {
				return
			}
			if f.Type == message.GettyRequestTypeResponse || f.Type == message.GettyRequestTypeHeartbeatResponse {
				rc.mu.Lock()
				ch := rc.waiting[f.ID]
				delete(rc.waiting, f.ID)
				rc.mu.Unlock()
				if ch != nil {
					ch <- f
				}
				continue
			}
			if rc.onRequest != nil {
				rc.onRequest(f)
			}
		}
	}()
	return rc
}

func (rc *rawClient) send(f Frame) {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	b, err := appendFrame(nil, f)
	if err != nil {
		rc.t.Error(err)
		return
	}
	rc.c.Write(b)
}

func (rc *rawClient) call(typ message.GettyRequestType, body any) any {
	rc.t.Helper()
	id := rc.id.Add(1)
	ch := make(chan Frame, 1)
	rc.mu.Lock()
	rc.waiting[id] = ch
	rc.mu.Unlock()
	rc.send(Frame{Type: typ, ID: id, Body: body})
	select {
	case f := <-ch:
		return f.Body
	case <-time.After(20 * time.Second):
		rc.t.Fatalf("no answer to %T", body)
		return nil
	}
}

func (rc *rawClient) req(body any) any {
	rc.t.Helper()
	return rc.call(message.GettyRequestTypeRequestSync, body)
}

// fakeRM is an RM connected to every node, as a seata-go process is: it
// registers its resource on one connection and answers phase two on
// another, as seata-go's load balancer does.
type fakeRM struct {
	conns []*rawClient

	mu     sync.Mutex
	events []string // "commit", "rollback"
	ids    map[string]map[int64]bool
	drop   map[int64]int // branch -> requests to leave unanswered
	next   int
}

func newFakeRM(t testing.TB, addrs []string, resource string) *fakeRM {
	rm := &fakeRM{drop: map[int64]int{}, ids: map[string]map[int64]bool{}}
	for _, a := range addrs {
		rm.conns = append(rm.conns, dialRaw(t, a, rm.onRequest))
	}
	r := rm.conns[len(rm.conns)-1].req(message.RegisterRMRequest{
		AbstractIdentifyRequest: message.AbstractIdentifyRequest{Version: "1.5.2", ApplicationId: "app"},
		ResourceIds:             resource,
	})
	if resp, ok := r.(message.RegisterRMResponse); !ok || !resp.Identified {
		t.Fatalf("register RM: %#v", r)
	}
	return rm
}

func (rm *fakeRM) onRequest(f Frame) {
	var req message.AbstractBranchEndRequest
	var kind string
	switch m := f.Body.(type) {
	case message.BranchCommitRequest:
		req, kind = m.AbstractBranchEndRequest, "commit"
	case message.BranchRollbackRequest:
		req, kind = m.AbstractBranchEndRequest, "rollback"
	default:
		return
	}
	rm.mu.Lock()
	if rm.drop[req.BranchId] > 0 {
		rm.drop[req.BranchId]--
		rm.mu.Unlock()
		return // seata-go #1156: a failed branch gets no answer
	}
	rm.events = append(rm.events, kind)
	if rm.ids[kind] == nil {
		rm.ids[kind] = map[int64]bool{}
	}
	rm.ids[kind][req.BranchId] = true
	rm.next++
	out := rm.conns[rm.next%len(rm.conns)]
	rm.mu.Unlock()
	end := message.AbstractBranchEndResponse{
		AbstractTransactionResponse: message.AbstractTransactionResponse{
			AbstractResultMessage: message.AbstractResultMessage{ResultCode: message.ResultCodeSuccess}},
		Xid: req.Xid, BranchId: req.BranchId, BranchStatus: branch.BranchStatusPhasetwoCommitted,
	}
	var body any = message.BranchCommitResponse{AbstractBranchEndResponse: end}
	if kind == "rollback" {
		end.BranchStatus = branch.BranchStatusPhasetwoRollbacked
		body = message.BranchRollbackResponse{AbstractBranchEndResponse: end}
	}
	out.send(Frame{Type: message.GettyRequestTypeResponse, ID: f.ID, Body: body})
}

func (rm *fakeRM) distinct(kind string) int {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return len(rm.ids[kind])
}

func (rm *fakeRM) count(kind string) int {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	n := 0
	for _, e := range rm.events {
		if e == kind {
			n++
		}
	}
	return n
}

func testConfig() Config {
	c := DefaultConfig()
	c.BranchTimeout = 300 * time.Millisecond
	c.RetryBackoff = 50 * time.Millisecond
	c.MaxRetryBackoff = 200 * time.Millisecond
	c.ScanInterval = 100 * time.Millisecond
	c.DefaultGlobalTimeout = 300 * time.Millisecond
	return c
}

func begin(t *testing.T, tm *rawClient, timeout time.Duration) string {
	t.Helper()
	r, ok := tm.req(message.GlobalBeginRequest{Timeout: timeout, TransactionName: "t"}).(message.GlobalBeginResponse)
	if !ok || r.ResultCode != message.ResultCodeSuccess || r.Xid == "" {
		t.Fatalf("begin: %#v", r)
	}
	return r.Xid
}

func register(t *testing.T, c *rawClient, xid string, bt branch.BranchType, res, lock string) message.BranchRegisterResponse {
	t.Helper()
	r, ok := c.req(message.BranchRegisterRequest{Xid: xid, BranchType: bt, ResourceId: res, LockKey: lock,
		ApplicationData: []byte(`{"actionContext":{"a":1}}`)}).(message.BranchRegisterResponse)
	if !ok {
		t.Fatalf("register: %#v", r)
	}
	return r
}

// TestGroupPhaseTwo runs TCC commit and rollback through a 3-node group
// with requests spread over the nodes, an RM that answers on another
// connection than the one asked, and a first request left unanswered.
func TestGroupPhaseTwo(t *testing.T) {
	g := StartGroup(t, 3, testConfig())
	rm := newFakeRM(t, g.Addrs, "tcc-a")
	tms := []*rawClient{dialRaw(t, g.Addrs[0], nil), dialRaw(t, g.Addrs[1], nil), dialRaw(t, g.Addrs[2], nil)}

	// Heartbeat.
	if got := tms[0].call(message.GettyRequestTypeHeartbeatRequest, nil); got != nil {
		t.Fatalf("pong body %#v", got)
	}
	// RegisterTM is one-way in seata-go, yet it waits for the answer.
	if r, ok := tms[1].call(message.GettyRequestTypeRequestOneway, message.RegisterTMRequest{
		AbstractIdentifyRequest: message.AbstractIdentifyRequest{Version: "1.5.2", ApplicationId: "app"}}).(message.RegisterTMResponse); !ok || !r.Identified {
		t.Fatalf("register TM: %#v", r)
	}

	xid := begin(t, tms[0], time.Minute)
	b1 := register(t, tms[1], xid, branch.BranchTypeTCC, "tcc-a", "")
	b2 := register(t, tms[2], xid, branch.BranchTypeTCC, "tcc-a", "")
	if b1.ResultCode != message.ResultCodeSuccess || b2.BranchId <= b1.BranchId {
		t.Fatalf("branches %#v %#v", b1, b2)
	}
	rm.mu.Lock()
	rm.drop[b2.BranchId] = 1
	rm.mu.Unlock()
	start := time.Now()
	r := tms[2].req(message.GlobalCommitRequest{AbstractGlobalEndRequest: message.AbstractGlobalEndRequest{Xid: xid}}).(message.GlobalCommitResponse)
	if r.GlobalStatus != message.GlobalStatusCommitted {
		t.Fatalf("commit: %s %#v", StatusName(r.GlobalStatus), r)
	}
	t.Logf("commit with one retried branch took %v", time.Since(start))
	if rm.count("commit") != 2 {
		t.Fatalf("commits %v", rm.events)
	}
	// Idempotent commit, and status of an ended transaction.
	r = tms[0].req(message.GlobalCommitRequest{AbstractGlobalEndRequest: message.AbstractGlobalEndRequest{Xid: xid}}).(message.GlobalCommitResponse)
	if r.GlobalStatus != message.GlobalStatusFinished {
		t.Fatalf("commit again: %s", StatusName(r.GlobalStatus))
	}

	// Rollback, in reverse order.
	xid = begin(t, tms[1], time.Minute)
	register(t, rm.conns[0], xid, branch.BranchTypeTCC, "tcc-a", "")
	// Registered on a connection whose client does not answer phase two:
	// the TC asks there first, then every connection.
	register(t, tms[0], xid, branch.BranchTypeTCC, "tcc-a", "")
	rr := tms[1].req(message.GlobalRollbackRequest{AbstractGlobalEndRequest: message.AbstractGlobalEndRequest{Xid: xid}}).(message.GlobalRollbackResponse)
	if rr.GlobalStatus != message.GlobalStatusRollbacked {
		t.Fatalf("rollback: %s", StatusName(rr.GlobalStatus))
	}
	if rm.count("rollback") != 2 {
		t.Fatalf("rollbacks %v", rm.events)
	}

	// Timeout: a transaction left open is rolled back by the leader.
	xid = begin(t, tms[2], 200*time.Millisecond)
	register(t, tms[2], xid, branch.BranchTypeTCC, "tcc-a", "")
	deadline := time.Now().Add(10 * time.Second)
	for rm.count("rollback") != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("timed-out transaction not rolled back: %v", rm.events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFinished(t, tms[0], xid)
	// A GlobalBegin that names no timeout gets the default one: it too ends.
	xid = begin(t, tms[0], 0)
	register(t, tms[1], xid, branch.BranchTypeTCC, "tcc-a", "")
	for rm.count("rollback") != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("transaction begun without a timeout not rolled back: %v", rm.events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFinished(t, tms[0], xid)

	// AT locks across nodes.
	x1, x2 := begin(t, tms[0], time.Minute), begin(t, tms[1], time.Minute)
	if r := register(t, tms[0], x1, branch.BranchTypeAT, "jdbc:db", "t:1,2"); r.ResultCode != message.ResultCodeSuccess {
		t.Fatalf("lock: %#v", r)
	}
	if r := register(t, tms[2], x2, branch.BranchTypeAT, "jdbc:db", "t:2"); r.ResultCode != message.ResultCodeFailed || r.TransactionErrorCode == 0 {
		t.Fatalf("conflict: %#v", r)
	}
	q := tms[1].req(message.GlobalLockQueryRequest{BranchRegisterRequest: message.BranchRegisterRequest{
		Xid: x2, BranchType: branch.BranchTypeAT, ResourceId: "jdbc:db", LockKey: "t:2"}}).(message.GlobalLockQueryResponse)
	if q.Lockable {
		t.Fatal("locked row reported lockable")
	}
	// The AT-only commit answers Committed at once and frees the rows.
	r = tms[2].req(message.GlobalCommitRequest{AbstractGlobalEndRequest: message.AbstractGlobalEndRequest{Xid: x1}}).(message.GlobalCommitResponse)
	if r.GlobalStatus != message.GlobalStatusCommitted {
		t.Fatalf("AT commit: %s", StatusName(r.GlobalStatus))
	}
	if r := register(t, tms[2], x2, branch.BranchTypeAT, "jdbc:db", "t:2"); r.ResultCode != message.ResultCodeSuccess {
		t.Fatalf("lock after commit: %#v", r)
	}

	// The admin list: every node's replica shows the open transaction.
	deadline = time.Now().Add(5 * time.Second)
	for i := range g.Addrs {
		for {
			rec := httptest.NewRecorder()
			g.TC(i).ListHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if strings.Contains(rec.Body.String(), `"xid":"`+x2+`"`) && strings.Contains(rec.Body.String(), `"status":"Begin"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d lists %s", i, rec.Body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A bad frame closes that connection only.
	bad, err := net.Dial("tcp", g.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	bad.Write([]byte("GET / HTTP/1.1\r\n\r\n......"))
	bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bad.Read(make([]byte, 1)); err == nil {
		t.Fatal("bad frame answered")
	}
	begin(t, tms[0], time.Minute)
}

// TestGroupFailover kills the leader while a branch's answer is missing;
// the new leader finishes the commit.
func TestGroupFailover(t *testing.T) {
	g := StartGroup(t, 3, testConfig())
	_, li := g.Leader(t, 10*time.Second)
	var others []string
	for i, a := range g.Addrs {
		if i != li {
			others = append(others, a)
		}
	}
	rm := newFakeRM(t, g.Addrs, "tcc-a")
	tm := dialRaw(t, others[0], nil)
	xid := begin(t, tm, time.Minute)
	register(t, tm, xid, branch.BranchTypeTCC, "tcc-a", "")
	b2 := register(t, tm, xid, branch.BranchTypeTCC, "tcc-a", "")
	rm.mu.Lock()
	rm.drop[b2.BranchId] = 1000 // until the leader is gone
	rm.mu.Unlock()
	done := make(chan message.GlobalCommitResponse, 1)
	go func() {
		done <- tm.req(message.GlobalCommitRequest{AbstractGlobalEndRequest: message.AbstractGlobalEndRequest{Xid: xid}}).(message.GlobalCommitResponse)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for rm.count("commit") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("first branch not committed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.Kill(li)
	rm.mu.Lock()
	rm.drop[b2.BranchId] = 0
	rm.mu.Unlock()
	r := <-done
	if r.GlobalStatus != message.GlobalStatusCommitted {
		// The TM's wait may end first; the state must still get there.
		st := tm.req(message.GlobalStatusRequest{AbstractGlobalEndRequest: message.AbstractGlobalEndRequest{Xid: xid}}).(message.GlobalStatusResponse)
		t.Logf("commit answered %s, status now %s", StatusName(r.GlobalStatus), StatusName(st.GlobalStatus))
	}
	waitFinished(t, tm, xid)
	// The answer for the first branch may have gone to the killed node,
	// so the new leader may ask again (phase two is at least once; a TCC
	// RM dedupes, as Seata requires): every branch is committed, none is
	// rolled back.
	if rm.distinct("commit") != 2 || rm.count("rollback") != 0 {
		t.Fatalf("branches not all committed: %v", rm.events)
	}
	t.Logf("commit requests answered: %d for 2 branches", rm.count("commit"))

	// The killed node comes back from its data directory and catches up:
	// its replica lists a transaction opened while it was down.
	open := begin(t, tm, time.Minute)
	register(t, tm, open, branch.BranchTypeAT, "jdbc:db", "t:7")
	g.Restart(t, li)
	deadline = time.Now().Add(10 * time.Second)
	for {
		l := g.TC(li).List()
		if len(l) == 1 && l[0].XID == open && len(l[0].Branches) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted node lists %+v", l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFinished(t *testing.T, c *rawClient, xid string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := c.req(message.GlobalStatusRequest{AbstractGlobalEndRequest: message.AbstractGlobalEndRequest{Xid: xid}}).(message.GlobalStatusResponse)
		if st.GlobalStatus == message.GlobalStatusFinished {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not finished: %s", xid, StatusName(st.GlobalStatus))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBranchReport: a branch its RM reported failed in phase one is not
// asked to commit; the other is.
func TestBranchReport(t *testing.T) {
	s := StartLocal(t, testConfig())
	rm := newFakeRM(t, []string{s.Addr()}, "tcc-a")
	tm := dialRaw(t, s.Addr(), nil)
	xid := begin(t, tm, time.Minute)
	b1 := register(t, rm.conns[0], xid, branch.BranchTypeTCC, "tcc-a", "")
	b2 := register(t, rm.conns[0], xid, branch.BranchTypeTCC, "tcc-a", "")
	rep, ok := rm.conns[0].req(message.BranchReportRequest{Xid: xid, BranchId: b1.BranchId, ResourceId: "tcc-a",
		Status: branch.BranchStatusPhaseoneFailed, BranchType: branch.BranchTypeTCC}).(message.BranchReportResponse)
	if !ok || rep.ResultCode != message.ResultCodeSuccess {
		t.Fatalf("report: %#v", rep)
	}
	bad, _ := rm.conns[0].req(message.BranchReportRequest{Xid: xid, BranchId: 12345, ResourceId: "tcc-a",
		Status: branch.BranchStatusPhaseoneDone}).(message.BranchReportResponse)
	if bad.ResultCode != message.ResultCodeFailed {
		t.Fatalf("report of an unknown branch: %#v", bad)
	}
	r := tm.req(message.GlobalCommitRequest{AbstractGlobalEndRequest: message.AbstractGlobalEndRequest{Xid: xid}}).(message.GlobalCommitResponse)
	if r.GlobalStatus != message.GlobalStatusCommitted {
		t.Fatalf("commit: %s", StatusName(r.GlobalStatus))
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if len(rm.ids["commit"]) != 1 || !rm.ids["commit"][b2.BranchId] {
		t.Fatalf("committed %v, want only branch %d", rm.ids["commit"], b2.BranchId)
	}
}
