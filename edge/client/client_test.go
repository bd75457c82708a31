package client

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestCanonical pins the string a signature covers: other signers (the
// console's JavaScript, the README's curl example) build the same one.
func TestCanonical(t *testing.T) {
	q := url.Values{"b": {"2", "1"}, "a b": {"x/y"}, "c": {""}}
	got := Canonical("get", "/v1/ids/orders", q, EmptyBodyHash, "1700000000", "n1")
	want := "STRATA-HMAC-SHA256\nGET\n/v1/ids/orders\na+b=x%2Fy&b=1&b=2&c=\n" + EmptyBodyHash + "\n1700000000\nn1"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if BodyHash(nil) != EmptyBodyHash {
		t.Fatal("EmptyBodyHash is not SHA-256 of nothing")
	}
	// A known HMAC-SHA256 (RFC 4231 test case 2).
	if Mac([]byte("Jefe"), "what do ya want for nothing?") != "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Fatal("Mac is not HMAC-SHA256 in hex")
	}
}

func TestSign(t *testing.T) {
	s := Signer{Key: "shop", Secret: []byte("0123456789abcdef"), Now: func() time.Time { return time.Unix(1700000000, 0) }}
	r, _ := http.NewRequest("POST", "http://edge/v1/admin/gray?z=1", nil)
	body := []byte(`{"share":0.5}`)
	s.Sign(r, body)
	h := r.Header
	if h.Get(HeaderKey) != "shop" || h.Get(HeaderTimestamp) != "1700000000" || len(h.Get(HeaderNonce)) != 32 || h.Get(HeaderBodyHash) != BodyHash(body) {
		t.Fatalf("headers %v", h)
	}
	want := Mac(s.Secret, Canonical("POST", "/v1/admin/gray", url.Values{"z": {"1"}}, BodyHash(body), "1700000000", h.Get(HeaderNonce)))
	if h.Get(HeaderSignature) != want {
		t.Fatal("signature does not cover the canonical string")
	}
	r2, _ := http.NewRequest("POST", "http://edge/v1/admin/gray?z=1", nil)
	s.Sign(r2, body)
	if r2.Header.Get(HeaderNonce) == h.Get(HeaderNonce) {
		t.Fatal("nonce reused")
	}
}
