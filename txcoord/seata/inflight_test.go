package seata

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/seata/seata-go/pkg/protocol/message"
)

// stuckProposer never answers until the request's context ends.
type stuckProposer struct{ LocalProposer }

func (p *stuckProposer) Propose(ctx context.Context, _ byte, _ []byte) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestPipelinedRequestsBounded: a client that pipelines requests without
// end while the group does not answer gets at most maxInFlight of them
// handled at once, not a goroutine per frame.
func TestPipelinedRequestsBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Addr = ln.Addr().String()
	cfg.ProposeTimeout = time.Minute
	mod := NewModule(nil)
	s := newServer(cfg, &stuckProposer{LocalProposer{Mod: mod}}, mod, ln)
	defer s.Close()
	before := runtime.NumGoroutine()

	frame, err := appendFrame(nil, Frame{Type: message.GettyRequestTypeRequestSync, ID: 1,
		Body: message.GlobalStatusRequest{AbstractGlobalEndRequest: message.AbstractGlobalEndRequest{Xid: "x:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const n = 3 * maxInFlight
	go func() {
		for range n {
			if _, err := nc.Write(frame); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	peak := 0
	var full time.Time // when maxInFlight requests were first in flight
	for time.Now().Before(deadline) && (full.IsZero() || time.Since(full) < 500*time.Millisecond) {
		peak = max(peak, runtime.NumGoroutine()-before)
		if peak > maxInFlight+50 {
			break
		}
		if full.IsZero() && peak >= maxInFlight {
			full = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if peak > maxInFlight+50 {
		t.Fatalf("%d goroutines for %d pipelined requests, want at most about %d", peak, n, maxInFlight)
	}
	if peak < maxInFlight/2 {
		t.Fatalf("only %d goroutines: the requests were not read", peak)
	}
}
