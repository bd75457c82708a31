package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

// syncBuffer is a bytes.Buffer safe for the command's goroutine and the
// test to use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startUp runs `strata up` with args in the background and returns its
// output once it has printed the ready banner; stop ends it and returns
// Run's error.
func startUp(t *testing.T, args ...string) (out *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- RunWithOutput(ctx, append([]string{"up"}, args...), out, errOut) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(time.Minute):
				t.Errorf("strata up did not stop within a minute")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), "Ctrl-C stops everything") {
		select {
		case err := <-done:
			t.Fatalf("strata up ended early: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		case <-deadline:
			t.Fatalf("strata up not ready in 2 minutes\nstderr:\n%s", errOut)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return out, stop
}

var dsnLine = regexp.MustCompile(`(?m)^\s+(s\d+)\s+(primary|replica)\s+\S+\s+\S+\s+.*dsn (\S+)$`)

// TestUpReplicates runs `strata up` on free ports: the topology comes up,
// a row written on a primary is on its replica within a second, and Ctrl-C
// stops every server it started.
func TestUpReplicates(t *testing.T) {
	data := t.TempDir()
	out, stop := startUp(t, "--data", data, "--mariadb-port", "0", "--innodb-buffer-pool", "32M")

	dsns := map[string]string{}
	for _, m := range dsnLine.FindAllStringSubmatch(out.String(), -1) {
		dsns[m[1]+"/"+m[2]] = m[3]
	}
	if len(dsns) != 4 {
		t.Fatalf("want 4 servers (2 shards x primary+replica) in the output, got %v\n%s", dsns, out)
	}
	primary, err := sql.Open("mysql", dsns["s0/primary"])
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	replica, err := sql.Open("mysql", dsns["s0/replica"])
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS uptest", "CREATE TABLE uptest.t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO uptest.t VALUES (1, 'hello')"} {
		if _, err := primary.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	written := time.Now()
	for {
		var v string
		err := replica.QueryRow("SELECT v FROM uptest.t WHERE id = 1").Scan(&v)
		if err == nil && v == "hello" {
			t.Logf("row on replica %v after the write", time.Since(written))
			break
		}
		if time.Since(written) > time.Second {
			t.Fatalf("row not on replica within 1s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	checkUpSplitsReads(t, out.String())
	checkUpGeneratesOrderIDs(t, out.String())

	pids := pidsUnder(t, filepath.Join(data, "mariadb"))
	if len(pids) != 4 {
		t.Fatalf("want 4 pid files, got %v", pids)
	}
	if err := stop(); err != nil {
		t.Fatalf("up returned %v on Ctrl-C", err)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("pid %d still running after up stopped", pid)
		}
	}
}

func pidsUnder(t *testing.T, root string) []int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "*", "mariadbd.pid"))
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// checkUpGeneratesOrderIDs: in the default config, orders.id (not the
// shard key) comes from the ID service when an INSERT leaves it out, one per
// row, and LAST_INSERT_ID() is the first row's.
func checkUpGeneratesOrderIDs(t *testing.T, out string) {
	t.Helper()
	m := proxyLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no proxy banner in:\n%s", out)
	}
	db, err := sql.Open("mysql", "root@tcp("+m[1]+")/demo")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("INSERT INTO orders (customer_id, amount) VALUES (7, 1.50), (8, 2.50)"); err != nil {
		t.Fatal(err)
	}
	var last, first, second int64
	if err := db.QueryRow("SELECT LAST_INSERT_ID()").Scan(&last); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT id FROM orders WHERE customer_id = 7 AND amount = 1.50").Scan(&first); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT id FROM orders WHERE customer_id = 8 AND amount = 2.50").Scan(&second); err != nil {
		t.Fatal(err)
	}
	if last == 0 || first != last || second == first {
		t.Fatalf("generated orders.id: LAST_INSERT_ID() %d, rows %d and %d", last, first, second)
	}
}

// checkUpSplitsReads uses the proxy of a `strata up` with replicas: a
// session reads its own writes, and its reads are served by the replicas
// (SHOW STRATA SERVERS counts them).
func checkUpSplitsReads(t *testing.T, out string) {
	t.Helper()
	m := proxyLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no proxy banner in:\n%s", out)
	}
	db, err := sql.Open("mysql", "root@tcp("+m[1]+")/demo")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one session: read-your-writes is per session
	for i := 1; i <= 50; i++ {
		if _, err := db.Exec("INSERT INTO customers (id, name) VALUES (?, 'n')", i); err != nil {
			t.Fatal(err)
		}
		var name string
		if err := db.QueryRow("SELECT name FROM customers WHERE id = ?", i).Scan(&name); err != nil {
			t.Fatalf("read of the row just written (id %d): %v", i, err)
		}
	}
	rows, err := db.Query("SHOW STRATA SERVERS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	replicaReads, servers := 0, 0
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		servers++
		rec := map[string]string{}
		for i, c := range cols {
			rec[c] = vals[i].String
		}
		if rec["role"] == "replica" {
			n, _ := strconv.Atoi(rec["reads"])
			replicaReads += n
		}
	}
	if servers != 4 || replicaReads == 0 {
		t.Fatalf("SHOW STRATA SERVERS: %d servers, %d reads on replicas; want 4 servers and replica reads", servers, replicaReads)
	}
	t.Logf("%d reads served by replicas (50 made)", replicaReads)
}
