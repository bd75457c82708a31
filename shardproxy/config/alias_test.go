package config

import (
	"strings"
	"testing"
	"time"
)

// TestAliasExpansionBounded: a file that aliases a long list many times
// (a few hundred KB expanding to 10^8 values) is refused quickly with a
// clear error, not walked for minutes.
func TestAliasExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("shards: [{name: s, primary: \"127.0.0.1:1\", replicas: &r [")
	for i := range 10000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\"127.0.0.1:1\"")
	}
	b.WriteString("]}")
	for range 10000 {
		b.WriteString(",{name: s, primary: \"127.0.0.1:1\", replicas: *r}")
	}
	b.WriteString("]\n")
	start := time.Now()
	_, err := Parse("x.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "through its aliases") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("took %v", d)
	}
}
