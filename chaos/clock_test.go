package chaos

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestCleanupSetsClockBack: a journal left by a drill that had moved an ID
// service node's clock (the drill died mid-fault) makes `strata chaos
// cleanup` set the node's offset back to 0. The node is a stand-in that
// records the request (the endpoint's own test is idserver's
// TestChaosClock; the drill against real nodes is idserver-clock-skew).
func TestCleanupSetsClockBack(t *testing.T) {
	var mu sync.Mutex
	var got []string
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.String())
		mu.Unlock()
		_, _ = io.WriteString(w, `{"offset_ms":0}`)
	}))
	defer node.Close()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	j, err := openJournal(dir, "skewed")
	if err != nil {
		t.Fatal(err)
	}
	j.add(JournalEntry{Kind: jClock, What: "id1", Addr: strings.TrimPrefix(node.URL, "http://")})
	// The journal's owner must be gone for cleanup to touch it: pretend
	// it is another process's that died, by rewriting its pid.
	j.f.Pid = 1 << 30
	if err := j.save(); err != nil {
		t.Fatal(err)
	}
	res := Cleanup(context.Background(), dir, false, io.Discard)
	if len(res.Errors) > 0 || len(res.Undone) != 1 {
		t.Fatalf("cleanup: %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "PUT /debug/chaos/clock?offset=0s" {
		t.Fatalf("requests to the node: %v", got)
	}
}
