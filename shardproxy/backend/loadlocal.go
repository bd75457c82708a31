package backend

import (
	"context"
	"errors"
	"fmt"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
)

// LocalFile answers a server's LOCAL INFILE request for file name: it calls
// send with the file's content, a packet's payload at a time (each under
// 16 MiB; a payload of exactly 16 MiB - 1 is continued by the next, as the
// protocol splits packets), and returns when the content is all sent.
// An error aborts the statement: the connection is then closed, so that
// the server rolls back what it loaded (it would take an end-of-file
// packet as the end of a complete file).
type LocalFile func(name string, send func(payload []byte) error) error

// ExecLocal runs a LOAD DATA LOCAL INFILE statement as Exec runs a
// statement (o's database, state and Pre first, in the same round trip),
// answering the server's file request with file. The result is the server's
// OK (affected rows, status flags) and its warning count; a statement error
// is the server's *sqlerror.SQLError.
func (c *Conn) ExecLocal(ctx context.Context, sql string, o ExecOptions, file LocalFile) (*sqltypes.Result, uint16, error) {
	stop, err := c.bound(ctx, &o)
	if err != nil {
		return nil, 0, err
	}
	defer c.unbound(stop)
	if c.c.Buffered() != 0 {
		c.broken = true
		return nil, 0, c.connError(errors.New("backend: unread bytes from the server before a statement"))
	}
	rd := c.reader()
	buf := append(c.buf[:0], 0, 0, 0, 0, mysql.ComQuery)
	buf, nPre := c.appendPrefix(buf, o.DB, o.State, o.Pre)
	buf = append(buf, sql...)
	c.buf = buf[:0]
	if n := len(buf) - 4; n >= 1<<24-1 {
		return nil, 0, sqlerror.NewSQLError(sqlerror.ERNetPacketTooLarge, sqlerror.SSNetError, "Got a packet bigger than 'max_allowed_packet' bytes")
	} else {
		buf[0], buf[1], buf[2], buf[3] = byte(n), byte(n>>8), byte(n>>16), 0
	}
	if o.Timeout > 0 {
		c.setDeadline(o.Timeout)
		defer c.clearDeadline()
	}
	if err := c.snd.send(buf); err != nil {
		c.broken = true
		return nil, 0, c.connError(sqlerror.NewSQLError(sqlerror.CRServerGone, sqlerror.SSUnknownSQLState, err.Error()))
	}
	for i := 0; i < nPre; i++ {
		if err := c.readPrefixResult(rd); err != nil {
			return nil, 0, err
		}
	}
	if nPre > 0 {
		if o.DB != "" {
			c.db = o.DB
		}
		c.state = o.State
	}
	c.infile = file
	defer func() { c.infile = nil }()
	var ok okSink
	_, err = c.readResponse(rd, &ok)
	if err != nil {
		return nil, 0, err
	}
	if !ok.got {
		c.broken = true
		return nil, 0, c.connError(errors.New("backend: LOAD DATA LOCAL answered with rows"))
	}
	return &sqltypes.Result{RowsAffected: ok.p.Affected, InsertID: ok.p.InsertID, StatusFlags: ok.p.Status, Info: ok.info}, ok.p.Warnings, nil
}

// okSink keeps the OK packet of a statement that returns no rows (and its
// info text, "Records: 3  Deleted: 0  Skipped: 0  Warnings: 0"), and
// refuses rows.
type okSink struct {
	p    Packet
	info string
	got  bool
}

func (s *okSink) Packet(p *Packet) error {
	switch p.Kind {
	case PacketOK:
		s.p, s.got = *p, true
		s.info = OKInfo(p.Payload)
		s.p.Payload = nil
	case PacketErr:
	default:
		return errors.New("backend: LOAD DATA LOCAL answered with rows")
	}
	return nil
}

// answerInfile answers the server's LOCAL INFILE request (name: the file
// the statement names) with c.infile's content, an empty packet after it,
// and reads the statement's answer into sink.
func (c *Conn) answerInfile(rd *rawReader, name []byte, sink Sink) (bool, error) {
	file := c.infile
	c.infile = nil // one request per statement
	seq := rd.seq + 1
	var hdr [4]byte
	send := func(payload []byte) error {
		n := len(payload)
		if n > 1<<24-1 {
			return fmt.Errorf("backend: LOCAL INFILE packet of %d bytes", n)
		}
		hdr[0], hdr[1], hdr[2], hdr[3] = byte(n), byte(n>>8), byte(n>>16), seq
		seq++
		if err := c.snd.write(hdr[:]); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		return c.snd.write(payload)
	}
	if err := file(string(name), send); err != nil {
		// The server must not take what it got for the whole file.
		c.broken = true
		return false, err
	}
	if err := send(nil); err != nil {
		c.broken = true
		return false, c.connError(sqlerror.NewSQLError(sqlerror.CRServerGone, sqlerror.SSUnknownSQLState, err.Error()))
	}
	return c.readResponse(rd, sink)
}
