package edge

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/strata-db/strata/edge/client"
)

// TestOpenAPI: every path and method in /openapi.json reaches a handler
// (no 404 no_route, no 405), and every route the edge serves is in the
// document: the route table in resolve and serveAdmin's cases against
// the document's paths.
func TestOpenAPI(t *testing.T) {
	n := startIDNode(t)
	cfg := testConfig(n.GRPCAddr)
	cfg.Console.Local = true
	s := startEdge(t, cfg, Options{})
	resp, err := http.Get(s.URL() + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Paths) == 0 {
		t.Fatalf("openapi.json: version %q, %d paths", doc.OpenAPI, len(doc.Paths))
	}
	admin := client.Signer{Key: testAdmin, Secret: []byte(testAdminS)}
	param := regexp.MustCompile(`\{[^}]+\}`)
	fill := map[string]string{"{tag}": "openapi", "{db}": "demo", "{table}": "t", "{key}": "1", "{shard}": "s0", "{app}": "openapi-app"}
	var documented []string
	// A path's methods in a fixed order, PUT before DELETE, so that the key
	// the DELETE removes exists (map order would make it flaky).
	rank := map[string]int{"GET": 0, "PUT": 1, "POST": 2, "DELETE": 3}
	for p, methods := range doc.Paths {
		ms := make([]string, 0, len(methods))
		for m := range methods {
			ms = append(ms, strings.ToUpper(m))
		}
		slices.SortFunc(ms, func(a, b string) int { return rank[a] - rank[b] })
		for _, m := range ms {
			documented = append(documented, m+" "+p)
			path := param.ReplaceAllStringFunc(p, func(s string) string { return fill[s] })
			var body []byte
			switch {
			case strings.HasPrefix(p, "/v1/admin/keys/") && m == "PUT":
				body = []byte(`{"secret":"openapi-secret-000001"}`)
			case p == "/v1/admin/gray" && m == "PUT":
				body = []byte(`{"route":"ids","share":0}`)
			case p == "/v1/fleet/lease":
				body = []byte(`{"buckets":[{"name":"x","rate":1,"burst":1,"want":1}]}`)
			case p == "/console/api/switchover":
				body = []byte(`{"shard":"s0"}`)
			}
			req, _ := http.NewRequest(m, s.URL()+path, strings.NewReader(string(body)))
			admin.Sign(req, body)
			status, reason, out := do(t, req)
			if status == http.StatusMethodNotAllowed || (status == http.StatusNotFound && reason == "not_found" && strings.Contains(out, "no ")) {
				t.Errorf("%s %s (documented as %s): %d %s %s", m, path, p, status, reason, out)
			}
		}
	}
	// The other way: what the edge routes is documented.
	served := []string{
		"GET /v1/ids/{tag}", "GET /v1/rows/{db}/{table}/{key}",
		"GET /v1/admin/servers", "POST /v1/admin/switchover/{shard}", "POST /v1/admin/failover/{shard}",
		"GET /v1/admin/transactions", "GET /v1/admin/seata", "GET /v1/admin/drills", "GET /v1/admin/hot_keys", "GET /v1/admin/cache",
		"GET /v1/admin/keys", "PUT /v1/admin/keys/{app}", "DELETE /v1/admin/keys/{app}",
		"GET /v1/admin/gray", "PUT /v1/admin/gray", "POST /v1/fleet/lease",
		"GET /console/api/state", "POST /console/api/switchover",
		"GET /healthz", "GET /metrics", "GET /openapi.json",
	}
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served but not in openapi.json", r)
		}
	}
	if len(documented) != len(served) {
		slices.Sort(documented)
		t.Errorf("openapi.json documents %d operations, the edge serves %d: %v", len(documented), len(served), documented)
	}
	// An undocumented path is 404.
	req, _ := http.NewRequest("GET", s.URL()+"/v1/nothing", nil)
	admin.Sign(req, nil)
	if status, _, _ := do(t, req); status != 404 {
		t.Errorf("/v1/nothing: %d", status)
	}
}
