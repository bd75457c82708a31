package chaos

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// strataXAFormat is the XA format id of every XID the proxy makes ("STRA",
// shardproxy/xa.FormatID; the drill reads it as any XA RECOVER user would).
const strataXAFormat = 0x53545241

// xaWait bounds how long the xa check waits for recovery to finish what a
// fault left prepared: a local stack's proxy presumes abort after 5s and
// looks every second (the rest is room for a loaded machine); an external
// one has the proxy's defaults (30s, every 10s).
func (s *stack) xaWait() time.Duration {
	if s.topo != nil {
		return 15 * time.Second
	}
	return 45 * time.Second
}

// checkXA runs XA RECOVER as root on every shard's primary until none of
// Strata's XIDs is left prepared, or xaWait passes: then each one left
// is an anomaly (a branch in doubt, holding its rows' locks).
func (s *stack) checkXA(ctx context.Context) CheckResult {
	res := CheckResult{Name: "xa", Passed: true}
	start := time.Now()
	var left []string
	var lastErr error
	polls := 0
	for {
		polls++
		left, lastErr = s.preparedXIDs(ctx)
		if (lastErr == nil && len(left) == 0) || time.Since(start) > s.xaWait() || ctx.Err() != nil {
			break
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
	if lastErr != nil {
		res.Passed, res.Summary = false, "XA RECOVER: "+lastErr.Error()
		return res
	}
	for _, x := range left {
		res.add(Anomaly{Kind: "prepared branch left in doubt", Detail: fmt.Sprintf("%s is still prepared %s after the drill ended", x, time.Since(start).Round(time.Second)), Ops: []string{x}})
	}
	res.Summary = fmt.Sprintf("%d of Strata's XA branches left prepared on the primaries after %s (%d XA RECOVER rounds)", len(left), time.Since(start).Round(100*time.Millisecond), polls)
	return res
}

// preparedXIDs lists Strata's prepared XA branches on every primary, as
// "SERVER: xid 'gtrid','bqual'".
func (s *stack) preparedXIDs(ctx context.Context) ([]string, error) {
	all, err := s.servers()
	if err != nil {
		return nil, err
	}
	var out []string
	primaries := 0
	for _, sv := range all {
		if p, err := isPrimary(ctx, sv.Addr); err != nil || !p {
			continue
		}
		primaries++
		xids, err := recoverXIDs(ctx, sv.Addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sv.Name, err)
		}
		for _, x := range xids {
			out = append(out, sv.Name+": xid "+x)
		}
	}
	if primaries == 0 {
		return nil, fmt.Errorf("no primary answers")
	}
	return out, nil
}

func recoverXIDs(ctx context.Context, addr string) ([]string, error) {
	db, err := rootDB(addr)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := db.QueryContext(c, "XA RECOVER")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var format int64
		var gl, bl int
		var data []byte
		if err := rows.Scan(&format, &gl, &bl, &data); err != nil {
			return nil, err
		}
		if format != strataXAFormat || gl < 0 || bl < 0 || gl+bl > len(data) {
			continue
		}
		out = append(out, strconv.Quote(string(data[:gl]))+","+strconv.Quote(string(data[gl:gl+bl])))
	}
	return out, rows.Err()
}
