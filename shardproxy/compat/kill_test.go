package compat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
)

// The KILL tests' users: killa and killb are plain users (no PROCESS, no
// CONNECTION ADMIN directly; not admin: in the proxy's config); the admin
// is localdb's user directly (it has SUPER) and root through the proxy
// (admin: true).
var killEnv struct {
	once  sync.Once
	err   error
	proxy string
}

// killSetup starts a proxy of its own, over the package's topology, with
// the plain users, and creates them on s0's server.
func killSetup(t *testing.T) {
	t.Helper()
	setup(t)
	killEnv.once.Do(func() {
		db, err := sql.Open("mysql", env.topo.Shards()[0].Primary().DSN(""))
		if err != nil {
			killEnv.err = err
			return
		}
		defer db.Close()
		for _, u := range []string{"killa", "killb"} {
			for _, q := range []string{
				"CREATE USER IF NOT EXISTS " + u + "@'%'",
				"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON *.* TO " + u + "@'%'",
			} {
				if _, killEnv.err = db.Exec(q); killEnv.err != nil {
					return
				}
			}
		}
		c := proxyConfig()
		c.Users = []config.User{{Name: "root", Admin: true}, {Name: "killa"}, {Name: "killb"}}
		c.Databases["demo"].Tables["kq"] = &config.Table{Kind: "sharded", Column: "id"}
		c.Databases["demo"].Tables["asg"] = &config.Table{Kind: "sharded", Column: "id"}
		var stop func()
		killEnv.proxy, stop, killEnv.err = startProxy(c)
		if killEnv.err == nil {
			// The package's TestMain stops the topology; the proxy goes
			// with the process.
			_ = stop
		}
	})
	if killEnv.err != nil {
		t.Fatalf("kill setup: %v", killEnv.err)
	}
}

// side is one way to reach MariaDB: directly or through the proxy.
type side struct {
	name  string
	addr  string
	admin string // the admin user on this side
	db    string // the unsharded database
	demo  string // the sharded database (directly, an ordinary one)
}

func killSides(t *testing.T) []side {
	killSetup(t)
	return []side{
		{name: "MariaDB", addr: env.topo.Shards()[0].Primary().Addr(), admin: localdb.AppUser, db: "direct", demo: "direct_demo"},
		{name: "proxy", addr: killEnv.proxy, admin: "root", db: "test", demo: "demo"},
	}
}

// open is one connection of user to db on this side.
func (sd side) open(t *testing.T, user, db string) *sql.Conn {
	t.Helper()
	d, err := sql.Open("mysql", user+"@tcp("+sd.addr+")/"+db+"?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	d.SetMaxOpenConns(1)
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.Conn(ctx)
	if err != nil {
		t.Fatalf("%s: connect as %s: %v", sd.name, user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func connID(t *testing.T, c *sql.Conn) string {
	t.Helper()
	var id string
	if err := c.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// killWhileRunning runs q on victim and, after a moment, stmt (holding the
// victim's id) on killer; it returns the victim's error and how long after
// stmt's answer the victim's came.
func killWhileRunning(t *testing.T, victim, killer *sql.Conn, q, stmt string, args ...any) (time.Duration, error) {
	t.Helper()
	id := connID(t, victim)
	done := make(chan error, 1)
	var ended time.Time
	go func() {
		rows, err := victim.QueryContext(context.Background(), q, args...)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		ended = time.Now()
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if _, err := killer.ExecContext(context.Background(), fmt.Sprintf(stmt, id)); err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(stmt, id), err)
	}
	killed := time.Now()
	select {
	case err := <-done:
		return ended.Sub(killed), err
	case <-time.After(15 * time.Second):
		t.Fatalf("%s still running 15 s after %s", q, stmt)
		return 0, nil
	}
}

// TestKillQuery: a SELECT SLEEP(10) killed by KILL QUERY from another
// session is answered with 1317 in under a second, directly and through the
// proxy, in an unsharded database and on a sharded table whose query runs
// on two shards; the victim's connection goes on.
func TestKillQuery(t *testing.T) {
	for _, sd := range killSides(t) {
		t.Run(sd.name, func(t *testing.T) {
			admin := sd.open(t, sd.admin, sd.demo)
			for _, q := range []string{
				"CREATE TABLE IF NOT EXISTS kq (id BIGINT PRIMARY KEY, v INT)",
				"DELETE FROM kq",
				"INSERT INTO kq (id, v) VALUES (1, 1), (2, 2), (3, 3), (4, 4)",
			} {
				if _, err := admin.ExecContext(context.Background(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			for _, tc := range []struct {
				db, q string
				args  []any
				first string // run before, so that the statement's shape is known (the fast lane)
			}{
				{db: sd.db, q: "SELECT SLEEP(10)"},
				// Four rows on two shards: each shard sleeps.
				{db: sd.demo, q: "SELECT id, SLEEP(10) FROM kq"},
				// In the fast lane, as text and prepared.
				{db: sd.db, q: "SELECT SLEEP(10) AS s", first: "SELECT SLEEP(0) AS s"},
				{db: sd.demo, q: "SELECT v, SLEEP(?) AS s FROM kq WHERE id = 1", args: []any{10}, first: "SELECT v, SLEEP(0) AS s FROM kq WHERE id = 1"},
				{db: sd.demo, q: "SELECT id, SLEEP(?) FROM kq WHERE id IN (1, 2, 3, 4)", args: []any{10}},
			} {
				victim := sd.open(t, "killa", tc.db)
				if tc.first != "" {
					for range 3 {
						if _, err := victim.ExecContext(context.Background(), tc.first); err != nil {
							t.Fatalf("%s: %v", tc.first, err)
						}
					}
				}
				after, err := killWhileRunning(t, victim, admin, tc.q, "KILL QUERY %s", tc.args...)
				if n := errNumber(err); n != 1317 {
					t.Errorf("%s: %s killed: %v, want 1317", sd.name, tc.q, err)
				}
				if after > time.Second {
					t.Errorf("%s: %s answered %v after KILL QUERY, want under 1s", sd.name, tc.q, after)
				}
				var one int
				if err := victim.QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil {
					t.Errorf("%s: the killed statement's session: %v", sd.name, err)
				}
				t.Logf("%s: %s: %v %v after the KILL (%s)", sd.name, tc.q, err, after, time.Now().Format("15:04:05.000"))
			}
			// The shards run nothing of it any more.
			for _, sh := range env.topo.Shards() {
				srv := sh.Primary()
				deadline := time.Now().Add(3 * time.Second)
				for {
					n, err := srv.QueryString(context.Background(), "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(10)%' AND ID <> CONNECTION_ID()")
					if err != nil {
						t.Fatal(err)
					}
					if n == "0" {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("%s: %s still runs %s SLEEP(10) after KILL QUERY", sd.name, sh.Name, n)
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
}

// TestKillQueryInTransaction: a statement killed inside a transaction
// fails with 1317, and the transaction goes on (MariaDB does not roll it
// back).
func TestKillQueryInTransaction(t *testing.T) {
	for _, sd := range killSides(t) {
		t.Run(sd.name, func(t *testing.T) {
			admin := sd.open(t, sd.admin, sd.demo)
			for _, q := range []string{
				"CREATE TABLE IF NOT EXISTS kq (id BIGINT PRIMARY KEY, v INT)",
				"DELETE FROM kq",
				"INSERT INTO kq (id, v) VALUES (1, 1), (2, 2), (3, 3), (4, 4)",
			} {
				if _, err := admin.ExecContext(context.Background(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			victim := sd.open(t, "killa", sd.demo)
			ctx := context.Background()
			for _, q := range []string{"BEGIN", "UPDATE kq SET v = 10 WHERE id = 1"} {
				if _, err := victim.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			after, err := killWhileRunning(t, victim, admin, "SELECT id, SLEEP(10) FROM kq WHERE id = 1", "KILL QUERY %s")
			if errNumber(err) != 1317 || after > time.Second {
				t.Errorf("%s: killed in a transaction: %v after %v, want 1317 at once", sd.name, err, after)
			}
			var v int
			if err := victim.QueryRowContext(ctx, "SELECT v FROM kq WHERE id = 1").Scan(&v); err != nil || v != 10 {
				t.Errorf("%s: the transaction after the kill: v %d (%v), want 10 (its update kept)", sd.name, v, err)
			}
			if _, err := victim.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Fatal(err)
			}
			if err := victim.QueryRowContext(ctx, "SELECT v FROM kq WHERE id = 1").Scan(&v); err != nil || v != 1 {
				t.Errorf("%s: after ROLLBACK: v %d (%v), want 1", sd.name, v, err)
			}
		})
	}
}

// TestKillConnection: KILL [CONNECTION] of another session closes it,
// running or idle (its next statement fails as on a lost connection), and
// KILL of one's own connection answers 1927 and closes it; KILL QUERY of
// one's own statement is 1317.
func TestKillConnection(t *testing.T) {
	for _, sd := range killSides(t) {
		t.Run(sd.name, func(t *testing.T) {
			admin := sd.open(t, sd.admin, sd.db)

			victim := sd.open(t, "killa", sd.db)
			after, err := killWhileRunning(t, victim, admin, "SELECT SLEEP(10)", "KILL %s")
			if err == nil || errNumber(err) != 0 {
				t.Errorf("%s: a running session killed: %v, want a lost connection", sd.name, err)
			}
			if after > time.Second {
				t.Errorf("%s: killed session answered %v after KILL", sd.name, after)
			}

			idle := sd.open(t, "killa", sd.db)
			if _, err := admin.ExecContext(context.Background(), "KILL CONNECTION "+connID(t, idle)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if err := idle.QueryRowContext(context.Background(), "SELECT 1").Scan(new(int)); err == nil || errNumber(err) != 0 {
				t.Errorf("%s: an idle session killed, then a statement: %v, want a lost connection", sd.name, err)
			}

			// KILL QUERY of an idle session does nothing: its next
			// statements (prepared too) run.
			quiet := sd.open(t, "killa", sd.db)
			if _, err := admin.ExecContext(context.Background(), "KILL QUERY "+connID(t, quiet)); err != nil {
				t.Fatal(err)
			}
			var got int
			if err := quiet.QueryRowContext(context.Background(), "SELECT ? + 1", 41).Scan(&got); err != nil || got != 42 {
				t.Errorf("%s: after KILL QUERY of an idle session, a prepared statement: %d, %v", sd.name, got, err)
			}

			self := sd.open(t, "killa", sd.db)
			_, err = self.ExecContext(context.Background(), "KILL QUERY "+connID(t, self))
			if n := errNumber(err); n != 1317 {
				t.Errorf("%s: KILL QUERY of one's own: %v, want 1317", sd.name, err)
			}
			_, err = self.ExecContext(context.Background(), "KILL "+connID(t, self))
			if n := errNumber(err); n != 1927 {
				t.Errorf("%s: KILL of one's own connection: %v, want 1927", sd.name, err)
			}
			if err := self.QueryRowContext(context.Background(), "SELECT 1").Scan(new(int)); err == nil {
				t.Errorf("%s: a statement after KILL of one's own connection worked", sd.name)
			}
		})
	}
}

// TestKillPermissions: a plain user may not kill another user's session
// (1095), may kill their own user's other sessions; an unknown id is 1094;
// the admin may kill anyone's.
func TestKillPermissions(t *testing.T) {
	for _, sd := range killSides(t) {
		t.Run(sd.name, func(t *testing.T) {
			a1 := sd.open(t, "killa", sd.db)
			a2 := sd.open(t, "killa", sd.db)
			b := sd.open(t, "killb", sd.db)
			admin := sd.open(t, sd.admin, sd.db)
			check := func(c *sql.Conn, stmt string, want uint16, wantMsg string) {
				t.Helper()
				_, err := c.ExecContext(context.Background(), stmt)
				if n := errNumber(err); n != want {
					t.Errorf("%s: %s: %v, want %d", sd.name, stmt, err, want)
				} else if wantMsg != "" && !strings.Contains(err.Error(), wantMsg) {
					t.Errorf("%s: %s: %v, want %q", sd.name, stmt, err, wantMsg)
				}
			}
			aid, bid := connID(t, a1), connID(t, b)
			check(b, "KILL "+aid, 1095, "You are not owner of thread "+aid)
			check(b, "KILL QUERY "+aid, 1095, "You are not owner of thread "+aid)
			check(a1, "KILL QUERY "+bid, 1095, "You are not owner of thread "+bid)
			check(a1, "KILL 4000000000", 1094, "Unknown thread id: 4000000000")
			check(a1, "KILL QUERY 4000000000", 1094, "Unknown thread id: 4000000000")
			check(a2, "KILL QUERY "+aid, 0, "")
			check(admin, "KILL "+bid, 0, "")
			check(a2, "KILL "+aid, 0, "")
		})
	}
}

// TestProcessList: SHOW [FULL] PROCESSLIST and information_schema.PROCESSLIST
// show the sessions with the ids CONNECTION_ID() gives, what they run, and
// to a plain user only that user's sessions; the admin sees everyone's.
func TestProcessList(t *testing.T) {
	for _, sd := range killSides(t) {
		t.Run(sd.name, func(t *testing.T) {
			a1 := sd.open(t, "killa", sd.db)
			a2 := sd.open(t, "killa", sd.db)
			b := sd.open(t, "killb", sd.db)
			admin := sd.open(t, sd.admin, sd.db)
			aid, bid := connID(t, a1), connID(t, b)
			// a2 runs a statement meanwhile.
			done := make(chan error, 1)
			go func() {
				_, err := a2.ExecContext(context.Background(), "DO SLEEP(1.5)")
				done <- err
			}()
			defer func() { <-done }()
			time.Sleep(300 * time.Millisecond)
			a2id := ""
			for _, q := range []string{"SHOW PROCESSLIST", "SHOW FULL PROCESSLIST"} {
				cols, rows := table(t, a1, q)
				if want := "Id User Host db Command Time State Info Progress"; strings.Join(cols, " ") != want {
					t.Errorf("%s: %s columns %v, want %s", sd.name, q, cols, want)
				}
				var users []string
				for _, r := range rows {
					users = append(users, r[1])
					switch {
					case r[0] == aid:
						if r[4] != "Query" || r[7] != q || r[3] != sd.db {
							t.Errorf("%s: own row %q", sd.name, r)
						}
					case r[7] == "DO SLEEP(1.5)":
						a2id = r[0]
						if r[4] != "Query" {
							t.Errorf("%s: running row %q", sd.name, r)
						}
					}
				}
				sort.Strings(users)
				if strings.Join(users, ",") != "killa,killa" {
					t.Errorf("%s: killa's %s shows users %v, want its two sessions", sd.name, q, users)
				}
			}
			if a2id == "" {
				t.Errorf("%s: the running DO SLEEP is not listed", sd.name)
			}
			// information_schema.PROCESSLIST, as a plain user and as the admin.
			for _, tc := range []struct {
				c    *sql.Conn
				q    string
				want string
				args []any
			}{
				{a1, "SELECT USER, DB, COMMAND, INFO FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()",
					"killa " + sd.db + " Query SELECT USER, DB, COMMAND, INFO FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()", nil},
				{a1, "SELECT COUNT(*), MIN(USER), MAX(USER) FROM information_schema.PROCESSLIST", "2 killa killa", nil},
				{a1, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + bid, "0", nil},
				{a1, "SELECT p.INFO FROM information_schema.processlist AS p WHERE p.ID = " + a2id, "DO SLEEP(1.5)", nil},
				{admin, "SELECT USER FROM information_schema.PROCESSLIST WHERE ID = " + bid, "killb", nil},
				// Prepared (a parameter).
				{c: admin, q: "SELECT USER, COMMAND FROM information_schema.PROCESSLIST WHERE ID = ?", args: []any{bid}, want: "killb Sleep"},
				{c: a1, q: "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", args: []any{"killb"}, want: "0"},
				{admin, "SELECT COUNT(*) >= 4 FROM INFORMATION_SCHEMA.PROCESSLIST WHERE USER IN ('killa', 'killb', '" + sd.admin + "')", "1", nil},
			} {
				_, rows := table(t, tc.c, tc.q, tc.args...)
				var got []string
				for _, r := range rows {
					got = append(got, strings.Join(r, " "))
				}
				if strings.Join(got, "|") != tc.want {
					t.Errorf("%s: %s: %q, want %q", sd.name, tc.q, got, tc.want)
				}
			}
			// The admin's SHOW PROCESSLIST lists everyone's.
			_, rows := table(t, admin, "SHOW PROCESSLIST")
			seen := map[string]bool{}
			for _, r := range rows {
				seen[r[0]] = true
			}
			for _, id := range []string{aid, bid, a2id} {
				if !seen[id] {
					t.Errorf("%s: the admin's SHOW PROCESSLIST lacks session %s", sd.name, id)
				}
			}
		})
	}
}

// table runs q and returns its columns and rows as text (NULL as "NULL").
func table(t *testing.T, c *sql.Conn, q string, args ...any) ([]string, [][]string) {
	t.Helper()
	a := ask(t, c, q, args...)
	if a.Err != 0 {
		t.Fatalf("%s: error %d %s", q, a.Err, a.Msg)
	}
	return a.Cols, a.Rows
}
