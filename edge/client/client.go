// Package client signs requests for Strata's API edge (package edge) and
// sends them. It holds the one definition of the string a signature covers
// (Canonical), which the edge checks against; it imports nothing of the
// edge's server side, so applications can take it alone.
//
// A request carries four headers:
//
//	X-Strata-Key        the app's key ID
//	X-Strata-Timestamp  Unix seconds when it was signed
//	X-Strata-Nonce      a random string, never reused by the app within the window
//	X-Strata-Signature  hex(HMAC-SHA256(secret, Canonical(...)))
//
// and, when it has a body, X-Strata-Content-SHA256 (hex SHA-256 of the
// body), which the signature covers too.
package client

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Header names of a signed request.
const (
	HeaderKey       = "X-Strata-Key"
	HeaderTimestamp = "X-Strata-Timestamp"
	HeaderNonce     = "X-Strata-Nonce"
	HeaderSignature = "X-Strata-Signature"
	HeaderBodyHash  = "X-Strata-Content-SHA256"
)

// Algorithm is the first line of the canonical string.
const Algorithm = "STRATA-HMAC-SHA256"

// EmptyBodyHash is hex(SHA-256("")), the body hash of a request without one.
const EmptyBodyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Canonical is the string a signature covers, lines joined by "\n":
//
//	STRATA-HMAC-SHA256
//	METHOD                  upper case
//	/escaped/path           as sent (url.URL.EscapedPath)
//	a=1&a=2&b=x             the query, keys sorted, each key's values sorted, both escaped as url.QueryEscape
//	hex sha-256 of the body
//	timestamp               decimal Unix seconds
//	nonce
func Canonical(method, escapedPath string, query url.Values, bodyHash, timestamp, nonce string) string {
	var b strings.Builder
	b.Grow(64 + len(escapedPath) + len(bodyHash) + len(nonce))
	b.WriteString(Algorithm)
	b.WriteByte('\n')
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	if escapedPath == "" {
		escapedPath = "/"
	}
	b.WriteString(escapedPath)
	b.WriteByte('\n')
	b.WriteString(SortedQuery(query))
	b.WriteByte('\n')
	b.WriteString(bodyHash)
	b.WriteByte('\n')
	b.WriteString(timestamp)
	b.WriteByte('\n')
	b.WriteString(nonce)
	return b.String()
}

// SortedQuery is the query as the signature covers it: keys sorted, each
// key's values sorted, k=v pairs joined by "&", escaped with
// url.QueryEscape.
func SortedQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		vs := q[k]
		if len(vs) > 1 {
			vs = append([]string(nil), vs...)
			sort.Strings(vs)
		}
		ek := url.QueryEscape(k)
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(ek)
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return b.String()
}

// Mac is hex(HMAC-SHA256(secret, canonical)).
func Mac(secret []byte, canonical string) string {
	m := hmac.New(sha256.New, secret)
	io.WriteString(m, canonical)
	return hex.EncodeToString(m.Sum(nil))
}

// BodyHash is hex(SHA-256(body)).
func BodyHash(body []byte) string {
	s := sha256.Sum256(body)
	return hex.EncodeToString(s[:])
}

// Signer signs requests with one app key. The zero Now means time.Now.
type Signer struct {
	Key    string
	Secret []byte
	Now    func() time.Time
}

// NewNonce returns 16 random bytes, hex.
func NewNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("edge client: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// Sign sets the signature headers on r, whose body (nil for none) is body.
// It does not read r.Body: pass the same bytes the request sends.
func (s Signer) Sign(r *http.Request, body []byte) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	nonce := NewNonce()
	bh := EmptyBodyHash
	if len(body) > 0 {
		bh = BodyHash(body)
		r.Header.Set(HeaderBodyHash, bh)
	}
	c := Canonical(r.Method, r.URL.EscapedPath(), r.URL.Query(), bh, ts, nonce)
	r.Header.Set(HeaderKey, s.Key)
	r.Header.Set(HeaderTimestamp, ts)
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderSignature, Mac(s.Secret, c))
}

// Client sends signed requests to one edge.
type Client struct {
	// Base is the edge's URL, e.g. http://127.0.0.1:8080.
	Base   string
	Signer Signer
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
}

// Error is a non-2xx answer from the edge.
type Error struct {
	Status int
	// Reason is the edge's reason code (e.g. "bad_signature",
	// "rate_limited"), empty when the answer had none.
	Reason string
	Body   string
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("edge: %d %s: %s", e.Status, e.Reason, strings.TrimSpace(e.Body))
	}
	return fmt.Sprintf("edge: %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// NewRequest builds a signed request for path (with its query) and body.
func (c *Client) NewRequest(ctx context.Context, method, pathAndQuery string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+pathAndQuery, rd)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 {
		r.Header.Set("Content-Type", "application/json")
	}
	c.Signer.Sign(r, body)
	return r, nil
}

// Do sends a signed request and returns the body of a 2xx answer, or an
// *Error.
func (c *Client) Do(ctx context.Context, method, pathAndQuery string, body []byte) ([]byte, error) {
	r, err := c.NewRequest(ctx, method, pathAndQuery, body)
	if err != nil {
		return nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return out, &Error{Status: resp.StatusCode, Reason: resp.Header.Get("X-Strata-Reason"), Body: string(out)}
	}
	return out, nil
}
