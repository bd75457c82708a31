package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var idserverBanner = regexp.MustCompile(`idserver \S+: HTTP (\S+), gRPC (\S+),`)

// runIDServerCmd starts `strata idserver` with args and returns its HTTP
// address once it has printed it; stop ends it.
func runIDServerCmd(t *testing.T, args ...string) (httpAddr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- RunWithOutput(ctx, append([]string{"idserver"}, args...), out, errOut) }()
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("strata idserver did not stop")
			return nil
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := idserverBanner.FindStringSubmatch(out.String()); m != nil {
			return m[1], stop
		}
		select {
		case err := <-done:
			t.Fatalf("strata idserver ended: %v\n%s", err, errOut)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("strata idserver printed no address\n%s", errOut)
		}
	}
}

func leafID(t *testing.T, httpAddr string) uint64 {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + httpAddr + "/api/segment/get/orders")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				id, err := strconv.ParseUint(string(b), 10, 64)
				if err != nil {
					t.Fatalf("not a number: %q", b)
				}
				return id
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ID from %s: %v", httpAddr, err)
		}
	}
}

// `strata idserver` serves IDs, and after a restart on the same data
// directory carries on above them.
func TestIDServerCommandRestart(t *testing.T) {
	data := t.TempDir()
	args := []string{"--data", data, "--bootstrap", "--raft-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--log-level", "warn"}
	addr, stop := runIDServerCmd(t, args...)
	first := leafID(t, addr)
	second := leafID(t, addr)
	if second <= first {
		t.Fatalf("IDs %d then %d", first, second)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	addr, stop = runIDServerCmd(t, args...)
	defer stop()
	if third := leafID(t, addr); third <= second {
		t.Fatalf("after a restart: %d, not above %d", third, second)
	}
}

func TestIDServerCommandBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", t.TempDir()}, "pass --bootstrap"},
		{[]string{"--bootstrap", "--peers", "nonsense"}, "not id=raftaddr"},
		{[]string{"--bootstrap", "--snowflake-worker-bits", "12"}, "want 63"},
		{[]string{"--bootstrap", "--snowflake-epoch", "yesterday"}, "--snowflake-epoch"},
		{[]string{"--bootstrap", "--max-step", "1"}, "MaxStep"},
		{[]string{"--bootstrap", "--lease", "1s"}, "more than half the Raft HeartbeatTimeout"},
	} {
		err := RunWithOutput(context.Background(), append([]string{"idserver", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0"}, tc.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

var upIDBanner = regexp.MustCompile(`(?m)^\s+HTTP (\S+)\s+curl http://\S+/api/segment/get/orders`)

// `strata up` runs the ID service (on free ports with --mariadb-port 0).
func TestUpServesIDs(t *testing.T) {
	out, stop := startUp(t, "--data", t.TempDir(), "--mariadb-port", "0", "--shards", "1", "--replicas", "0", "--innodb-buffer-pool", "32M")
	m := upIDBanner.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no ID service in the banner:\n%s", out)
	}
	if a, b := leafID(t, m[1]), leafID(t, m[1]); b <= a {
		t.Fatalf("IDs %d then %d", a, b)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
