package executor

import (
	"net"
	"sync"
)

// loginGate bounds the connections still in their login (handshake and
// authentication), over all clients and per client address. They do not
// take slots of max_client_connections, which count logged-in clients
// only: connections that never log in cannot lock real clients out, and
// one address cannot hold every login slot.
type loginGate struct {
	mu         sync.Mutex
	total      int
	perHost    map[string]int
	pending    map[uint32]string // connection id → its address, until login or close
	maxTotal   int
	maxPerHost int
}

func newLoginGate(maxTotal, maxPerHost int) *loginGate {
	return &loginGate{perHost: map[string]int{}, pending: map[uint32]string{}, maxTotal: maxTotal, maxPerHost: maxPerHost}
}

// enter admits connection id from addr to its login; false when a bound
// is reached.
func (g *loginGate) enter(id uint32, addr net.Addr) bool {
	host := hostOf(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= g.maxTotal || g.perHost[host] >= g.maxPerHost {
		return false
	}
	g.total++
	g.perHost[host]++
	g.pending[id] = host
	return true
}

// leave ends connection id's login (it logged in, or closed); false when
// it was not in one.
func (g *loginGate) leave(id uint32) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	host, ok := g.pending[id]
	if !ok {
		return false
	}
	delete(g.pending, id)
	g.total--
	if g.perHost[host]--; g.perHost[host] <= 0 {
		delete(g.perHost, host)
	}
	return true
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}
