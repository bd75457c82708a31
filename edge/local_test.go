package edge

import (
	"net/http/httptest"
	"testing"
)

// TestConsoleLocalOnlyLoopback: local mode admits a loopback peer only
// when nothing says the request comes from elsewhere: a proxy's headers,
// a Host that is not loopback (a DNS name rebound to 127.0.0.1) or a
// foreign Origin (another site's page making the browser POST).
func TestConsoleLocalOnlyLoopback(t *testing.T) {
	s := &Server{cfg: DefaultConfig()}
	s.cfg.Console.Local = true
	for _, tc := range []struct {
		name, remote, host string
		hdr                map[string]string
		want               bool
	}{
		{"loopback", "127.0.0.1:5000", "127.0.0.1:8080", nil, true},
		{"localhost", "[::1]:5000", "localhost:8080", nil, true},
		{"same origin", "127.0.0.1:5000", "127.0.0.1:8080", map[string]string{"Origin": "http://127.0.0.1:8080"}, true},
		{"remote peer", "192.0.2.1:5000", "127.0.0.1:8080", nil, false},
		{"xff", "127.0.0.1:5000", "127.0.0.1:8080", map[string]string{"X-Forwarded-For": "192.0.2.1"}, false},
		{"forwarded", "127.0.0.1:5000", "127.0.0.1:8080", map[string]string{"Forwarded": "for=192.0.2.1"}, false},
		{"x-real-ip", "127.0.0.1:5000", "127.0.0.1:8080", map[string]string{"X-Real-IP": "192.0.2.1"}, false},
		{"rebound name", "127.0.0.1:5000", "evil.example:8080", nil, false},
		{"foreign origin", "127.0.0.1:5000", "127.0.0.1:8080", map[string]string{"Origin": "https://evil.example"}, false},
		{"null origin", "127.0.0.1:5000", "127.0.0.1:8080", map[string]string{"Origin": "null"}, false},
	} {
		r := httptest.NewRequest("POST", "/console/api/switchover", nil)
		r.RemoteAddr, r.Host = tc.remote, tc.host
		for k, v := range tc.hdr {
			r.Header.Set(k, v)
		}
		if got := s.consoleLocal(r); got != tc.want {
			t.Errorf("%s: consoleLocal = %v, want %v", tc.name, got, tc.want)
		}
	}
	s.cfg.Console.Local = false
	r := httptest.NewRequest("GET", "/console/api/state", nil)
	r.RemoteAddr, r.Host = "127.0.0.1:5000", "127.0.0.1:8080"
	if s.consoleLocal(r) {
		t.Error("local mode off: admitted")
	}
}
