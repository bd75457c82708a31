package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/localdb"
)

// TestInterruptInUse: Pool.InterruptInUse and Pool.Eject end what waits on
// a server at once, on every side of a connection, without touching the
// idle connections; Eject also refuses connections until Restore. One
// MariaDB for all the cases; the pools' own health checks are slowed so
// that they do not move connections under the test's feet.
func TestInterruptInUse(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	srv := topo.Shards()[0].Primary()
	ctx := context.Background()
	quiet := func(o *Options) { o.HealthCheckInterval = time.Minute }
	get := func(t *testing.T, p *Pool) *Conn {
		t.Helper()
		conn, err := p.Get(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	connID := func(t *testing.T, conn *Conn) string {
		t.Helper()
		res, _, err := conn.Exec(context.Background(), "SELECT CONNECTION_ID()", ExecOptions{State: conn.State()})
		if err != nil {
			t.Fatal(err)
		}
		return res.Rows[0][0].ToString()
	}
	// sleeping counts the statements running on the server whose text is
	// like pattern.
	sleeping := func(t *testing.T, pattern string) int {
		t.Helper()
		v, err := srv.QueryString(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '"+pattern+"'")
		if err != nil {
			t.Fatal(err)
		}
		return atoi(v)
	}
	// wantErr checks that err is code, names the server and says why.
	wantErr := func(t *testing.T, what string, err error, code sqlerror.ErrorCode, why string) {
		t.Helper()
		var se *sqlerror.SQLError
		if !errors.As(err, &se) || se.Number() != code || !strings.Contains(se.Message, why) || !strings.Contains(se.Message, srv.Addr()) {
			t.Errorf("%s: got %v, want error %d naming the server and %q", what, err, code, why)
			return
		}
		t.Logf("%s: %v", what, err)
	}

	t.Run("statements in flight", func(t *testing.T) {
		c := testCluster(t, topo, quiet)
		p := c.Shard("s0").Primary
		execC, rawC, stmtC, idleC, quietC := get(t, p), get(t, p), get(t, p), get(t, p), get(t, p)
		idleID := connID(t, idleC)
		p.Put(idleC)
		type outcome struct {
			name string
			err  error
		}
		done := make(chan outcome, 3)
		run := func(name string, f func() error) {
			go func() { done <- outcome{name, f()} }()
		}
		run("Exec", func() error {
			_, _, err := execC.Exec(context.Background(), "SELECT SLEEP(30)", ExecOptions{})
			return err
		})
		run("QueryRaw", func() error {
			var got collect
			_, err := rawC.QueryRaw("SELECT SLEEP(30)", "", nil, 0, &got)
			return err
		})
		run("ExecStmtRaw", func() error {
			var got collect
			return stmtC.ExecStmtRaw("SELECT SLEEP(?)", "", nil, 1, execArgs(30), 0, &got)
		})
		waitUntil(t, 5*time.Second, func() bool { return sleeping(t, "SELECT SLEEP(%") >= 3 })
		at := time.Now()
		if n := p.InterruptInUse("the test said so"); n != 4 {
			t.Errorf("InterruptInUse closed %d connections, want 4 (3 waiting, 1 between statements)", n)
		}
		for i := 0; i < 3; i++ {
			select {
			case o := <-done:
				wantErr(t, o.name, o.err, sqlerror.CRServerLost, "the test said so")
			case <-time.After(2 * time.Second):
				t.Fatalf("a statement still waits %v after InterruptInUse", time.Since(at))
			}
		}
		t.Logf("3 statements ended %v after InterruptInUse", time.Since(at))
		// The connection that was between statements fails its next one.
		_, _, err := quietC.Exec(context.Background(), "SELECT 1", ExecOptions{})
		wantErr(t, "next statement", err, sqlerror.CRServerLost, "the test said so")
		for _, conn := range []*Conn{execC, rawC, stmtC, quietC} {
			if !conn.Broken() {
				t.Error("an interrupted connection is not Broken")
			}
			p.Put(conn)
		}
		if s := p.Stats(); s.Open != 1 || s.Idle != 1 || s.InUse != 0 || s.Interrupted != 4 {
			t.Errorf("stats after: %+v, want only the idle connection open, 4 interrupted", s)
		}
		again := get(t, p)
		if id := connID(t, again); id != idleID {
			t.Errorf("idle connection %s was not kept (got %s)", idleID, id)
		}
		// Interrupted after its statement ended, before Put: not pooled.
		if n := p.InterruptInUse("late"); n != 1 {
			t.Errorf("InterruptInUse closed %d, want 1", n)
		}
		p.Put(again)
		if s := p.Stats(); s.Open != 0 || s.Idle != 0 {
			t.Errorf("stats after a late interrupt: %+v, want nothing open", s)
		}
		if got := exec(t, p, "SELECT 41+1", "", nil); got != "42" {
			t.Fatalf("pool after InterruptInUse: %q", got)
		}
	})

	t.Run("eject", func(t *testing.T) {
		c := testCluster(t, topo, func(o *Options) { quiet(o); o.MaxOpen = 1; o.WaitTimeout = 10 * time.Second })
		p := c.Shard("s0").Primary
		busy := get(t, p)
		stmt, waiter := make(chan error, 1), make(chan error, 1)
		go func() {
			_, _, err := busy.Exec(context.Background(), "SELECT SLEEP(29)", ExecOptions{})
			stmt <- err
		}()
		go func() {
			conn, err := p.Get(ctx, nil) // max_open 1 in use: waits
			if err == nil {
				p.Put(conn)
			}
			waiter <- err
		}()
		waitUntil(t, 5*time.Second, func() bool { return sleeping(t, "SELECT SLEEP(29)") >= 1 && p.Stats().Waits == 1 })
		if n := p.Eject("server s0-0 stopped answering"); n != 1 {
			t.Errorf("Eject closed %d connections, want 1", n)
		}
		for _, w := range []struct {
			name string
			ch   chan error
			code sqlerror.ErrorCode
		}{{"statement", stmt, sqlerror.CRServerLost}, {"waiting Get", waiter, sqlerror.CRConnHostError}} {
			select {
			case err := <-w.ch:
				wantErr(t, w.name, err, w.code, "stopped answering")
			case <-time.After(2 * time.Second):
				t.Fatalf("%s still waits 2 s after Eject", w.name)
			}
		}
		p.Put(busy)
		start := time.Now()
		_, err := p.Get(ctx, nil)
		wantErr(t, "Get while ejected", err, sqlerror.CRConnHostError, "the statement was not sent")
		if d := time.Since(start); d > time.Second {
			t.Errorf("Get while ejected took %v", d)
		}
		if s := p.Stats(); !s.Ejected || s.Open != 0 {
			t.Errorf("stats while ejected: %+v", s)
		}
		p.Restore()
		if got := exec(t, p, "SELECT 41+1", "", nil); got != "42" {
			t.Fatalf("pool after Restore: %q", got)
		}
	})

	t.Run("broken connection frees its slot for a waiter", func(t *testing.T) {
		// With max_open in use and a Get waiting, a connection that breaks
		// hands its slot to the waiter, who dials in it. (The waiter used to
		// queue again, and the slot was lost for good.)
		c := testCluster(t, topo, func(o *Options) { quiet(o); o.MaxOpen = 1; o.WaitTimeout = 3 * time.Second })
		p := c.Shard("s0").Primary
		held := get(t, p)
		got := make(chan error, 1)
		go func() {
			conn, err := p.Get(ctx, nil)
			if err == nil {
				_, _, err = conn.Exec(context.Background(), "SELECT 1", ExecOptions{})
				p.Put(conn)
			}
			got <- err
		}()
		waitUntil(t, 5*time.Second, func() bool { return p.Stats().Waits == 1 })
		held.MarkBroken()
		p.Put(held)
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("waiter: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the waiter did not get the broken connection's slot within 2 s")
		}
		if s := p.Stats(); s.Open != 1 || s.Idle != 1 || s.InUse != 0 || s.Timeouts != 0 {
			t.Errorf("stats: %+v", s)
		}
	})

	t.Run("stopped server", func(t *testing.T) {
		// A server stopped with SIGSTOP never answers: the vitess side waits
		// in a read, the raw side in the poller; both end at once.
		c := testCluster(t, topo, quiet)
		p := c.Shard("s0").Primary
		execC, rawC := get(t, p), get(t, p)
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Resume() })
		waitUntil(t, 5*time.Second, func() bool { return stopped(srv.Pid()) })
		done := make(chan error, 2)
		go func() {
			_, _, err := execC.Exec(context.Background(), "COMMIT", ExecOptions{})
			done <- err
		}()
		go func() {
			var got collect
			_, err := rawC.QueryRaw("SELECT 1", "", nil, 0, &got)
			done <- err
		}()
		time.Sleep(300 * time.Millisecond)
		at := time.Now()
		if n := p.InterruptInUse("the server stopped"); n != 2 {
			t.Errorf("InterruptInUse closed %d, want 2", n)
		}
		for i := 0; i < 2; i++ {
			select {
			case err := <-done:
				wantErr(t, "on a stopped server", err, sqlerror.CRServerLost, "the server stopped")
			case <-time.After(2 * time.Second):
				t.Fatalf("a statement on a stopped server still waits %v after InterruptInUse", time.Since(at))
			}
		}
		p.Put(execC)
		p.Put(rawC)
		// A Get dialing the stopped server waits in the handshake (up to
		// ConnectTimeout, 2 s): Eject ends it.
		dialed := make(chan error, 1)
		go func() {
			conn, err := p.Get(ctx, nil)
			if err == nil {
				p.Put(conn)
			}
			dialed <- err
		}()
		waitUntil(t, 2*time.Second, func() bool { return p.Stats().Dials > 2 })
		time.Sleep(100 * time.Millisecond)
		at = time.Now()
		p.Eject("the server stopped")
		select {
		case err := <-dialed:
			wantErr(t, "dialing a stopped server", err, sqlerror.CRConnHostError, "the server stopped")
			if d := time.Since(at); d > time.Second {
				t.Errorf("the dial ended %v after Eject", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a Get dialing the stopped server still waits 5 s after Eject")
		}
		p.Restore()
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
		if got := exec(t, p, "SELECT 41+1", "", nil); got != "42" {
			t.Fatalf("pool after resume: %q", got)
		}
	})
}

// stopped reports whether every thread of process pid is stopped. SIGSTOP
// stops a process thread by thread, and on a loaded machine a thread may
// still answer a statement some milliseconds after kill returned.
func stopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		// The state follows the command name, which ends with the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}
