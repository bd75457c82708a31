package edge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/strata-db/strata/edge/client"
)

// Reason codes of a refused signature (401), sent in X-Strata-Reason and
// the JSON body. None depends on the secret.
const (
	ReasonMissing      = "missing_signature" // a signature header is absent
	ReasonUnknownKey   = "unknown_key"
	ReasonBadTimestamp = "bad_timestamp"     // not Unix seconds
	ReasonExpired      = "expired_timestamp" // outside the window
	ReasonBadNonce     = "bad_nonce"         // empty or longer than 128
	ReasonBodyHash     = "body_hash_mismatch"
	ReasonBadSignature = "bad_signature" // the MAC differs: tampered method, path, query, or a wrong secret
	ReasonReplay       = "replayed_nonce"
	ReasonNotAdmin     = "not_admin" // 403: an app key on an admin route
)

// key is one app key as the edge holds it. Rotation keeps the previous
// secret valid until prevUntil, so clients can switch without a gap.
type key struct {
	name      string
	secret    []byte
	admin     bool
	limit     Rule
	prev      []byte
	prevUntil time.Time
	// macs and prevMacs pool keyed HMAC states: hmac.New costs two
	// SHA-256 blocks and several allocations, a third of a check.
	macs, prevMacs *sync.Pool
}

func macPool(secret []byte) *sync.Pool {
	return &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}
}

func newKey(name string, secret []byte, admin bool, limit Rule) *key {
	return &key{name: name, secret: secret, admin: admin, limit: limit, macs: macPool(secret)}
}

// keyring holds the app keys; lookups take no lock (copy on write).
type keyring struct {
	mu    sync.Mutex // serializes writers
	keys  atomic.Pointer[map[string]*key]
	state string // file of keys set at run time; "" keeps them in memory only
}

func newKeyring(apps []App, state string) (*keyring, error) {
	m := map[string]*key{}
	for _, a := range apps {
		s := a.Secret
		if a.SecretEnv != "" {
			s = os.Getenv(a.SecretEnv)
		}
		m[a.Name] = newKey(a.Name, []byte(s), a.Admin, a.Limit)
	}
	kr := &keyring{state: state}
	if state != "" {
		st, removed, err := readState(state)
		if err != nil {
			return nil, err
		}
		// A key removed through the admin API stays removed after a
		// restart, even when the config file still lists it.
		for _, name := range removed {
			delete(m, name)
		}
		for _, a := range st {
			m[a.Name] = newKey(a.Name, []byte(a.Secret), a.Admin, a.Limit)
		}
	}
	kr.keys.Store(&m)
	return kr, nil
}

func (kr *keyring) get(name string) *key { return (*kr.keys.Load())[name] }

// KeyUpdate adds a key or rotates one (PUT /v1/admin/keys/{app}).
type KeyUpdate struct {
	Secret string `json:"secret"`
	Admin  bool   `json:"admin"`
	Limit  *Rule  `json:"limit,omitempty"`
	// Grace keeps the previous secret valid this long after a rotation
	// (Go duration; default 0: the old secret stops at once).
	Grace string `json:"grace,omitempty"`
}

// set adds or rotates name's key and writes the state file.
func (kr *keyring) set(name string, u KeyUpdate, now time.Time) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("key name %q is not 1-64 of A-Z a-z 0-9 _ . -", name)
	}
	if len(u.Secret) < MinSecret {
		return fmt.Errorf("secret shorter than %d bytes", MinSecret)
	}
	var grace time.Duration
	if u.Grace != "" {
		g, err := time.ParseDuration(u.Grace)
		if err != nil || g < 0 || g > 24*time.Hour {
			return fmt.Errorf("grace %q is not a duration between 0 and 24h", u.Grace)
		}
		grace = g
	}
	if u.Limit != nil {
		if err := u.Limit.check("limit"); err != nil {
			return err
		}
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	old := *kr.keys.Load()
	m := make(map[string]*key, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	k := newKey(name, []byte(u.Secret), u.Admin, Rule{})
	if o := old[name]; o != nil {
		k.limit = o.limit
		if grace > 0 {
			k.prev, k.prevUntil, k.prevMacs = o.secret, now.Add(grace), o.macs
		}
	}
	if u.Limit != nil {
		k.limit = *u.Limit
	}
	m[name] = k
	if kr.state != "" {
		if err := kr.writeState(name, k); err != nil {
			return err
		}
	}
	kr.keys.Store(&m)
	return nil
}

// remove deletes a key; false if there was none.
func (kr *keyring) remove(name string) (bool, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	old := *kr.keys.Load()
	if old[name] == nil {
		return false, nil
	}
	m := make(map[string]*key, len(old))
	for k, v := range old {
		if k != name {
			m[k] = v
		}
	}
	if kr.state != "" {
		if err := kr.writeState(name, nil); err != nil {
			return false, err
		}
	}
	kr.keys.Store(&m)
	return true, nil
}

func (kr *keyring) names() []string {
	m := *kr.keys.Load()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// stateFile is the state file: keys set at run time, and the names of
// keys removed at run time (config keys included).
type stateFile struct {
	Apps    []App    `yaml:"apps"`
	Removed []string `yaml:"removed,omitempty"`
}

func readState(path string) ([]App, []string, error) {
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("edge: state file: %w", err)
	}
	var st stateFile
	if err := yaml.Unmarshal(src, &st); err != nil {
		return nil, nil, fmt.Errorf("edge: state file %s: %w", path, err)
	}
	for i, a := range st.Apps {
		if !nameRE.MatchString(a.Name) || len(a.Secret) < MinSecret {
			return nil, nil, fmt.Errorf("edge: state file %s: apps[%d]: bad name or secret", path, i)
		}
	}
	return st.Apps, st.Removed, nil
}

// writeState rewrites the state file with name set to k (nil: removed),
// atomically (temp file, rename), readable by its owner only.
func (kr *keyring) writeState(name string, k *key) error {
	apps, removed, err := readState(kr.state)
	if err != nil {
		return err
	}
	out := apps[:0]
	for _, a := range apps {
		if a.Name != name {
			out = append(out, a)
		}
	}
	gone := removed[:0]
	for _, r := range removed {
		if r != name {
			gone = append(gone, r)
		}
	}
	if k != nil {
		out = append(out, App{Name: name, Secret: string(k.secret), Admin: k.admin, Limit: k.limit})
	} else {
		gone = append(gone, name)
	}
	b, err := yaml.Marshal(stateFile{Apps: out, Removed: gone})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(kr.state), 0o700); err != nil {
		return fmt.Errorf("edge: state file: %w", err)
	}
	tmp := kr.state + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("edge: state file: %w", err)
	}
	if err := os.Rename(tmp, kr.state); err != nil {
		return fmt.Errorf("edge: state file: %w", err)
	}
	return nil
}

// authError is a refused request: its status and reason code.
type authError struct {
	status int
	reason string
}

func (e *authError) Error() string { return e.reason }

// verifier checks signed requests.
type verifier struct {
	keys   *keyring
	window time.Duration
	nonces *nonceStore
	now    func() time.Time
}

// verify checks r's signature over body and returns its key. The checks
// run cheapest first; the nonce is recorded only once the signature holds,
// so nobody without the secret can use up a client's nonces.
func (v *verifier) verify(r *http.Request, body []byte) (*key, *authError) {
	h := r.Header
	name, ts, nonce, sig := h.Get(client.HeaderKey), h.Get(client.HeaderTimestamp), h.Get(client.HeaderNonce), h.Get(client.HeaderSignature)
	if name == "" || ts == "" || nonce == "" || sig == "" {
		return nil, &authError{http.StatusUnauthorized, ReasonMissing}
	}
	k := v.keys.get(name)
	if k == nil {
		return nil, &authError{http.StatusUnauthorized, ReasonUnknownKey}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, &authError{http.StatusUnauthorized, ReasonBadTimestamp}
	}
	now := v.now()
	if d := now.Sub(time.Unix(sec, 0)); d > v.window || d < -v.window {
		return nil, &authError{http.StatusUnauthorized, ReasonExpired}
	}
	if len(nonce) > 128 {
		return nil, &authError{http.StatusUnauthorized, ReasonBadNonce}
	}
	bh := client.EmptyBodyHash
	if len(body) > 0 {
		bh = client.BodyHash(body)
	}
	if got := h.Get(client.HeaderBodyHash); got != "" && got != bh {
		return nil, &authError{http.StatusUnauthorized, ReasonBodyHash}
	}
	want, err := hex.DecodeString(sig)
	if err != nil {
		return nil, &authError{http.StatusUnauthorized, ReasonBadSignature}
	}
	var q url.Values
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	c := client.Canonical(r.Method, r.URL.EscapedPath(), q, bh, ts, nonce)
	ok := macEqual(k.macs, c, want)
	if !ok && k.prev != nil && now.Before(k.prevUntil) {
		ok = macEqual(k.prevMacs, c, want)
	}
	if !ok {
		return nil, &authError{http.StatusUnauthorized, ReasonBadSignature}
	}
	if !v.nonces.add(name, nonce, now) {
		return nil, &authError{http.StatusUnauthorized, ReasonReplay}
	}
	return k, nil
}

// macEqual compares in constant time (hmac.Equal), with a keyed HMAC
// from the pool.
func macEqual(pool *sync.Pool, canonical string, want []byte) bool {
	m := pool.Get().(hash.Hash)
	m.Reset()
	io.WriteString(m, canonical)
	var buf [sha256.Size]byte
	ok := hmac.Equal(m.Sum(buf[:0]), want)
	pool.Put(m)
	return ok
}

// nonceStore remembers nonces for at least twice the window (a timestamp
// is good for window either side of now). Two generations per shard, each
// spanning 2×window: a nonce is looked up in both and added to the current
// one, and the older generation is dropped when the current one ages out,
// so memory holds at most two spans of traffic. Entries are 128-bit hashes
// of key and nonce (two maphash seeds), fixed-size and pointer-free, so a
// large store costs the garbage collector nothing to scan: about 40 bytes
// a request, e.g. some 50 MB at 2,000 requests/s sustained with the
// default 5 minute window.
type nonceStore struct {
	span        time.Duration
	seed, seed2 maphash.Seed
	shards      [64]nonceShard
}

type nonceID [2]uint64

type nonceShard struct {
	mu        sync.Mutex
	cur, prev map[nonceID]struct{}
	started   time.Time
}

func newNonceStore(window time.Duration) *nonceStore {
	return &nonceStore{span: 2 * window, seed: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
}

func (s *nonceStore) id(key, nonce string) nonceID {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(key)
	h.WriteByte(0)
	h.WriteString(nonce)
	a := h.Sum64()
	h.SetSeed(s.seed2)
	h.WriteString(key)
	h.WriteByte(0)
	h.WriteString(nonce)
	return nonceID{a, h.Sum64()}
}

// add records key's nonce; false if it was seen within the span.
func (s *nonceStore) add(key, nonce string, now time.Time) bool {
	id := s.id(key, nonce)
	sh := &s.shards[id[0]%uint64(len(s.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.cur == nil {
		sh.cur, sh.started = map[nonceID]struct{}{}, now
	}
	if now.Sub(sh.started) >= s.span {
		sh.prev, sh.cur, sh.started = sh.cur, map[nonceID]struct{}{}, now
	}
	if _, ok := sh.cur[id]; ok {
		return false
	}
	if _, ok := sh.prev[id]; ok {
		return false
	}
	sh.cur[id] = struct{}{}
	return true
}
