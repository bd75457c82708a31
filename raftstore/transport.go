package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// rpcTag opens a connection carrying this package's own requests (join,
// member meta) rather than Raft's. Raft's connections open with its RPC type,
// a small number, so the two share one port.
const rpcTag byte = 0xA7

// errIsolated is what dials fail with while the node is partitioned.
var errIsolated = errors.New("raftstore: node is partitioned")

// streamLayer is the raft.StreamLayer under raft.NetworkTransport: plain TCP,
// plus a demultiplexer for rpcTag connections and the ability to cut this
// node off from the network (for tests: Cluster.Partition).
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	logger    *slog.Logger
	handleRPC func(net.Conn) // set before serve starts

	raftConns chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	conns    map[*trackedConn]struct{}
	isolated bool
}

func newStreamLayer(ln net.Listener, advertise net.Addr, logger *slog.Logger) *streamLayer {
	return &streamLayer{
		ln:        ln,
		advertise: advertise,
		logger:    logger,
		raftConns: make(chan net.Conn),
		done:      make(chan struct{}),
		conns:     map[*trackedConn]struct{}{},
	}
}

// serve accepts connections until Close.
func (s *streamLayer) serve() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				select {
				case <-s.done:
					return
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				s.logger.Warn("raftstore: accept", "err", err)
				select {
				case <-time.After(10 * time.Millisecond):
				case <-s.done:
					return
				}
				continue
			}
			tc := s.track(c)
			if tc == nil {
				continue
			}
			s.wg.Add(1)
			go s.route(tc)
		}
	}()
}

// route reads a connection's first byte and hands it to Raft or to this
// package's RPC handler.
func (s *streamLayer) route(c *trackedConn) {
	defer s.wg.Done()
	var first [1]byte
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(first[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if first[0] == rpcTag {
		defer c.Close()
		s.handleRPC(c)
		return
	}
	select {
	case s.raftConns <- &prefixConn{Conn: c, prefix: first[:]}:
	case <-s.done:
		c.Close()
	}
}

// Accept hands Raft its incoming connections.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.raftConns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes every open connection; it does not wait
// (see wait), because Raft calls it from its own shutdown.
func (s *streamLayer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.ln.Close()
		s.closeAll()
	})
	return err
}

// wait returns once every goroutine of the stream layer has ended.
func (s *streamLayer) wait() { s.wg.Wait() }

// Addr is the address Raft advertises to its peers.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// advertiseAddr is Config.AdvertiseAddr exactly as configured. A DNS name
// stays a name, resolved by each peer when it dials: a member whose IP
// changes (a rescheduled Kubernetes pod) keeps its place in the
// configuration, and Peers can name members the same way.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	s.mu.Lock()
	isolated := s.isolated
	s.mu.Unlock()
	if isolated {
		return nil, fmt.Errorf("dial %s: %w", address, errIsolated)
	}
	select {
	case <-s.done:
		return nil, net.ErrClosed
	default:
	}
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	tc := s.track(c)
	if tc == nil {
		return nil, fmt.Errorf("dial %s: %w", address, errIsolated)
	}
	return tc, nil
}

// track registers a connection so isolation and Close can cut it; it
// closes c and returns nil if the node is isolated or closed.
func (s *streamLayer) track(c net.Conn) *trackedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	closed := false
	select {
	case <-s.done:
		closed = true
	default:
	}
	if s.isolated || closed {
		c.Close()
		return nil
	}
	tc := &trackedConn{Conn: c, s: s}
	s.conns[tc] = struct{}{}
	return tc
}

// setIsolated cuts (or restores) this node's network: while isolated, it
// dials nobody and drops every connection, both ways, at once.
func (s *streamLayer) setIsolated(on bool) {
	s.mu.Lock()
	s.isolated = on
	s.mu.Unlock()
	if on {
		s.closeAll()
	}
}

func (s *streamLayer) closeAll() {
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	s    *streamLayer
	once sync.Once
}

func (c *trackedConn) Close() error {
	var err error
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// prefixConn gives back the byte route read to tell Raft's connections from
// ours. Raft reads each connection from one goroutine.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
