package edge

import (
	"testing"
	"time"
)

// TestFleetLimiterSweep: a fleet member forgets the buckets whose lease
// has run out (one per client IP would otherwise pile up for its life)
// and keeps those with tokens or waiting out a refusal.
func TestFleetLimiterSweep(t *testing.T) {
	now := time.Unix(1000, 0)
	f := newFleetLimiter(FleetConfig{LeaseFrom: "http://127.0.0.1:1", LeaseTTL: time.Second, Edges: 1}, func() time.Time { return now })
	for i := range 1000 {
		f.m["ip/ids/10.0."+string(rune('a'+i%26))+string(rune('a'+i/26))] = &leased{balance: 3, expires: now.Add(time.Second)}
	}
	f.m["refused"] = &leased{notUntil: now.Add(time.Minute)}
	f.fallback.get("ip/ids/10.0.0.1", Rule{Rate: 1, Burst: 1})
	f.sweep()
	if len(f.m) != 1001 {
		t.Fatalf("swept live leases: %d left", len(f.m))
	}
	now = now.Add(2 * time.Second)
	f.sweep()
	if len(f.m) != 1 || f.m["refused"] == nil {
		t.Fatalf("after the leases expired: %d left", len(f.m))
	}
	if len(f.fallback.m) != 0 {
		t.Fatalf("fallback buckets: %d left", len(f.fallback.m))
	}
}
