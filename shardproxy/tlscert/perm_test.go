package tlscert

import (
	"os"
	"strings"
	"testing"
)

// TestEnsureRefusesReadableKey: reusing the files, a private key that
// others may read is refused with what to do, not served.
func TestEnsureRefusesReadableKey(t *testing.T) {
	dir := t.TempDir() + "/tls"
	f, err := Ensure(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f.Key, f.CAKey} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Ensure(dir, nil)
		if err == nil || !strings.Contains(err.Error(), p+" is readable by others") {
			t.Fatalf("%s at 0644: %v", p, err)
		}
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if f2, err := Ensure(dir, nil); err != nil || f2.Created {
		t.Fatalf("keys at 0600: %v, created %v", err, f2.Created)
	}
}
