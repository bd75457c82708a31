package wire

import (
	"bytes"
	"io"
	"net"
	"slices"
	"testing"
	"testing/iotest"
	"time"

	"github.com/strata-db/strata/shardproxy/internal/rawio"
)

// TestReaderMatchesBufio reads the same bytes through the reader and
// checks what Peek, Read and Discard return, and that the buffer goes back
// whenever everything in it was read.
func TestReaderMatchesBufio(t *testing.T) {
	data := make([]byte, 3*readBufSize+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, src := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(data) },
		"one-byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
	} {
		rd := newReader(nil, src())
		var got []byte
		for step := 0; ; step++ {
			switch step % 4 {
			case 0:
				p, err := rd.Peek(9)
				if err == nil && !bytes.Equal(p, data[len(got):len(got)+9]) {
					t.Fatalf("peek at %d: % x", len(got), p)
				}
			case 1:
				n, _ := rd.Discard(5)
				got = append(got, data[len(got):len(got)+n]...)
			case 2:
				buf := make([]byte, 1000)
				n, _ := rd.Read(buf)
				got = append(got, buf[:n]...)
			case 3:
				buf := make([]byte, readBufSize+3) // large: read past the buffer
				n, _ := rd.Read(buf)
				got = append(got, buf[:n]...)
			}
			if rd.Buffered() == 0 && rd.b != nil {
				t.Fatal("an empty buffer was kept")
			}
			if len(got) == len(data) {
				break
			}
			if step > 1e6 {
				t.Fatal("no progress")
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatal("bytes differ")
		}
		if _, err := rd.Read(make([]byte, 10)); err != io.EOF {
			t.Fatalf("at the end: %v", err)
		}
	}
	if _, err := newReader(nil, bytes.NewReader(data)).Peek(readBufSize + 1); err == nil {
		t.Fatal("peek over the buffer's size: no error")
	}
}

// TestReaderIdleHoldsNoBuffer: on a socket, a reader waiting for bytes
// holds no buffer; bytes that arrive are read whole.
func TestReaderIdleHoldsNoBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	raw := rawio.New(server)
	if raw == nil {
		t.Skip("no raw system calls here")
	}
	rd := newReader(raw, server)
	got := make(chan []byte)
	go func() {
		p, err := rd.Peek(6)
		if err != nil {
			t.Error(err)
		}
		got <- bytes.Clone(p)
	}()
	time.Sleep(50 * time.Millisecond) // the reader waits
	if _, err := client.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := client.Write([]byte("defg")); err != nil {
		t.Fatal(err)
	}
	if p := <-got; string(p) != "abcdef" {
		t.Fatalf("peek: %q", p)
	}
	if n, err := rd.Discard(7); n != 7 || err != nil {
		t.Fatalf("discard: %d %v", n, err)
	}
	if rd.b != nil {
		t.Fatal("buffer kept after every byte was read")
	}
	client.Close()
	if _, err := rd.Read(make([]byte, 4)); err != io.EOF {
		t.Fatalf("after close: %v", err)
	}
}

// waitSource records, for each read, whether the reader held a buffer
// while the read (which would block on a TLS connection) ran.
type waitSource struct {
	rd      *reader
	data    []byte
	holding []bool
}

func (w *waitSource) Read(p []byte) (int, error) {
	if len(w.data) == 0 {
		return 0, io.EOF
	}
	if w.rd.Buffered() == 0 {
		w.holding = append(w.holding, w.rd.b != nil)
	}
	n := copy(p, w.data[:min(len(w.data), 7)]) // a record at a time
	w.data = w.data[n:]
	return n, nil
}

// TestReaderBlockingSourceWaitsWithoutBuffer: a source whose reads block
// (TLS) is waited on with no buffer lent whenever the last packet was
// consumed whole.
func TestReaderBlockingSourceWaitsWithoutBuffer(t *testing.T) {
	pkt := []byte{5, 0, 0, 0, 3, 'S', 'E', 'L', 'E'}
	src := &waitSource{data: bytes.Repeat(pkt, 3)}
	rd := newReader(nil, src)
	src.rd = rd
	for i := range 3 {
		if _, err := rd.Peek(len(pkt)); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if n, err := rd.Discard(len(pkt)); n != len(pkt) || err != nil {
			t.Fatalf("packet %d: discard %d %v", i, n, err)
		}
	}
	// Reads of 7 bytes straddle packets; every read that began with
	// nothing buffered held nothing.
	if len(src.holding) == 0 || slices.Contains(src.holding, true) {
		t.Fatalf("a buffer held during reads with nothing buffered: %v", src.holding)
	}
	if rd.b != nil {
		t.Fatal("buffer kept after the last packet")
	}
}
