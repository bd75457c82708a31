package wire

import (
	"errors"
	"fmt"
	"time"
)

// LOAD DATA LOCAL INFILE on the client's side. The statement reaches the
// handler through the listener as any COM_QUERY; while the handler runs it,
// nothing else reads from or writes to the client, so the handler asks for
// the file here (RequestFile): the server's request (0xFB and the file's
// name) goes out with sequence number 1, and the client's content packets
// come back numbered on from 2, ending with an empty packet. The answer
// the listener then writes must continue that numbering: Write renumbers
// the command's remaining packets (renumber), until the next command.
//
// The greeting announces CLIENT_LOCAL_FILES, as MariaDB's does with
// local_infile on; whether the client announced it back decides whether it
// may be asked (LocalFiles).

// clientLocalFiles is CLIENT_LOCAL_FILES (vitess has no constant for it).
const clientLocalFiles = 0x80

// fileReadTimeout bounds the wait for each packet of a client's file.
const fileReadTimeout = 30 * time.Second

// LocalFiles reports whether the client announced CLIENT_LOCAL_FILES in its
// handshake response: only then may it be asked for a file.
func (f *Conn) LocalFiles() bool { return f.localFiles }

// errFileAborted: the client's file transfer could not be read whole.
var errFileAborted = errors.New("wire: the client's LOCAL INFILE content was cut off")

// RequestFile asks the client for file name (a LOAD DATA LOCAL INFILE's)
// and hands each packet of its content to each, in order (payload valid
// until each returns; a payload of 16 MiB - 1 bytes is continued by the
// next). The transfer is always read to its end, so that the connection
// stays in step: the first error each returns is returned after it. An
// empty file gives no call. A failure to read from the client is
// returned as it is (the connection is then unusable).
func (f *Conn) RequestFile(name string, each func(payload []byte) error) error {
	if f.renum.add != 0 {
		return errors.New("wire: one LOCAL INFILE request per statement text")
	}
	req := make([]byte, 0, 5+len(name))
	req = appendPacket(req, 1, append([]byte{0xfb}, name...))
	if _, err := f.w.Write(req); err != nil {
		return err
	}
	// A client that stops sending holds a shard's connection (and what
	// the load locked): as MariaDB's net_read_timeout, 30 s per packet.
	defer func() { _ = f.Conn.SetReadDeadline(time.Time{}) }()
	var werr error
	seq := byte(1)
	lastFull := false
	buf := make([]byte, 0, 64<<10)
	for {
		_ = f.Conn.SetReadDeadline(time.Now().Add(fileReadTimeout))
		var hdr [4]byte
		if _, err := readFull(f.r, hdr[:]); err != nil {
			return fmt.Errorf("%w: %w", errFileAborted, err)
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		seq = hdr[3]
		if n == 0 && !lastFull {
			break
		}
		lastFull = n == 0xffffff
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := readFull(f.r, buf); err != nil {
			return fmt.Errorf("%w: %w", errFileAborted, err)
		}
		if werr == nil {
			werr = each(buf)
		}
	}
	// The answer's first packet is the listener's number 1.
	f.renum = renumber{add: seq}
	return werr
}

// renumber moves up the sequence number of every packet the listener
// writes for the rest of the command by add. It follows the packets
// across writes (the listener's buffer may cut one anywhere), holding back
// a header cut short until its end arrives.
type renumber struct {
	add  byte
	left int     // bytes of the current packet's body still to come
	hdr  [4]byte // a header cut short
	nhdr int
}

// apply returns p with every header's sequence number moved (a copy; held
// back bytes come first).
func (r *renumber) apply(p []byte) []byte {
	out := make([]byte, 0, r.nhdr+len(p))
	for len(p) > 0 {
		if r.left > 0 {
			k := min(r.left, len(p))
			out = append(out, p[:k]...)
			p, r.left = p[k:], r.left-k
			continue
		}
		k := copy(r.hdr[r.nhdr:], p)
		r.nhdr += k
		p = p[k:]
		if r.nhdr < 4 {
			break
		}
		r.hdr[3] += r.add
		r.left = int(r.hdr[0]) | int(r.hdr[1])<<8 | int(r.hdr[2])<<16
		out = append(out, r.hdr[:]...)
		r.nhdr = 0
	}
	return out
}
