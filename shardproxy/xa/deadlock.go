package xa

import "slices"

// Deadlocks across shards. Each shard's server detects a cycle of lock
// waits among its own transactions at once, but a cross-shard transaction
// waits on one server while holding locks on another, so a cycle through
// two servers (T1 holds a row on shard A and waits on shard B for T2, which
// holds a row on B and waits on A for T1) is seen by neither: each waits
// out innodb_lock_wait_timeout (50 s by default) with every transaction
// queued behind its rows. The proxy knows which server connections are one
// transaction's; joined with each server's lock waits, that gives the
// whole graph.

// Party is one side of a lock wait: a server connection (Server names the
// server, Conn is the connection's id there), and Tx, the proxy's
// distributed transaction that connection works for (0: none of ours).
type Party[S comparable] struct {
	Server S
	Conn   uint32
	Tx     uint64
}

// Wait is one lock wait on a server: Waiter waits for a lock Holder holds.
type Wait[S comparable] struct {
	Waiter, Holder Party[S]
}

// Victims returns the distributed transactions to roll back so that no
// cycle of waits through more than one server remains: in each such cycle
// the transaction of ours with the highest id (the one begun last, which
// has done the least), until none is left. A cycle within one server is
// that server's to break; a cycle with no transaction of ours the proxy
// cannot break (another proxy's, or the server's own connections).
func Victims[S comparable](waits []Wait[S]) []uint64 {
	type node struct {
		tx     uint64
		server S
		conn   uint32
	}
	key := func(p Party[S]) node {
		if p.Tx != 0 {
			return node{tx: p.Tx} // one node for all its connections
		}
		return node{server: p.Server, conn: p.Conn}
	}
	type edge struct {
		to     node
		server S
	}
	var victims []uint64
	dead := map[uint64]bool{}
	for {
		out := map[node][]edge{}
		var nodes []node
		add := func(n node) {
			if _, ok := out[n]; !ok {
				out[n] = nil
				nodes = append(nodes, n)
			}
		}
		for _, w := range waits {
			if dead[w.Waiter.Tx] || dead[w.Holder.Tx] {
				continue // rolled back: its waits and locks go
			}
			a, b := key(w.Waiter), key(w.Holder)
			if a == b {
				continue
			}
			add(a)
			add(b)
			out[a] = append(out[a], edge{to: b, server: w.Waiter.Server})
		}
		var victim uint64
		for _, comp := range components(nodes, func(n node) []node {
			tos := make([]node, len(out[n]))
			for i, e := range out[n] {
				tos[i] = e.to
			}
			return tos
		}) {
			if len(comp) < 2 {
				continue
			}
			in := map[node]bool{}
			for _, n := range comp {
				in[n] = true
			}
			var servers []S
			var best uint64
			for _, n := range comp {
				for _, e := range out[n] {
					if in[e.to] && !slices.Contains(servers, e.server) {
						servers = append(servers, e.server)
					}
				}
				best = max(best, n.tx)
			}
			if len(servers) >= 2 && best != 0 {
				victim = best
				break
			}
		}
		if victim == 0 {
			return victims
		}
		victims = append(victims, victim)
		dead[victim] = true
	}
}

// components returns the strongly connected components of the graph
// (Tarjan's algorithm).
func components[N comparable](nodes []N, next func(N) []N) [][]N {
	index, low := map[N]int{}, map[N]int{}
	onStack := map[N]bool{}
	var stack []N
	var out [][]N
	var visit func(N)
	visit = func(v N) {
		index[v] = len(index)
		low[v] = index[v]
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range next(v) {
			if _, seen := index[w]; !seen {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []N
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			out = append(out, comp)
		}
	}
	for _, v := range nodes {
		if _, seen := index[v]; !seen {
			visit(v)
		}
	}
	return out
}
