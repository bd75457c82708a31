package session

import (
	"context"
	"errors"
	"fmt"
	"math"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/shardproxy/engine"
)

// This file is the session's part of hot tables: IDs for generated columns
// (engine.IDGenerator) and the hot-row combiner the sessions share
// (engine.HotRows).

// GenerateIDs implements engine.IDGenerator: n new IDs of an ID service
// tag, increasing, from the client's buffered ranges. The service commits
// a range through Raft before it hands it out and a leader serves only
// ranges it committed, so no other proxy, no restart of this one (its
// unused IDs are lost: gaps) and no new leader of the service hands out
// the same ID. It waits at most id_service.timeout; on failure nothing is
// inserted.
func (s *Session) GenerateIDs(ctx context.Context, tag string, n int) ([]int64, error) {
	k := s.sh.Keys
	if k == nil {
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
			"This version of Strata doesn't yet support 'a generated column (sequence %s)' with no ID service: give the value, or set id_service.addrs in the proxy config to the gRPC addresses of the ID service's nodes", tag)
	}
	seq := k.client.Sequence(tag)
	wctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out := make([]int64, n)
	for i := range out {
		id, err := seq.Next(wctx)
		if err == nil && id > math.MaxInt64 {
			err = fmt.Errorf("ID %d is beyond the signed 64-bit values the proxy writes", id)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err() // the statement itself ended (KILL, query timeout)
			}
			k.errors.Inc()
			if errors.Is(err, context.DeadlineExceeded) && wctx.Err() != nil {
				err = fmt.Errorf("none within %v (id_service.timeout)", k.timeout)
			}
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState,
				"ID service at %s gave no ID of sequence %q: %v; nothing was inserted", k.addrs, tag, err)
		}
		out[i] = int64(id)
	}
	k.keys.Add(float64(n))
	return out, nil
}

// HotRowCombiner implements engine.HotRows: a statement may join a round
// only when it would commit on its own (autocommit, no transaction, nothing
// reserved): it then commits when the round's statement does.
func (s *Session) HotRowCombiner() *engine.HotCombiner {
	if s.sh.Hot == nil || s.InTx() || s.Tx != nil || s.TxLost != nil || s.OutsideTx || len(s.Reserved) > 0 || s.Reserving != "" {
		return nil
	}
	return s.sh.Hot
}
