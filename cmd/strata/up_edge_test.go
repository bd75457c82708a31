package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/edge/client"
)

var edgeLine = regexp.MustCompile(`API edge on (127\.0\.0\.1:\d+):[\s\S]*?secret in (\S+)\n`)

// TestUpEdge runs `strata up` and uses its edge: a signed request for IDs
// and for a row read through the proxy, the console's state in local
// mode, and a key added with `strata edge key set` and used at once.
func TestUpEdge(t *testing.T) {
	out, stop := startUp(t, "--data", t.TempDir(), "--mariadb-port", "0", "--innodb-buffer-pool", "32M", "--replicas", "0")
	m := edgeLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no edge banner in:\n%s", out)
	}
	base := "http://" + m[1]
	secret, err := os.ReadFile(m[2])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := &client.Client{Base: base, Signer: client.Signer{Key: "admin", Secret: []byte(strings.TrimSpace(string(secret)))}}
	if b, err := admin.Do(ctx, "GET", "/v1/ids/orders?count=2", nil); err != nil || !strings.Contains(string(b), `"tag":"orders"`) {
		t.Fatalf("ids: %s %v", b, err)
	}
	pm := proxyLine.FindStringSubmatch(out.String())
	db, err := sql.Open("mysql", "root@tcp("+pm[1]+")/demo")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("INSERT INTO customers (id, name, country) VALUES (42, 'Ada', 'DE')"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/v1/rows/demo/countries/JP": `"name":"Japan"`,
		"/v1/rows/demo/customers/42": `"id":42`,
	} {
		b, err := admin.Do(ctx, "GET", path, nil)
		if err != nil || !strings.Contains(string(b), want) {
			t.Fatalf("%s: %s %v", path, b, err)
		}
	}
	if _, err := admin.Do(ctx, "GET", "/v1/rows/demo/customers/4242", nil); err == nil || err.(*client.Error).Status != 404 {
		t.Fatalf("a missing row: %v", err)
	}
	if _, err := admin.Do(ctx, "GET", "/v1/rows/demo/nosuch/1", nil); err == nil || err.(*client.Error).Status != 404 {
		t.Fatalf("a missing table: %v", err)
	}
	resp, err := http.Get(base + "/console/api/state")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Without replicas the proxy does not split reads and has no SHOW
	// STRATA SERVERS: the console says so and shows the proxy's health.
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"local":true`) || !strings.Contains(string(b), `read/write splitting`) || !strings.Contains(string(b), `"ok":true`) {
		t.Fatalf("console state in local mode: %d %s", resp.StatusCode, b)
	}

	// The transaction panels: a cross-shard transaction held open shows
	// in the proxy's SHOW STRATA TRANSACTIONS; the Seata TC answers its
	// (empty) list from the coordinator node's HTTP server.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id := 100; id < 108; id++ { // hashed over both shards
		if _, err := tx.Exec("INSERT INTO customers (id, name) VALUES (?, 'x')", id); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []struct{ path, want string }{
		{"/v1/admin/transactions", `"source":"proxy"`},
		{"/v1/admin/seata", `"available":true,"data":[]`},
	} {
		b, err := admin.Do(ctx, "GET", p.path, nil)
		if err != nil || !strings.Contains(string(b), p.want) {
			t.Errorf("%s: %s %v (want %s)", p.path, b, err, p.want)
		}
	}
	_ = tx.Rollback()
	resp, err = http.Get(base + "/console/api/state")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Panels map[string]struct {
			Available bool `json:"available"`
			Data      any  `json:"data"`
		} `json:"panels"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"transactions", "seata", "cache", "hot_keys"} {
		if p := st.Panels[name]; !p.Available || p.Data == nil {
			t.Errorf("console panel %s: %+v", name, p)
		}
	}

	var keyOut syncBuffer
	t.Setenv("STRATA_EDGE_SECRET", strings.TrimSpace(string(secret)))
	if err := RunWithOutput(ctx, []string{"edge", "key", "set", "myapp", "--edge", base, "--secret", "myapp-secret-00000001"}, &keyOut, io.Discard); err != nil {
		t.Fatalf("strata edge key set: %v", err)
	}
	app := &client.Client{Base: base, Signer: client.Signer{Key: "myapp", Secret: []byte("myapp-secret-00000001")}}
	if _, err := app.Do(ctx, "GET", "/v1/ids/orders", nil); err != nil {
		t.Fatalf("the key just set: %v", err)
	}
	if _, err := app.Do(ctx, "GET", "/v1/admin/servers", nil); err == nil || err.(*client.Error).Status != 403 {
		t.Fatalf("an app key on the admin API: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
