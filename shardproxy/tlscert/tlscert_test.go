package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestEnsureMakesOnceAndVerifies(t *testing.T) {
	dir := t.TempDir() + "/tls"
	f, err := Ensure(dir, []string{"127.0.0.1", "db.example", "0.0.0.0", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Created {
		t.Error("first Ensure did not say it created the files")
	}
	for _, p := range []string{f.CAKey, f.Key} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", p, st.Mode(), err)
		}
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool, err := CAPool(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "localhost", "::1", "db.example", "10.1.2.3"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify as %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example"}); err == nil {
		t.Error("verified for a name it does not hold")
	}
	before, _ := os.ReadFile(f.Cert)
	again, err := Ensure(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(again.Cert)
	if again.Created || string(before) != string(after) {
		t.Error("second Ensure made new certificates")
	}
}

func TestEnsureBadFiles(t *testing.T) {
	dir := t.TempDir()
	f := Paths(dir)
	if err := os.WriteFile(f.Cert, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Key, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(dir, nil); err == nil {
		t.Error("a broken certificate was accepted")
	}
}
