package difftest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Schema is the differential test's DDL for database demo: it runs through
// the proxy (broadcast to both shards) and on the single server.
func Schema() []string {
	return []string{
		`CREATE TABLE users (
			id BIGINT PRIMARY KEY,
			name VARCHAR(40),
			email VARCHAR(80),
			score INT,
			balance DECIMAL(12,2),
			rating DOUBLE,
			region_id INT,
			created DATETIME,
			active TINYINT NOT NULL DEFAULT 1,
			nick VARCHAR(20) COLLATE utf8mb4_bin,
			uname VARCHAR(20) COLLATE utf8mb4_unicode_ci,
			code VARBINARY(8),
			big BIGINT UNSIGNED,
			dur TIME
		)`,
		`CREATE TABLE orders (
			id BIGINT PRIMARY KEY,
			user_id BIGINT NOT NULL,
			total DECIMAL(10,2),
			qty INT,
			status VARCHAR(20),
			note VARCHAR(40),
			day DATE,
			KEY (user_id)
		)`,
		`CREATE TABLE tags (tag VARCHAR(30) PRIMARY KEY, cnt INT, weight DOUBLE)`,
		`CREATE TABLE events (id BIGINT PRIMARY KEY, kind VARCHAR(20), amount INT)`,
		`CREATE TABLE regions (id INT PRIMARY KEY, name VARCHAR(30), zone VARCHAR(10))`,
		`CREATE TABLE audit (id INT PRIMARY KEY, msg VARCHAR(40))`,
		`CREATE TABLE visits (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, day DATE NOT NULL, amount INT, page VARCHAR(20))`,
	}
}

// Data returns INSERT statements with deterministic rows full of the
// values that make merging hard: NULLs, case and accent variants, trailing
// spaces, negatives, decimals, doubles, duplicates.
func Data() []string {
	r := rand.New(rand.NewPCG(42, 7))
	names := []string{"alice", "Alice", "ALICE", "bob", "Bob ", "bob", "carol", "dave", "eve", "Ève", "eve ", "frank",
		"grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor",
		"walter", "zoë", "Zoe", "émile", "Émile", "x", "X", "", "a\tb", "a b", "Ωmega", "ømega"}
	nicks := []string{"Anna", "anna", "ANNA", "bert", "Bert", "b", "B", "zed", "Zed", "ä", "a"}
	statuses := []string{"new", "paid", "shipped", "cancelled", "PAID", "Paid "}
	null := func(p float64, s string) string {
		if r.Float64() < p {
			return "NULL"
		}
		return s
	}
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	var out []string
	var rows []string
	flush := func(prefix string) {
		for len(rows) > 0 {
			n := min(25, len(rows))
			out = append(out, prefix+strings.Join(rows[:n], ", "))
			rows = rows[n:]
		}
	}
	for id := 1; id <= 240; id++ {
		name := names[r.IntN(len(names))]
		created := fmt.Sprintf("'2024-%02d-%02d %02d:%02d:%02d'", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60))
		dur := fmt.Sprintf("'%d:%02d:%02d'", r.IntN(300)-150, r.IntN(60), r.IntN(60))
		rows = append(rows, fmt.Sprintf("(%d, %s, %s, %s, %s, %s, %s, %s, %d, %s, %s, %s, %s, %s)",
			id, null(0.08, q(name)), null(0.2, q(strings.ToLower(strings.TrimSpace(name))+"@example.com")),
			null(0.1, fmt.Sprint(r.IntN(1100)-100)), null(0.1, fmt.Sprintf("%d.%02d", r.IntN(20000)-5000, r.IntN(100))),
			null(0.1, fmt.Sprintf("%.6g", r.Float64()*100-20)), null(0.1, fmt.Sprint(1+r.IntN(6))), null(0.05, created),
			r.IntN(2), null(0.1, q(nicks[r.IntN(len(nicks))])), null(0.1, q(names[r.IntN(len(names))])),
			null(0.1, fmt.Sprintf("x'%02x%02x'", r.IntN(256), r.IntN(256))), null(0.1, fmt.Sprint(r.Uint64())), null(0.1, dur)))
	}
	flush("INSERT INTO users (id, name, email, score, balance, rating, region_id, created, active, nick, uname, code, big, dur) VALUES ")
	for id := 1; id <= 700; id++ {
		rows = append(rows, fmt.Sprintf("(%d, %d, %s, %s, %s, %s, %s)", id, 1+r.IntN(220),
			null(0.05, fmt.Sprintf("%d.%02d", r.IntN(500), r.IntN(100))), null(0.05, fmt.Sprint(1+r.IntN(9))),
			null(0.05, q(statuses[r.IntN(len(statuses))])), null(0.5, q(fmt.Sprintf("note %d", r.IntN(30)))),
			null(0.05, fmt.Sprintf("'2024-%02d-%02d'", 1+r.IntN(12), 1+r.IntN(28)))))
	}
	flush("INSERT INTO orders (id, user_id, total, qty, status, note, day) VALUES ")
	for i, tg := range []string{"go", "rust", "Python", "java", "c", "sql", "zig", "Haskell", "ocaml", "lisp", "erlang",
		"elixir", "ruby", "perl", "php", "swift", "kotlin", "scala", "dart", "lua", "r", "julia", "fortran", "cobol", "ada", "éclair", "naïve", "Straße"} {
		rows = append(rows, fmt.Sprintf("(%s, %s, %s)", q(tg), null(0.1, fmt.Sprint(r.IntN(50))), null(0.1, fmt.Sprintf("%.4f", float64(i)*1.25-7))))
	}
	flush("INSERT INTO tags (tag, cnt, weight) VALUES ")
	for id := 1; id <= 200; id++ {
		rows = append(rows, fmt.Sprintf("(%d, %s, %s)", id, null(0.05, q([]string{"click", "view", "buy", "Click"}[r.IntN(4)])), null(0.05, fmt.Sprint(r.IntN(1000)-300))))
	}
	flush("INSERT INTO events (id, kind, amount) VALUES ")
	for id, n := range []string{"north", "south", "east", "west", "North", "centre"} {
		rows = append(rows, fmt.Sprintf("(%d, %s, %s)", id+1, q(n), q([]string{"a", "b", "a", "c", "B", "a"}[id])))
	}
	flush("INSERT INTO regions (id, name, zone) VALUES ")
	for id := 1; id <= 10; id++ {
		rows = append(rows, fmt.Sprintf("(%d, 'audit %d')", id, id%4))
	}
	flush("INSERT INTO audit (id, msg) VALUES ")
	for id := 1; id <= 300; id++ {
		rows = append(rows, fmt.Sprintf("(%d, %d, '2024-%02d-%02d', %s, %s)", id, 1+r.IntN(60), 1+r.IntN(12), 1+r.IntN(28),
			null(0.05, fmt.Sprint(r.IntN(500)-50)), null(0.1, q([]string{"home", "cart", "Home", "pay"}[r.IntN(4)]))))
	}
	flush("INSERT INTO visits (id, user_id, day, amount, page) VALUES ")
	return out
}
