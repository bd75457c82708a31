package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/strata-db/strata/internal/zipf"
	"github.com/strata-db/strata/localdb"
)

// cacheBench: point selects (SELECT c FROM sbtest1 WHERE id=?, text
// protocol) with Zipf s=1.01 keys over rows rows (default 100,000), as
// shardproxy/rowcache/e2e TestCacheBenchmark runs them: MariaDB direct
// (the reference), a proxy without the cache, and a proxy caching the
// table (memory, default 16MiB), over one server. Params: rows, memory_mb.
type cacheBench struct{}

func (cacheBench) Setup(ctx context.Context, e *Env) (vs []Variant, stop func(), err error) {
	s := &stack{}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	topo, err := s.topology(ctx, e, 1, 0)
	if err != nil {
		return nil, s.stop, err
	}
	s0 := topo.Shards()[0].Primary()
	rows := param(e, "rows", 100000)
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS sbtest",
		"CREATE TABLE sbtest.sbtest1 (id INT PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '')"} {
		if err := s0.Exec(ctx, q); err != nil {
			return nil, s.stop, err
		}
	}
	for b := 0; b < rows; b += 1000 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO sbtest.sbtest1 VALUES ")
		for i := b + 1; i <= min(b+1000, rows); i++ {
			if i > b+1 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, "(%d,%d,'%0120d','%060d')", i, i, i, i)
		}
		if err := s0.Exec(ctx, sb.String()); err != nil {
			return nil, s.stop, err
		}
	}
	body := shardsYAML(topo) + fmt.Sprintf("databases:\n  sbtest: {shard: %s}\n", topo.Shards()[0].Name)
	plain, _, err := s.proxy(ctx, e, "proxy-plain", body)
	if err != nil {
		return nil, s.stop, err
	}
	mem := param(e, "memory_mb", 16)
	cached, _, err := s.proxy(ctx, e, "proxy-cached", body+fmt.Sprintf("cache:\n  tables:\n    sbtest.sbtest1: {ttl: 5m, memory: %dMiB}\n", mem))
	if err != nil {
		return nil, s.stop, err
	}
	keys := zipf.New(1.01, rows, 1)
	var seed atomic.Uint64
	th := e.Threads
	variant := func(name string, ref bool, addr, user string) (Variant, error) {
		db, err := openDB(addr, user, "sbtest")
		if err != nil {
			return Variant{}, err
		}
		db.SetMaxOpenConns(th)
		db.SetMaxIdleConns(th)
		s.add(func() { db.Close() })
		return Variant{Name: name, Reference: ref, Run: func(ctx context.Context, d time.Duration) (Round, error) {
			return zipfSelects(ctx, db, keys, &seed, th, d), nil
		}}, nil
	}
	for _, v := range []struct {
		name, addr, user string
	}{
		{"MariaDB direct", s0.Addr(), localdb.AppUser},
		{"proxy, no cache", plain, "root"},
		{fmt.Sprintf("proxy, cache (%d MiB)", mem), cached, "root"},
	} {
		vv, err := variant(v.name, v.addr == s0.Addr(), v.addr, v.user)
		if err != nil {
			return nil, s.stop, err
		}
		vs = append(vs, vv)
	}
	return vs, s.stop, nil
}

// zipfSelects runs point selects with Zipf keys from th goroutines for d.
func zipfSelects(ctx context.Context, db *sql.DB, keys *zipf.Zipf, seed *atomic.Uint64, th int, d time.Duration) Round {
	zs := make(chan *zipf.Zipf, th)
	for range th {
		zs <- keys.Clone(seed.Add(1))
	}
	return perOp(ctx, th, d, "queries/s", func(ctx context.Context) error {
		z := <-zs
		defer func() { zs <- z }()
		var c string
		return db.QueryRowContext(ctx, "SELECT c FROM sbtest1 WHERE id=?", z.Next()).Scan(&c)
	})
}
