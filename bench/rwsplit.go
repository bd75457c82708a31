package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strata-db/strata/localdb"
)

// rwsplitBench: sysbench oltp_read_only (--skip-trx, so reads are plain
// reads) through a proxy with read/write splitting over shards of a
// primary and replicas, against a second proxy over the same servers that
// sends every read to the primaries. Params: shards (2), replicas (1),
// tables (4), table_size (10000).
type rwsplitBench struct{}

func (rwsplitBench) Setup(ctx context.Context, e *Env) (vs []Variant, stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	cfg := localdb.DefaultConfig()
	cfg.Root, cfg.Shards, cfg.Replicas, cfg.BufferPoolSize, cfg.Logger = filepath.Join(e.Dir, "mariadb"), param(e, "shards", 2), param(e, "replicas", 1), "128M", e.Logger
	if cfg.Replicas < 1 {
		return nil, stop, fmt.Errorf("rwsplit needs replicas (param replicas ≥ 1)")
	}
	topo, err := localdb.Start(ctx, cfg)
	if err != nil {
		return nil, stop, err
	}
	stops = append(stops, func() { _ = topo.Stop() })
	var shards strings.Builder
	for _, sh := range topo.Shards() {
		var reps []string
		for _, r := range sh.Replicas() {
			reps = append(reps, strconv.Quote(r.Addr()))
		}
		fmt.Fprintf(&shards, "  - {name: %s, primary: %q, replicas: [%s]}\n", sh.Name, sh.Primary().Addr(), strings.Join(reps, ", "))
	}
	start := func(name string, rw bool) (string, *proc, error) {
		listen, _ := freeAddr()
		yml := fmt.Sprintf("listen: %s\nadmin_listen: off\nslow_query_threshold: 0s\nusers: [{name: root, password: \"\"}]\nbackend: {user: %s, password: \"\"}\nshards:\n%sdatabases:\n  sbtest: {sharded: true, tables: {\"sbtest{1..32}\": {kind: sharded, column: id, function: hash}}}\nread_write: {enabled: %v}\n",
			listen, localdb.AppUser, shards.String(), rw)
		conf := filepath.Join(e.Dir, name+".yaml")
		if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
			return "", nil, err
		}
		p, err := startProc(e.Dir, name, nil, e.Binary, "proxy", "--log-level", "warn", "--config", conf)
		if err != nil {
			return "", nil, err
		}
		stops = append(stops, p.stop)
		return listen, p, waitDialable(ctx, listen, 30*time.Second)
	}
	rwAddr, rwp, err := start("proxy-rw", true)
	if err != nil {
		return nil, stop, err
	}
	prAddr, prp, err := start("proxy-primaries", false)
	if err != nil {
		return nil, stop, err
	}
	base := sysbench{test: "oltp_read_only", addr: rwAddr, user: "root", db: "sbtest", tables: param(e, "tables", 4), size: param(e, "table_size", 10000), extra: []string{"--skip-trx=on"}}
	if err := base.prepare(ctx); err != nil {
		return nil, stop, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = topo.WaitReplicated(wctx)
	cancel()
	if err != nil {
		return nil, stop, err
	}
	primaries := base
	primaries.addr = prAddr
	th := e.Threads
	return []Variant{
		{Name: "reads on replicas", Run: func(ctx context.Context, d time.Duration) (Round, error) { return base.run(ctx, d, th, rwp.pid()) }},
		{Name: "reads on primaries", Reference: true, Run: func(ctx context.Context, d time.Duration) (Round, error) { return primaries.run(ctx, d, th, prp.pid()) }},
	}, stop, nil
}
