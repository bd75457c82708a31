//go:build unix

package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-done
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestConn: reads, writes of every size (past the socket's buffer, where
// the write waits for room), EOF, deadlines and Close behave as net.Conn's.
func TestConn(t *testing.T) {
	c, s := pair(t)
	x := New(c)
	if x == nil {
		t.Fatal("no raw conn for TCP")
	}
	// A write larger than the socket buffers: the peer reads it as it comes.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(s, int64(len(big))))
		got <- b
	}()
	if n, err := x.Write(big); err != nil || n != len(big) {
		t.Fatalf("write: %d %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("peer read %d bytes, not what was written", len(b))
	}
	// Reads wait for data.
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Write([]byte("hello"))
	}()
	buf := make([]byte, 64)
	if n, err := x.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read: %q %v", buf[:n], err)
	}
	// A request and its answer.
	go func() {
		b := make([]byte, 4)
		io.ReadFull(s, b)
		s.Write(append(b, '!'))
	}()
	if err := x.WriteAndWait([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if n, err := x.Read(buf); err != nil || string(buf[:n]) != "ping!" {
		t.Fatalf("answer: %q %v", buf[:n], err)
	}
	// A request larger than the socket buffers, answered once read whole.
	go func() {
		io.ReadFull(s, make([]byte, len(big)))
		s.Write([]byte("ok"))
	}()
	if err := x.WriteAndWait(big); err != nil {
		t.Fatal(err)
	}
	if n, err := x.Read(buf); err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("answer to a big request: %q %v", buf[:n], err)
	}
	// Deadlines.
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := x.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	// EOF when the peer closes.
	s.Close()
	if _, err := x.Read(buf); err != io.EOF {
		t.Fatalf("EOF: %v", err)
	}
}

// TestClose: Close wakes a waiting read.
func TestClose(t *testing.T) {
	c, _ := pair(t)
	x := New(c)
	errc := make(chan error, 1)
	go func() {
		_, err := x.Read(make([]byte, 8))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("close did not wake the read")
	}
	if _, err := x.Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
}
