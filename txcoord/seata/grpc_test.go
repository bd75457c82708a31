package seata

import (
	"context"
	"testing"
	"time"

	"github.com/seata/seata-go/pkg/protocol/branch"

	"github.com/strata-db/strata/txcoord/client"
)

// SeataAdmin on every node's gRPC address lists the open global
// transactions, as the proxy's SHOW STRATA TRANSACTIONS asks for them.
func TestSeataAdminList(t *testing.T) {
	g := StartGroup(t, 3, testConfig())
	tm := dialRaw(t, g.Addrs[0], nil)
	xid := begin(t, tm, time.Minute)
	register(t, tm, xid, branch.BranchTypeAT, "jdbc:orders", "t:1")

	cfg := client.DefaultConfig()
	cfg.Addrs = g.GRPCAddrs()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		gs, err := c.SeataList(ctx, 0)
		cancel()
		if err == nil && len(gs) == 1 && gs[0].XID == xid && gs[0].Status == "Begin" &&
			len(gs[0].Resources) == 1 && gs[0].Resources[0] == "jdbc:orders" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("SeataList: %+v %v", gs, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
