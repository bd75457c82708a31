package idserver

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/raftstore"
)

// A lease that a new leader's election could overtake is refused at start,
// naming both settings; the defaults pass.
func TestStartNodeRefusesALeaseTooCloseToTheHeartbeatTimeout(t *testing.T) {
	rc := raftstore.DefaultConfig()
	rc.NodeID, rc.DataDir, rc.BindAddr, rc.Bootstrap = "n0", t.TempDir(), "127.0.0.1:0", true
	nc := NodeConfig{Service: DefaultConfig(), Raft: rc, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"}
	if err := nc.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, lease := range []time.Duration{rc.HeartbeatTimeout/2 + time.Millisecond, rc.HeartbeatTimeout, 2 * time.Second} {
		nc.Service.Lease = lease
		n, err := StartNode(nc)
		if err == nil {
			n.Close()
			t.Fatalf("Lease %v with HeartbeatTimeout %v: started", lease, rc.HeartbeatTimeout)
		}
		if !strings.Contains(err.Error(), "Lease") || !strings.Contains(err.Error(), "HeartbeatTimeout") {
			t.Fatalf("Lease %v: %v, want the reason naming Lease and HeartbeatTimeout", lease, err)
		}
	}
}
