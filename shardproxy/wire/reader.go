package wire

import (
	"bufio"
	"io"
	"sync"

	"github.com/strata-db/strata/shardproxy/internal/rawio"
)

// readBufSize is a read buffer's size: a whole packet of the fast lane
// (laneMaxPacket) and its header fit.
const readBufSize = 16 << 10

// readBufs are the read buffers the connections of the process borrow. A
// pool rather than a buffer per connection: a connection holds one only
// while bytes of a packet are in it, so that thousands of idle connections
// hold none (16 KiB each, most of what an idle connection cost).
var readBufs = sync.Pool{New: func() any { return new([readBufSize]byte) }}

// lender lends readBufs' buffers to rawio.Conn.ReadLent.
type lender struct{}

func (lender) Borrow() []byte  { return readBufs.Get().(*[readBufSize]byte)[:] }
func (lender) Return(b []byte) { readBufs.Put((*[readBufSize]byte)(b)) }

// reader buffers a client's bytes like a bufio.Reader (Peek, Read, Discard)
// in a buffer borrowed from readBufs, given back whenever every byte in it
// was consumed. On a plain socket (raw) it is borrowed only once the
// socket has bytes; another source (TLS, a connection without a
// descriptor), whose reads block, is read into small while no buffer is
// lent, and the buffer borrowed once that read returns.
//
// A slice Peek returns is valid until the next Read or Discard, as with
// bufio.Reader (after which the buffer may be another connection's).
type reader struct {
	raw  *rawio.Conn // nil: read src
	src  io.Reader
	b    []byte // the borrowed buffer, nil when none
	r, w int    // unread bytes are b[r:w]
	err  error  // the source's error, returned once the bytes before it are read

	small [16]byte // a blocking source's first bytes, read while no buffer is lent
}

func newReader(raw *rawio.Conn, src io.Reader) *reader { return &reader{raw: raw, src: src} }

// Size is the buffer's size: the most Peek can return.
func (rd *reader) Size() int { return readBufSize }

// Buffered is how many bytes can be read without reading the source.
func (rd *reader) Buffered() int { return rd.w - rd.r }

// fill reads once more from the source (at least one byte or an error).
func (rd *reader) fill() {
	if rd.b == nil && rd.raw != nil {
		b, n, err := rd.raw.ReadLent(lender{})
		if b != nil {
			rd.b, rd.r, rd.w = b, 0, n
		}
		rd.err = err
		rd.release()
		return
	}
	if rd.b == nil {
		// Wait for a blocking source without a buffer: a TLS client idle
		// for hours holds none of ours.
		n, err := readSome(rd.src, rd.small[:])
		if n > 0 {
			rd.b, rd.r = lender{}.Borrow(), 0
			rd.w = copy(rd.b, rd.small[:n])
		}
		rd.err = err
		return
	}
	if rd.r > 0 {
		rd.w = copy(rd.b, rd.b[rd.r:rd.w])
		rd.r = 0
	}
	var src io.Reader = rd.src
	if rd.raw != nil {
		src = rd.raw
	}
	n, err := readSome(src, rd.b[rd.w:])
	rd.w += n
	rd.err = err
	rd.release()
}

// readSome reads at least one byte or fails, as bufio.Reader does (a
// source that keeps returning nothing is io.ErrNoProgress).
func readSome(src io.Reader, p []byte) (int, error) {
	for range 100 {
		if n, err := src.Read(p); n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.ErrNoProgress
}

// release gives the buffer back when it holds nothing unread.
func (rd *reader) release() {
	if rd.b != nil && rd.r == rd.w {
		lender{}.Return(rd.b)
		rd.b, rd.r, rd.w = nil, 0, 0
	}
}

// readErr returns the source's error once, as bufio.Reader does.
func (rd *reader) readErr() error {
	err := rd.err
	rd.err = nil
	return err
}

// Peek returns the next n bytes without consuming them; fewer, with the
// error, when the source ends first (bufio.ErrBufferFull when n is more
// than the buffer).
func (rd *reader) Peek(n int) ([]byte, error) {
	for rd.w-rd.r < n && rd.w-rd.r < readBufSize && rd.err == nil {
		rd.fill()
	}
	if n > readBufSize {
		return rd.b[rd.r:rd.w], bufio.ErrBufferFull
	}
	if avail := rd.w - rd.r; avail < n {
		if avail == 0 {
			return nil, rd.readErr()
		}
		return rd.b[rd.r:rd.w], rd.readErr()
	}
	return rd.b[rd.r : rd.r+n], nil
}

// Read reads into p what is buffered, or else reads the source once (into
// p directly when p is at least a buffer).
func (rd *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		if rd.w > rd.r {
			return 0, nil
		}
		return 0, rd.readErr()
	}
	if rd.r == rd.w {
		if rd.err != nil {
			return 0, rd.readErr()
		}
		if len(p) >= readBufSize {
			if rd.raw != nil {
				return rd.raw.Read(p)
			}
			return rd.src.Read(p)
		}
		rd.fill()
		if rd.r == rd.w {
			return 0, rd.readErr()
		}
	}
	n := copy(p, rd.b[rd.r:rd.w])
	rd.r += n
	rd.release()
	return n, nil
}

// Discard skips the next n bytes.
func (rd *reader) Discard(n int) (int, error) {
	done := 0
	for done < n {
		if rd.r == rd.w {
			if rd.err != nil {
				return done, rd.readErr()
			}
			rd.fill()
			continue
		}
		k := min(n-done, rd.w-rd.r)
		rd.r += k
		done += k
		rd.release()
	}
	return done, nil
}
