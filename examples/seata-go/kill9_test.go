package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tcNode is one `strata txcoord` process.
type tcNode struct {
	*proc
	seata, metrics string
}

func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// startStrataGroup starts a 3-node coordinator group as processes of
// Strata's binary, each node serving Seata RPC.
func startStrataGroup(t *testing.T) []*tcNode {
	t.Helper()
	a := freeAddrs(t, 12)
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("tx%d=%s", i, a[i*4]))
	}
	var nodes []*tcNode
	for i := range 3 {
		raft, grpc, seata, metrics := a[i*4], a[i*4+1], a[i*4+2], a[i*4+3]
		p := startBin(t, strataBin, "txcoord", "--id", fmt.Sprintf("tx%d", i), "--data", t.TempDir(),
			"--raft-addr", raft, "--grpc-addr", grpc, "--seata-addr", seata, "--http-addr", metrics,
			"--bootstrap", "--peers", strings.Join(peers, ","), "--log-level", envOr("STRATA_SEATA_LOG", "warn"))
		p.line(t, "txcoord ", 30*time.Second)
		nodes = append(nodes, &tcNode{proc: p, seata: seata, metrics: metrics})
	}
	return nodes
}

// leader returns the node whose TC drives phase two.
func leader(t *testing.T, nodes []*tcNode, skip *tcNode) *tcNode {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n != skip && gauge(n.metrics, "strata_seata_phase_two_driver") == "1" {
				return n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no node drives phase two")
	return nil
}

func gauge(addr, name string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return ""
}

// TestTCCLeaderKill9 runs the coordinator as three `strata txcoord`
// processes and kills the leader with SIGKILL while it confirms a TCC
// transaction's branches: the new leader finishes phase two, and each
// service confirms its branch exactly once from its point of view.
func TestTCCLeaderKill9(t *testing.T) {
	nodes := startStrataGroup(t)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.seata)
	}
	cfg := writeConfig(t, addrs)
	dir := t.TempDir()
	a := startService(t, cfg, "strata-example-a", filepath.Join(dir, "a.events"), "-confirm-delay", "400ms")
	b := startService(t, cfg, "strata-example-b", filepath.Join(dir, "b.events"), "-confirm-delay", "400ms")
	lead := leader(t, nodes, nil)

	rep := make(chan tmReport, 1)
	go func() { rep <- tmRun(t, cfg, "-svc", a.url+","+b.url, "-mode", "commit", "-n", "1") }()
	waitEvents(t, a.events, 20*time.Second, "phase two starts", func(ev map[string]map[string]int) bool {
		return len(ev["confirm-call"]) > 0
	})
	lead.kill()
	next := leader(t, nodes, lead)
	t.Logf("killed the leader (SIGKILL) during phase two; %s leads now", next.seata)

	r := <-rep
	if r.OK != 1 {
		t.Fatalf("tm: %+v", r)
	}
	for _, s := range []*service{a, b} {
		ev := waitEvents(t, s.events, 30*time.Second, "confirm after failover", func(ev map[string]map[string]int) bool {
			return len(ev["confirm"]) == 1
		})
		if len(ev["cancel-call"]) != 0 {
			t.Fatalf("%s: cancelled: %v", s.events, ev)
		}
		t.Logf("%s: confirmed once by the application; the TC asked %v", filepath.Base(s.events), ev["confirm-call"])
	}
}
