//go:build unix

package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func pair(t testing.TB) (client, server net.Conn) {
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
	// A request and its answer read in the same wait, small and big.
	for _, req := range [][]byte{[]byte("ping"), big} {
		go func() {
			io.ReadFull(s, make([]byte, len(req)))
			time.Sleep(10 * time.Millisecond)
			s.Write([]byte("pong"))
		}()
		if n, rerr, werr := x.WriteAndRead(req, buf); werr != nil || rerr != nil || string(buf[:n]) != "pong" {
			t.Fatalf("WriteAndRead (%d bytes): %q %v %v", len(req), buf[:n], rerr, werr)
		}
	}
	// A wait that times out is the write's error; nothing was read.
	go io.ReadFull(s, make([]byte, 4))
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if n, rerr, werr := x.WriteAndRead([]byte("lost"), buf); n != 0 || rerr != nil || !errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteAndRead past its deadline: %d %v %v", n, rerr, werr)
	}
	c.SetReadDeadline(time.Time{})
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

// TestWriteAndReadPeerGone: a peer that closes instead of answering is the
// read's error.
func TestWriteAndReadPeerGone(t *testing.T) {
	c, s := pair(t)
	x := New(c)
	go func() {
		io.ReadFull(s, make([]byte, 4))
		s.Close()
	}()
	if n, rerr, werr := x.WriteAndRead([]byte("ping"), make([]byte, 8)); n != 0 || rerr != io.EOF || werr != nil {
		t.Fatalf("got %d %v %v, want the read's EOF", n, rerr, werr)
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

// BenchmarkRequest: one request and its answer over loopback TCP, the
// answer read after WriteAndWait or in the same wait with WriteAndRead.
// cpu-ns/op is the process's CPU (the answering side's included, the same
// for both), which the shared machine's other load does not inflate as it
// does wall-clock time.
func BenchmarkRequest(b *testing.B) {
	c, s := pair(b)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := s.Read(buf)
			if err != nil {
				return
			}
			if _, err := s.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	x := New(c)
	req, buf := []byte("ping"), make([]byte, 64)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.Run("WriteAndWait+Read", func(b *testing.B) {
		t0 := cpu()
		for b.Loop() {
			if err := x.WriteAndWait(req); err != nil {
				b.Fatal(err)
			}
			if _, err := x.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpu()-t0)/float64(b.N), "cpu-ns/op")
	})
	b.Run("WriteAndRead", func(b *testing.B) {
		t0 := cpu()
		for b.Loop() {
			if _, rerr, werr := x.WriteAndRead(req, buf); rerr != nil || werr != nil {
				b.Fatal(rerr, werr)
			}
		}
		b.ReportMetric(float64(cpu()-t0)/float64(b.N), "cpu-ns/op")
	})
}
