package idserver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-db/strata/idserver/idpb"
)

// Whatever request reaches the HTTP API, it answers without crashing: bad
// input with a 4xx and the reason, IDs of a tag increasing from call to
// call (the calls here run one after another), each answer well formed.
func FuzzHTTPAPI(f *testing.F) {
	for _, seed := range [][2]string{
		{"GET", "/v1/ids/orders"}, {"GET", "/v1/ids/orders?count=3"}, {"GET", "/v1/ids/orders?count=10001"},
		{"GET", "/v1/ids/?count=1"}, {"GET", "/v1/ids/a%20b"}, {"HEAD", "/v1/ids/orders"}, {"POST", "/v1/ids/orders"},
		{"GET", "/api/segment/get/orders"}, {"GET", "/api/segment/get/"}, {"GET", "/api/segment/get/a/b"},
		{"GET", "/api/snowflake/get/k"}, {"GET", "/api/snowflake/decode?snowflakeId=123"}, {"GET", "/api/snowflake/decode"},
		{"POST", "/v1/tags/inv?start=1000&step=10"}, {"POST", "/v1/tags/top?start=9223372036854775807&step=1"},
		{"POST", "/v1/tags/t?step=0"}, {"POST", "/v1/tags/t?start=x"}, {"GET", "/v1/snowflake?count=2"},
		{"GET", "/v1/snowflake/18446744073709551615"}, {"GET", "/v1/snowflake/1"}, {"GET", "/healthz"},
		{"GET", "/metrics"}, {"DELETE", "/v1/ids/x"}, {"GET", "/nope"}, {"GET", "/v1/ids/orders?count=%zz"},
	} {
		f.Add(seed[0], seed[1])
	}
	cfg := DefaultConfig()
	cfg.Lease = 1 << 62 // the fake node never loses leadership
	node := newFakeNode("a", 3)
	s, err := New(cfg, node, node.fsm)
	if err != nil {
		f.Fatal(err)
	}
	s.Serve(nil, nil)
	f.Cleanup(s.Kill)
	node.announce(true, 1)
	h := s.Handler()
	last := map[string]uint64{}
	f.Fuzz(func(t *testing.T, method, target string) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		req, err := http.NewRequest(method, "http://idserver"+target, nil)
		if err != nil {
			return // not a request a server could receive
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		body := w.Body.String()
		switch code := w.Code; {
		case code >= 400 && code < 500:
			if strings.TrimSpace(body) == "" || strings.Contains(body, `"error":""`) {
				t.Fatalf("%s %s: %d without a reason", method, target, code)
			}
			return
		case code == http.StatusServiceUnavailable, code == http.StatusInternalServerError:
			return // not serving yet, a full tag; Leaf answers 500 for those
		case code != http.StatusOK && code != http.StatusCreated:
			t.Fatalf("%s %s: status %d: %s", method, target, code, body)
		}
		if method == http.MethodHead {
			return
		}
		var ids []uint64
		var tag string
		switch p := req.URL.Path; {
		case strings.HasPrefix(p, "/api/segment/get/"):
			id, err := strconv.ParseUint(body, 10, 64)
			if err != nil {
				t.Fatalf("%s: not a bare number: %q", target, body)
			}
			ids, tag = []uint64{id}, strings.TrimPrefix(p, "/api/segment/get/")
		case strings.HasPrefix(p, "/v1/ids/"):
			var r idsResponse
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatalf("%s: %v: %q", target, err, body)
			}
			want := uint64(1)
			if c := req.URL.Query().Get("count"); c != "" {
				want, _ = strconv.ParseUint(c, 10, 64)
			}
			if uint64(len(r.IDs)) != want {
				t.Fatalf("%s: %d IDs, want %d", target, len(r.IDs), want)
			}
			ids, tag = r.IDs, r.Tag
		}
		for _, id := range ids {
			if id <= last[tag] || id > MaxID {
				t.Fatalf("%s: ID %d after %d", target, id, last[tag])
			}
			last[tag] = id
		}
	})
}

// The gRPC API likewise: any tag, count, start, step or ID gets an answer
// or a status with its reason; Next's ranges hold count increasing IDs.
func FuzzGRPCAPI(f *testing.F) {
	f.Add("orders", uint64(1), uint64(0), uint64(0), uint64(0))
	f.Add("orders", uint64(1<<20), uint64(0), uint64(0), uint64(1<<63))
	f.Add("", uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add("top", uint64(3), uint64(MaxID-1), uint64(1), uint64(MaxID))
	f.Add("a b", uint64(1<<20+1), uint64(1), uint64(1<<40), uint64(1))
	cfg := DefaultConfig()
	cfg.Lease = 1 << 62
	node := newFakeNode("a", 3)
	s, err := New(cfg, node, node.fsm)
	if err != nil {
		f.Fatal(err)
	}
	s.Serve(nil, nil)
	f.Cleanup(s.Kill)
	node.announce(true, 1)
	g := &grpcIDs{s: s}
	last := map[string]uint64{}
	f.Fuzz(func(t *testing.T, tag string, count, start, step, id uint64) {
		ctx := context.Background()
		checkStatus := func(what string, err error) {
			t.Helper()
			st := status.Convert(err)
			switch st.Code() {
			case codes.OK, codes.AlreadyExists, codes.ResourceExhausted, codes.Unavailable:
			case codes.InvalidArgument:
				if st.Message() == "" {
					t.Fatalf("%s: InvalidArgument without a reason", what)
				}
			default:
				t.Fatalf("%s: %v", what, err)
			}
		}
		_, err := g.CreateTag(ctx, &idpb.CreateTagRequest{Tag: tag, Start: start, Step: step})
		checkStatus("CreateTag", err)
		resp, err := g.Next(ctx, &idpb.NextRequest{Tag: tag, Count: count})
		checkStatus("Next", err)
		if err == nil {
			var n uint64
			for _, r := range resp.GetRanges() {
				if r.GetCount() == 0 || r.GetStart() <= last[tag] || r.GetStart()+r.GetCount()-1 > MaxID {
					t.Fatalf("Next(%q, %d): range %v after %d", tag, count, r, last[tag])
				}
				last[tag] = r.GetStart() + r.GetCount() - 1
				n += r.GetCount()
			}
			if n != count {
				t.Fatalf("Next(%q, %d): %d IDs", tag, count, n)
			}
		}
		if count <= 10000 || count > cfg.MaxGRPCCount { // a million takes 250ms (4096 per ms)
			_, err = g.Snowflake(ctx, &idpb.SnowflakeRequest{Count: count})
			checkStatus("Snowflake", err)
		}
		_, err = g.Decode(ctx, &idpb.DecodeRequest{Id: id})
		checkStatus("Decode", err)
	})
}
