package idserver

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-db/strata/idserver/client"
	"github.com/strata-db/strata/idserver/idpb"
)

func grpcStub(t *testing.T, addr string) idpb.IDsClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return idpb.NewIDsClient(cc)
}

// Every node answers every API; followers forward segment requests, so
// one tag's IDs increase whichever node is asked.
func TestClusterAPIsOnEveryNode(t *testing.T) {
	c := newTestCluster(t, 3, testServiceConfig())
	c.leader(10 * time.Second)
	ctx := context.Background()

	var last uint64
	for round := range 3 {
		for i := range 3 {
			ids, err := httpIDs(ctx, c.http[i], "orders", 5)
			if err != nil {
				t.Fatalf("node %d: %v", i, err)
			}
			id, err := leafGet(ctx, "http://"+c.http[i]+"/api/segment/get/orders")
			if err != nil {
				t.Fatalf("node %d leaf: %v", i, err)
			}
			resp, err := grpcStub(t, c.grpc[i]).Next(ctx, &idpb.NextRequest{Tag: "orders", Count: 1000})
			if err != nil {
				t.Fatalf("node %d grpc: %v", i, err)
			}
			all := append(ids, id)
			for _, r := range resp.Ranges {
				all = append(all, r.Start, r.Start+r.Count-1)
			}
			for _, v := range all {
				if v <= last {
					t.Fatalf("round %d node %d: ID %d after %d", round, i, v, last)
				}
				last = v
			}
		}
	}

	// An explicitly created tag starts where asked.
	if code, body := httpDo(t, http.MethodPost, "http://"+c.http[1]+"/v1/tags/invoices?start=1000000&step=50"); code != http.StatusCreated {
		t.Fatalf("create tag: %d %s", code, body)
	}
	if code, body := httpDo(t, http.MethodPost, "http://"+c.http[2]+"/v1/tags/invoices?start=5"); code != http.StatusConflict {
		t.Fatalf("create an existing tag: %d %s", code, body)
	}
	if _, err := grpcStub(t, c.grpc[0]).CreateTag(ctx, &idpb.CreateTagRequest{Tag: "invoices", Start: 1}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("grpc create of an existing tag: %v", err)
	}
	if id, err := leafGet(ctx, "http://"+c.http[0]+"/api/segment/get/invoices"); err != nil || id != 1000000 {
		t.Fatalf("first ID of invoices: %d %v", id, err)
	}

	// Snowflake: every node its own worker; decode agrees.
	workers := map[uint64]int{}
	for i := range 3 {
		var id uint64
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if id, err = leafGet(ctx, "http://"+c.http[i]+"/api/snowflake/get/anykey"); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("node %d snowflake: %v", i, err)
		}
		d, err := grpcStub(t, c.grpc[i]).Decode(ctx, &idpb.DecodeRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if age := time.Since(time.UnixMilli(d.UnixMs)); age < 0 || age > 5*time.Second {
			t.Fatalf("decoded timestamp %v is not now", time.UnixMilli(d.UnixMs))
		}
		if prev, dup := workers[d.Worker]; dup {
			t.Fatalf("nodes %d and %d share worker %d", prev, i, d.Worker)
		}
		workers[d.Worker] = i
		code, body := httpDo(t, http.MethodGet, "http://"+c.http[i]+"/v1/snowflake/"+jsonNum(id))
		var dec decodeResponse
		if code != http.StatusOK || json.Unmarshal([]byte(body), &dec) != nil || dec.Worker != d.Worker || dec.Sequence != d.Sequence {
			t.Fatalf("HTTP decode: %d %s, want worker %d", code, body, d.Worker)
		}
		code, body = httpDo(t, http.MethodGet, "http://"+c.http[i]+"/api/snowflake/decode?snowflakeId="+jsonNum(id))
		if code != http.StatusOK || !strings.Contains(body, `"workerId"`) {
			t.Fatalf("Leaf decode: %d %s", code, body)
		}
	}
	code, body := httpDo(t, http.MethodGet, "http://"+c.http[0]+"/v1/snowflake?count=3")
	if code != http.StatusOK || !strings.Contains(body, `"ids":[`) {
		t.Fatalf("snowflake JSON: %d %s", code, body)
	}

	// Operations endpoints.
	code, body = httpDo(t, http.MethodGet, "http://"+c.http[1]+"/metrics")
	for _, want := range []string{"strata_idserver_ids_served_total", "strata_idserver_leader_changes_total", "strata_idserver_request_duration_seconds", "strata_idserver_forwarded_total"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %s (%d)", want, code)
		}
	}
	// The leader's metrics and a follower's /healthz. A spurious election
	// (a loaded machine) moves both, so on a miss look again, after a call
	// that makes a new leader refill.
	for attempt := 1; ; attempt++ {
		l := c.leader(10 * time.Second)
		_, err := leafGet(ctx, "http://"+c.http[l]+"/api/segment/get/orders")
		code, body = httpDo(t, http.MethodGet, "http://"+c.http[l]+"/metrics")
		leaderOK := err == nil && strings.Contains(body, `strata_idserver_segment_refills_total{tag="orders"}`) && strings.Contains(body, "strata_idserver_is_leader 1") &&
			strings.Contains(body, `strata_idserver_raft_round_trips_total{op="reserve",result="ok"}`)
		fcode, fbody := httpDo(t, http.MethodGet, "http://"+c.http[(l+1)%3]+"/healthz")
		if leaderOK && fcode == http.StatusOK && strings.Contains(fbody, c.grpc[l]) {
			break
		}
		if attempt == 3 {
			t.Fatalf("leader n%d: /metrics %d without refills or is_leader (%v); follower /healthz %d %s, should name %s", l, code, err, fcode, fbody, c.grpc[l])
		}
	}
}

func jsonNum(v uint64) string { b, _ := json.Marshal(v); return string(b) }

// Bad input gets a 4xx / InvalidArgument with the reason, never a crash.
func TestClusterBadInput(t *testing.T) {
	c := newTestCluster(t, 1, testServiceConfig())
	c.leader(10 * time.Second)
	base := "http://" + c.http[0]
	long := strings.Repeat("x", MaxTagLen+1)
	for _, tc := range []struct {
		method, path string
		code         int
		reason       string
	}{
		{"GET", "/v1/ids/", 400, "empty tag"},
		{"GET", "/v1/ids/" + long, 400, "longer than the maximum"},
		{"GET", "/v1/ids/a%20b", 400, "tags are letters"},
		{"GET", "/v1/ids/orders?count=0", 400, "count must be at least 1"},
		{"GET", "/v1/ids/orders?count=10001", 400, "above the maximum 10000"},
		{"GET", "/v1/ids/orders?count=-1", 400, "not a whole number"},
		{"GET", "/v1/ids/orders?count=abc", 400, "not a whole number"},
		{"POST", "/v1/ids/orders", 405, "use GET"},
		{"GET", "/api/segment/get/", 400, "empty tag"},
		{"GET", "/api/segment/get/" + long, 400, "longer than the maximum"},
		{"GET", "/api/segment/get/a/b", 400, "tags are letters"},
		{"POST", "/v1/tags/t1?start=0", 400, "start 0"},
		{"POST", "/v1/tags/t1?step=0", 400, "step must be at least 1"},
		{"POST", "/v1/tags/t1?start=x", 400, "not a whole number"},
		{"POST", "/v1/tags/t1?step=99999999999", 400, "above the maximum"},
		{"GET", "/v1/snowflake?count=0", 400, "count must be at least 1"},
		{"GET", "/v1/snowflake/notanumber", 400, "not a snowflake ID"},
		{"GET", "/v1/snowflake/18446744073709551615", 400, "not a snowflake ID"},
		{"GET", "/api/snowflake/decode", 400, "no snowflake ID"},
		{"GET", "/nope", 404, "no such endpoint"},
	} {
		code, body := httpDo(t, tc.method, base+tc.path)
		if code != tc.code || !strings.Contains(body, tc.reason) {
			t.Errorf("%s %s: %d %q, want %d with %q", tc.method, tc.path, code, body, tc.code, tc.reason)
		}
	}

	stub := grpcStub(t, c.grpc[0])
	ctx := context.Background()
	for _, req := range []*idpb.NextRequest{
		{Tag: "", Count: 1},
		{Tag: long, Count: 1},
		{Tag: "orders", Count: 0},
		{Tag: "orders", Count: testServiceConfig().MaxGRPCCount + 1},
	} {
		if _, err := stub.Next(ctx, req); status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() == "" {
			t.Errorf("Next(%q, %d): %v, want InvalidArgument with a reason", req.Tag, req.Count, err)
		}
	}
	if _, err := stub.Snowflake(ctx, &idpb.SnowflakeRequest{Count: 0}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Snowflake(0): %v", err)
	}
	if _, err := stub.CreateTag(ctx, &idpb.CreateTagRequest{Tag: "x", Start: 0}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("CreateTag start 0: %v", err)
	}
	// The service still works after all that.
	if _, err := httpIDs(ctx, c.http[0], "orders", 3); err != nil {
		t.Fatal(err)
	}

	cl, err := client.New(client.Config{Addrs: []string{c.grpc[0]}, Batch: 10, MaxBatch: 10, Timeout: time.Second, RetryFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Next(ctx, ""); status.Code(errorsUnwrapStatus(err)) != codes.InvalidArgument {
		t.Errorf("client Next with an empty tag: %v", err)
	}
	if _, err := client.New(client.Config{}); err == nil {
		t.Error("client with no addresses was created")
	}
}

// errorsUnwrapStatus finds the gRPC status inside a wrapped error.
func errorsUnwrapStatus(err error) error {
	for e := err; e != nil; {
		if _, ok := status.FromError(e); ok {
			return e
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		e = u.Unwrap()
	}
	return err
}
