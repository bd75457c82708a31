package edge

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer for a logger and the test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestObservability: the access log has a line per request with its
// request id (the client's, echoed back), /metrics counts requests per
// route, app, status and variant, and snowflake IDs pass through.
func TestObservability(t *testing.T) {
	n := startIDNode(t)
	var logBuf lockedBuffer
	s := startEdge(t, testConfig(n.GRPCAddr), Options{AccessLog: slog.New(slog.NewJSONHandler(&logBuf, nil))})
	c := appClient(s)
	ctx := ctxT(t, 20*time.Second)
	req, _ := c.NewRequest(ctx, "GET", "/v1/ids/snowflake?count=2", nil)
	req.Header.Set("X-Request-Id", "trace-abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ids idsResponse
	if resp.StatusCode != 200 || json.Unmarshal(b, &ids) != nil || len(ids.IDs) != 2 || ids.IDs[1] <= ids.IDs[0] {
		t.Fatalf("snowflake: %d %s", resp.StatusCode, b)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "trace-abc-123" {
		t.Fatalf("request id echoed as %q", got)
	}
	bad, _ := http.NewRequest("GET", s.URL()+"/v1/ids/x", nil)
	resp, err = http.DefaultClient.Do(bad)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	generated := resp.Header.Get("X-Request-Id")
	if generated == "" {
		t.Fatal("no request id on an answer")
	}

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logBuf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[0]["id"] != "trace-abc-123" || lines[0]["route"] != "ids" || lines[0]["app"] != testApp || lines[0]["status"] != float64(200) ||
		lines[1]["id"] != generated || lines[1]["status"] != float64(401) || lines[1]["app"] != "-" {
		t.Fatalf("access log: %v", lines)
	}

	resp, err = http.Get(s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`strata_edge_requests_total{app="shop",code="200",route="ids",variant="stable"} 1`,
		`strata_edge_requests_total{app="-",code="401",route="ids",variant="stable"} 1`,
		`strata_edge_auth_failures_total{reason="missing_signature"} 1`,
		`strata_edge_ids_total{tag="snowflake"} 2`,
		`strata_edge_breaker_state{backend="idserver"} 0`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
