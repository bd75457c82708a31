package backend

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
)

// Pipelines: short reads of many sessions share a few connections per
// server, each statement written as it comes, without waiting for the
// answers to those before it, and the answers read in order, each by the
// session it belongs to. MySQL's protocol allows it (a server reads its
// next command when it has answered one), and a TCP hop cannot do it.
//
// Why: through a proxy that gives each statement a connection of its own,
// every statement wakes a server thread that went to sleep after the last
// one, and the proxy reads each answer in a system call of its own. On a
// pipeline the server's thread finds the next statement waiting when it
// has answered one, and one read often brings several answers. With
// sysbench's point selects on the 2-core machine (load client, proxy and
// server on the same cores) one pipeline gave about 1.2× HAProxy's
// throughput where a connection per statement gives about 0.9×
// (bench proxy, README).
//
// The price is head-of-line blocking: an answer waits for those before it.
// The caller sends only statements that answer fast and small (the lane's
// point selects outside transactions), Pipe* gives up a pipeline whose
// answer grows past a limit (the statement then runs again on a pooled
// connection, as the lane does for a read whose connection failed), and
// a pipeline takes a statement only while fewer than Options.PipelineDepth
// wait on it, else the next pipeline, else none (ErrPipelineFull: the
// caller takes a pooled connection).

// ErrPipelineFull: no pipeline of the pool takes the statement now (all at
// their depth, or none configured); nothing was sent.
var ErrPipelineFull = errors.New("backend: no pipeline has room")

// ErrPipeWouldWait: the statement would have waited for a lock (a table's
// metadata lock that DDL or LOCK TABLES holds or waits for, a table flush),
// and a pipeline's statements never wait: every statement queued behind it,
// on whatever table, would wait as long (lock_wait_timeout, a year by
// default). A pipelined connection has lock_wait_timeout 0; the statement
// read nothing and changed nothing: the caller runs it on a connection of
// its own, where it waits as it would without pipelines. The sink got the
// server's ERR packet (1205).
var ErrPipeWouldWait = errors.New("backend: the statement would wait for a lock on a pipeline")

// pipeLockWait is the pipelined connection's lock_wait_timeout; a session
// that set its own does not use pipelines (its SET would undo this one).
const (
	pipeLockWait    = "SET SESSION lock_wait_timeout = 0"
	lockWaitTimeout = "lock_wait_timeout"
)

// pipeline is one pipelined connection of a pool.
type pipeline struct {
	pool *Pool
	// mu orders the writes and the queue; the turn at the queue's head
	// reads without it.
	mu sync.Mutex
	c  *Conn // nil until first used, and after a failed one was closed
	q  []*PipeTurn
	// dialing: its connection is being opened (without mu: a dial to a
	// server that does not answer takes ConnectTimeout); meanwhile it takes
	// no statement.
	dialing bool
}

// PipeTurn is a statement's place in a pipeline. A session keeps one and
// uses it for one statement at a time.
type PipeTurn struct {
	ch chan struct{} // the turn before it hands over the reading
	c  *Conn
	// What to read before the statement's own answer: nPre results of the
	// statements put in front of it, drain whole responses (the DO 0 that
	// carried a prepared statement's prefix), and the answer to a
	// COM_STMT_PREPARE sent with it (prep).
	nPre, drain int
	prep        bool
	key         stmtKey
	params      int
	// Head is how long the statement held the head of the queue (read its
	// answer while the others waited).
	Head time.Duration
}

// NewPipeTurn returns a turn for one session.
func NewPipeTurn() *PipeTurn { return &PipeTurn{ch: make(chan struct{}, 1)} }

// lastStmtID is MariaDB's "the statement prepared last on this connection"
// in COM_STMT_EXECUTE, which lets a prepare and its first execute go
// together.
const lastStmtID = 0xffffffff

// PipeQuery runs a text statement as QueryRaw does, on a pipeline.
func (p *Pool) PipeQuery(sql, db string, st *State, timeout time.Duration, t *PipeTurn, sink Sink) error {
	if len(sql) > bigStatement {
		return ErrPipelineFull
	}
	return p.pipe(t, st, timeout, sink, func(c *Conn) (bool, error) {
		var buf []byte
		buf, t.nPre = c.queryPacket(sql, db, st)
		setLen(buf, 0)
		if t.nPre > 0 {
			c.applied(db, st)
		}
		return true, c.snd.write(buf)
	})
}

// PipeStmt runs a prepared statement as ExecStmtRaw does, on a pipeline.
// A statement the connection has not prepared goes with its COM_STMT_PREPARE
// on MariaDB; elsewhere it is ErrPipelineFull.
func (p *Pool) PipeStmt(text, db string, st *State, params int, args []byte, timeout time.Duration, t *PipeTurn, sink Sink) error {
	if len(args) > bigStatement || len(text) > bigStatement {
		return ErrPipelineFull
	}
	return p.pipe(t, st, timeout, sink, func(c *Conn) (bool, error) {
		newDB := c.db
		if db != "" {
			newDB = db
		}
		key := stmtKey{db: newDB, st: st, text: text}
		s, ok := c.stmts[key]
		if !ok && !strings.Contains(c.c.ServerVersion, "MariaDB") {
			return false, nil
		}
		buf := c.buf[:0]
		if newDB != c.db || st != c.state {
			// A prepared statement carries no prefix: a DO 0 does.
			buf = append(buf, 0, 0, 0, 0, mysql.ComQuery)
			buf, t.nPre = c.appendPrefix(buf, db, st, "")
			buf = append(buf, "DO 0"...)
			setLen(buf, 0)
			t.drain = 1
			c.applied(db, st)
		}
		if !ok {
			at := len(buf)
			buf = append(buf, 0, 0, 0, 0, mysql.ComPrepare)
			buf = append(buf, text...)
			setLen(buf, at)
			t.prep, t.key, t.params = true, key, params
			s.id = lastStmtID
		}
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0, mysql.ComStmtExecute)
		buf = binary.LittleEndian.AppendUint32(buf, s.id)
		buf = append(buf, args...)
		setLen(buf, at)
		c.buf = buf[:0]
		return true, c.snd.write(buf)
	})
}

// setLen writes the header of the packet that starts at buf[at:].
func setLen(buf []byte, at int) {
	n := len(buf) - at - 4
	buf[at], buf[at+1], buf[at+2], buf[at+3] = byte(n), byte(n>>8), byte(n>>16), 0
}

// pipe queues t on a pipeline with room, writing its request with write
// (false: not for a pipeline, nothing written), and reads its answer into
// sink when its turn comes.
func (p *Pool) pipe(t *PipeTurn, st *State, timeout time.Duration, sink Sink, write func(c *Conn) (bool, error)) error {
	t.nPre, t.drain, t.prep, t.Head = 0, 0, false, 0
	if _, ok := st.Get(lockWaitTimeout); ok {
		return ErrPipelineFull
	}
	pl, head, err := p.enqueue(t, write)
	if err != nil {
		return err
	}
	if !head {
		<-t.ch
	}
	// However the read ends (a panic of sink included), the turn passes;
	// a read that did not end cleanly leaves the connection out of step.
	clean := false
	defer func() {
		if !clean {
			t.c.broken = true
		}
		pl.pop()
	}()
	start := time.Now()
	err = pl.read(t, timeout, sink)
	t.Head = time.Since(start)
	clean = true
	return err
}

// enqueue writes t's request on the first pipeline with room and puts t
// in its queue; head reports that no turn is before it.
func (p *Pool) enqueue(t *PipeTurn, write func(c *Conn) (bool, error)) (pl *pipeline, head bool, err error) {
	for _, x := range p.pipes {
		x.mu.Lock()
		if !x.dialing && len(x.q) < p.opts.PipelineDepth && (len(x.q) == 0 || !x.c.dead()) {
			pl = x
			break
		}
		x.mu.Unlock()
	}
	if pl == nil {
		return nil, false, ErrPipelineFull
	}
	if pl.c == nil || pl.c.dead() {
		// The queue is empty: replace a failed connection, without mu,
		// which the statements that look for a pipeline meanwhile take.
		old := pl.c
		pl.c, pl.dialing = nil, true
		pl.mu.Unlock()
		if old != nil {
			p.closePiped(old)
		}
		c, err := p.dialPiped()
		pl.mu.Lock()
		pl.dialing = false
		if err == nil {
			p.mu.Lock()
			err = p.refusal() // closed while it dialed: closePipes has been
			p.mu.Unlock()
			if err != nil {
				p.closePiped(c)
			}
		}
		if err != nil {
			pl.mu.Unlock()
			return nil, false, err
		}
		c.reader() // the socket the writes use
		pl.c = c
	}
	defer pl.mu.Unlock()
	c := pl.c
	ok, err := write(c)
	if !ok {
		return nil, false, ErrPipelineFull
	}
	if err != nil {
		c.broken = true
		return nil, false, c.connError(sqlerror.NewSQLError(sqlerror.CRServerGone, sqlerror.SSUnknownSQLState, err.Error()))
	}
	p.piped.Add(1)
	t.c = c
	pl.q = append(pl.q, t)
	return pl, len(pl.q) == 1, nil
}

// pop ends the turn at the head and hands the reading to the next.
func (pl *pipeline) pop() {
	pl.mu.Lock()
	copy(pl.q, pl.q[1:])
	pl.q[len(pl.q)-1] = nil
	pl.q = pl.q[:len(pl.q)-1]
	if len(pl.q) > 0 {
		pl.q[0].ch <- struct{}{}
	}
	pl.mu.Unlock()
}

// read reads turn t's answer, at the head of the queue.
func (pl *pipeline) read(t *PipeTurn, timeout time.Duration, sink Sink) error {
	c := t.c
	if c.dead() {
		// A turn before it failed the connection: its request's fate is
		// unknown, as for any statement whose connection failed. Not
		// connError: what failed it said so already (a server's failure
		// went through connError, which dropped the pool's idle
		// connections), and a turn the caller gave up (an answer too
		// large) says nothing about the server and its other connections.
		if why := c.intr.Load(); why != nil {
			return c.pool.interrupted(*why)
		}
		return c.pool.wrap(sqlerror.CRServerLost, errors.New("a pipelined connection failed before the answer"))
	}
	rd := c.reader()
	if timeout > 0 {
		c.setDeadline(timeout)
		defer c.clearDeadline()
	}
	for i := 0; i < t.nPre; i++ {
		if err := c.readPrefixResult(rd); err != nil {
			return err
		}
	}
	for i := 0; i < t.drain; i++ {
		var d drain
		if _, err := c.readResponse(rd, &d); err != nil {
			if !c.broken {
				c.broken = true // the connection's state is not what the writes assumed
			}
			return err
		}
	}
	if t.prep {
		s, err := c.readPrepare(rd)
		if err == nil && s.params != t.params {
			err = errors.Join(ErrPrepare, errors.New("parameter count differs"))
		}
		if err != nil {
			// The execute that went with it failed or ran the wrong
			// statement: read its answer and drop it.
			var d drain
			if _, derr := c.readResponse(rd, &d); derr != nil && c.broken {
				return derr
			}
			if s.id != 0 {
				pl.mu.Lock()
				cerr := c.closeStmt(s.id)
				pl.mu.Unlock()
				if cerr != nil {
					return cerr
				}
			}
			return wouldWait(err)
		}
		pl.mu.Lock()
		err = pl.remember(c, t.key, s)
		pl.mu.Unlock()
		if err != nil {
			return err
		}
	}
	_, err := c.readResponse(rd, sink)
	return wouldWait(err)
}

// wouldWait makes the server's "lock wait timeout" of a pipelined
// statement ErrPipeWouldWait (and no longer ErrPrepare: the statement is
// fine, its table was locked).
func wouldWait(err error) error {
	var se *sqlerror.SQLError
	if errors.As(err, &se) && se.Number() == sqlerror.ERLockWaitTimeout {
		return fmt.Errorf("%w: %w", ErrPipeWouldWait, se)
	}
	return err
}

// remember keeps a statement prepared on the pipeline's connection; two
// turns that prepared the same text keep the first. Call with mu held.
func (pl *pipeline) remember(c *Conn, key stmtKey, s stmt) error {
	if _, ok := c.stmts[key]; ok {
		return c.closeStmt(s.id)
	}
	return c.keepStmt(key, s)
}

// dead reports whether the connection failed or was interrupted.
func (c *Conn) dead() bool { return c.broken || c.cut.Load() || c.intr.Load() != nil }

// dialPiped opens a pipeline's connection. It takes no slot of MaxOpen:
// a pipeline is open for the pool's life, and in a slot it would starve
// statements that need a connection of their own when MaxOpen is small.
// It is counted in use (InterruptInUse closes it).
func (p *Pool) dialPiped() (*Conn, error) {
	p.mu.Lock()
	err := p.refusal()
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c, err := p.dial(context.Background(), true)
	if err != nil {
		return nil, err
	}
	if _, _, err := c.exec(pipeLockWait, "", nil, "", 0, p.opts.ConnectTimeout); err != nil {
		c.broken = true
		p.closePiped(c)
		return nil, err
	}
	c.piped = true
	return c, nil
}

// closePiped closes a pipeline's connection.
func (p *Pool) closePiped(c *Conn) {
	c.close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// closePipes closes the pipelines' connections when the pool closes.
func (p *Pool) closePipes() {
	for _, pl := range p.pipes {
		pl.mu.Lock()
		if c := pl.c; c != nil {
			// A turn still reading fails with a connection error.
			c.broken = true
			c.close()
		}
		pl.mu.Unlock()
	}
}
