package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/edge/client"
)

// TestSignatures: every way a signature can be wrong is refused with its
// own reason, and nothing in the answer carries the secret; a right one
// passes.
func TestSignatures(t *testing.T) {
	n := startIDNode(t)
	s := startEdge(t, testConfig(n.GRPCAddr), Options{})
	signer := client.Signer{Key: testApp, Secret: []byte(testSecret)}

	// build returns a signed request to mutate before sending.
	build := func(method, target string, body []byte) *http.Request {
		var rd *bytes.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		} else {
			rd = bytes.NewReader(nil)
		}
		r, err := http.NewRequest(method, s.URL()+target, rd)
		if err != nil {
			t.Fatal(err)
		}
		signer.Sign(r, body)
		return r
	}
	resign := func(r *http.Request, ts time.Time, nonce string) {
		tsS := strconv.FormatInt(ts.Unix(), 10)
		r.Header.Set(client.HeaderTimestamp, tsS)
		r.Header.Set(client.HeaderNonce, nonce)
		c := client.Canonical(r.Method, r.URL.EscapedPath(), r.URL.Query(), client.EmptyBodyHash, tsS, nonce)
		r.Header.Set(client.HeaderSignature, client.Mac([]byte(testSecret), c))
	}

	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		reason string
	}{
		{"valid", func() *http.Request { return build("GET", "/v1/ids/orders?count=2", nil) }, 200, ""},
		{"no signature", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL()+"/v1/ids/orders", nil)
			return r
		}, 401, ReasonMissing},
		{"tampered path", func() *http.Request {
			r := build("GET", "/v1/ids/orders", nil)
			r.URL.Path = "/v1/ids/invoices"
			return r
		}, 401, ReasonBadSignature},
		{"tampered query", func() *http.Request {
			r := build("GET", "/v1/ids/orders?count=2", nil)
			r.URL.RawQuery = "count=3"
			return r
		}, 401, ReasonBadSignature},
		{"added query", func() *http.Request {
			r := build("GET", "/v1/ids/orders", nil)
			r.URL.RawQuery = "ordered=true"
			return r
		}, 401, ReasonBadSignature},
		{"tampered method", func() *http.Request {
			r := build("GET", "/v1/admin/gray", nil)
			r.Method = "PUT"
			return r
		}, 401, ReasonBadSignature},
		{"tampered body", func() *http.Request {
			body := []byte(`{"route":"ids","share":0.1}`)
			r := build("PUT", "/v1/admin/gray", body)
			evil := []byte(`{"route":"ids","share":0.9}`)
			r.Body, r.ContentLength = readCloser(evil), int64(len(evil))
			return r
		}, 401, ReasonBodyHash},
		{"tampered body and its hash header", func() *http.Request {
			body := []byte(`{"route":"ids","share":0.1}`)
			r := build("PUT", "/v1/admin/gray", body)
			evil := []byte(`{"route":"ids","share":0.9}`)
			r.Body, r.ContentLength = readCloser(evil), int64(len(evil))
			r.Header.Set(client.HeaderBodyHash, client.BodyHash(evil))
			return r
		}, 401, ReasonBadSignature},
		{"expired timestamp", func() *http.Request {
			r := build("GET", "/v1/ids/orders", nil)
			resign(r, time.Now().Add(-6*time.Minute), client.NewNonce())
			return r
		}, 401, ReasonExpired},
		{"future timestamp", func() *http.Request {
			r := build("GET", "/v1/ids/orders", nil)
			resign(r, time.Now().Add(6*time.Minute), client.NewNonce())
			return r
		}, 401, ReasonExpired},
		{"timestamp within the window", func() *http.Request {
			r := build("GET", "/v1/ids/orders", nil)
			resign(r, time.Now().Add(-4*time.Minute), client.NewNonce())
			return r
		}, 200, ""},
		{"malformed timestamp", func() *http.Request {
			r := build("GET", "/v1/ids/orders", nil)
			r.Header.Set(client.HeaderTimestamp, "yesterday")
			return r
		}, 401, ReasonBadTimestamp},
		{"unknown key", func() *http.Request {
			r := build("GET", "/v1/ids/orders", nil)
			r.Header.Set(client.HeaderKey, "nobody")
			return r
		}, 401, ReasonUnknownKey},
		{"wrong secret", func() *http.Request {
			r, _ := http.NewRequest("GET", s.URL()+"/v1/ids/orders", nil)
			client.Signer{Key: testApp, Secret: []byte("not-the-secret-at-all")}.Sign(r, nil)
			return r
		}, 401, ReasonBadSignature},
		{"signature not hex", func() *http.Request {
			r := build("GET", "/v1/ids/orders", nil)
			r.Header.Set(client.HeaderSignature, "zz")
			return r
		}, 401, ReasonBadSignature},
		{"app key on an admin route", func() *http.Request { return build("GET", "/v1/admin/servers", nil) }, 403, ReasonNotAdmin},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, reason, body := do(t, c.req())
			if status != c.status || reason != c.reason {
				t.Fatalf("got %d %q (%s), want %d %q", status, reason, body, c.status, c.reason)
			}
			if strings.Contains(body, testSecret) {
				t.Fatalf("the answer carries the secret: %s", body)
			}
		})
	}

	t.Run("replayed nonce", func(t *testing.T) {
		r := build("GET", "/v1/ids/orders", nil)
		r2 := r.Clone(r.Context())
		if status, reason, body := do(t, r); status != 200 {
			t.Fatalf("first: %d %s %s", status, reason, body)
		}
		if status, reason, _ := do(t, r2); status != 401 || reason != ReasonReplay {
			t.Fatalf("replay: %d %q, want 401 %q", status, reason, ReasonReplay)
		}
	})

	t.Run("go client", func(t *testing.T) {
		out, err := appClient(s).Do(ctxT(t, 10*time.Second), "GET", "/v1/ids/orders?count=3", nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids idsResponse
		if err := json.Unmarshal(out, &ids); err != nil || len(ids.IDs) != 3 || ids.Tag != "orders" {
			t.Fatalf("answer %s: %v", out, err)
		}
	})

	t.Run("curl example from the README", func(t *testing.T) {
		for _, tool := range []string{"curl", "openssl", "bash"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Fatalf("%s is missing (scripts/deps.sh installs it)", tool)
			}
		}
		script := readmeExample(t)
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Env = append(os.Environ(), "EDGE="+s.URL(), "KEY="+testApp, "SECRET="+testSecret)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("example failed: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), `"tag":"orders"`) {
			t.Fatalf("example's answer: %s", out)
		}
	})
}

// readmeExample is the shell block between the README's markers.
func readmeExample(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- edge-curl-example -->\\s*```(?:sh|bash)\\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no block after <!-- edge-curl-example -->")
	}
	return string(m[1])
}

// TestRotateKey: an admin sets a new key and rotates it with a grace
// period; no restart, and the state file keeps it for the next start.
func TestRotateKey(t *testing.T) {
	n := startIDNode(t)
	cfg := testConfig(n.GRPCAddr)
	cfg.StateFile = filepath.Join(t.TempDir(), "keys.yaml")
	s := startEdge(t, cfg, Options{})
	ctx := ctxT(t, 20*time.Second)
	admin := adminClient(s)
	if _, err := admin.Do(ctx, "PUT", "/v1/admin/keys/mobile", []byte(`{"secret":"mobile-secret-0000001"}`)); err != nil {
		t.Fatal(err)
	}
	old := &client.Client{Base: s.URL(), Signer: client.Signer{Key: "mobile", Secret: []byte("mobile-secret-0000001")}}
	if _, err := old.Do(ctx, "GET", "/v1/ids/m", nil); err != nil {
		t.Fatalf("new key refused: %v", err)
	}
	if _, err := admin.Do(ctx, "PUT", "/v1/admin/keys/mobile", []byte(`{"secret":"mobile-secret-0000002","grace":"1m"}`)); err != nil {
		t.Fatal(err)
	}
	rotated := &client.Client{Base: s.URL(), Signer: client.Signer{Key: "mobile", Secret: []byte("mobile-secret-0000002")}}
	for _, c := range []*client.Client{old, rotated} {
		if _, err := c.Do(ctx, "GET", "/v1/ids/m", nil); err != nil {
			t.Fatalf("within the grace period: %v", err)
		}
	}
	if _, err := admin.Do(ctx, "PUT", "/v1/admin/keys/mobile", []byte(`{"secret":"mobile-secret-0000003"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Do(ctx, "GET", "/v1/ids/m", nil); err == nil || err.(*client.Error).Reason != ReasonBadSignature {
		t.Fatalf("rotated without grace: old secret gave %v", err)
	}
	if _, err := admin.Do(ctx, "PUT", "/v1/admin/keys/short", []byte(`{"secret":"short"}`)); err == nil || err.(*client.Error).Status != 400 {
		t.Fatalf("short secret: %v", err)
	}
	if _, err := appClient(s).Do(ctx, "PUT", "/v1/admin/keys/x", []byte(`{"secret":"xxxxxxxxxxxxxxxxxxxxxxx"}`)); err == nil || err.(*client.Error).Status != 403 {
		t.Fatalf("app key set a key: %v", err)
	}
	s.Close()

	s2 := startEdge(t, cfg, Options{})
	third := &client.Client{Base: s2.URL(), Signer: client.Signer{Key: "mobile", Secret: []byte("mobile-secret-0000003")}}
	if _, err := third.Do(ctx, "GET", "/v1/ids/m", nil); err != nil {
		t.Fatalf("after restart, the key set at run time: %v", err)
	}
}

// TestNonceStoreSpan: a nonce is refused again for at least twice the
// window (its timestamp's whole validity), then forgotten.
func TestNonceStoreSpan(t *testing.T) {
	s := newNonceStore(5 * time.Minute)
	t0 := time.Unix(1_700_000_000, 0)
	if !s.add("shop", "n1", t0) {
		t.Fatal("first use refused")
	}
	// Other traffic rotates the shard's generations as time passes.
	for d := time.Duration(0); d < 10*time.Minute; d += 30 * time.Second {
		s.add("shop", "other-"+d.String(), t0.Add(d))
		if s.add("shop", "n1", t0.Add(d)) {
			t.Fatalf("replay accepted %v after first use", d)
		}
	}
	if !s.add("other-app", "n1", t0) {
		t.Fatal("the same nonce of another key refused")
	}
	for d := 10 * time.Minute; d <= 40*time.Minute; d += 10 * time.Minute {
		for i := range 64 * 4 { // touch every shard
			s.add("x", fmt.Sprint(d, i), t0.Add(d))
		}
	}
	if !s.add("shop", "n1", t0.Add(41*time.Minute)) {
		t.Fatal("a nonce is remembered forever")
	}
}
