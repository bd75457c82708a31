package shardproxy

import (
	"context"
	"fmt"
	"strings"

	"github.com/strata-db/strata/cachetier"
	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/rowcache"
)

// startCache builds and starts the hot-row cache (package rowcache) for the
// tables cfg.Cache lists; the executor answers point selects from it.
func (s *Server) startCache(ctx context.Context) error {
	cc := s.cfg.Cache
	if len(cc.Tables) == 0 {
		return nil
	}
	rc := rowcache.Config{User: cc.User, Password: cc.Password, Binlog: cc.Binlog, MaxLag: cc.MaxLag, Logger: s.log}
	if rc.User == "" {
		rc.User, rc.Password = s.cfg.Backend.User, s.cfg.Backend.Password
	}
	for _, name := range s.cluster.ShardNames() {
		rc.Shards = append(rc.Shards, rowcache.Shard{Name: name, Primary: func(ctx context.Context) (string, error) {
			// The router knows the primary after a switchover.
			t, err := s.cluster.Route(ctx, name, false, &backend.RouteHint{})
			if err != nil {
				return "", err
			}
			if t.Done != nil {
				t.Done(nil)
			}
			return t.Pool.Addr, nil
		}})
	}
	for _, name := range cc.CacheTableNames() {
		ct := cc.Tables[name]
		db, tbl, _ := strings.Cut(name, ".")
		c := cachetier.DefaultConfig()
		c.TTL, c.NegativeTTL = ct.TTL, ct.NegativeTTL
		c.MaxBytes, _ = ct.MemoryBytes()
		tc := rowcache.TableConfig{DB: db, Table: tbl, Unique: ct.Unique, Cache: c}
		if d := s.vs.Databases[db]; d != nil {
			if !d.Sharded {
				tc.Shards = []string{d.Shard}
			} else if t := d.Tables[tbl]; t != nil && t.Shard != "" {
				tc.Shards = []string{t.Shard}
			}
		}
		rc.Tables = append(rc.Tables, tc)
	}
	m, err := rowcache.New(rc)
	if err != nil {
		return fmt.Errorf("shardproxy: cache: %w", err)
	}
	if err := m.Start(ctx); err != nil {
		return fmt.Errorf("shardproxy: cache: %w", err)
	}
	if err := s.reg.Register(m.Collector()); err != nil {
		m.Close()
		return fmt.Errorf("shardproxy: cache metrics: %w", err)
	}
	s.rc = m
	return nil
}

// RowCache is the hot-row cache, nil when no table is cached.
func (s *Server) RowCache() *rowcache.Manager { return s.rc }
