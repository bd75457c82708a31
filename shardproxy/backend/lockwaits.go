package backend

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
)

// LockWait is one lock wait on a server: the connection Waiter waits for a
// row lock that connection Holder's transaction holds (ids as CONNECTION_ID()).
type LockWait struct {
	Waiter, Holder uint32
}

// ErrStaleLockWaits: the server's view of its lock waits stayed older
// than the read (see LockWaits).
var ErrStaleLockWaits = errors.New("backend: the server's information_schema.innodb_trx stayed stale: something else reads it more often than every 100ms, and InnoDB refreshes it only after 100ms without a read")

// lockWaitsSQL lists the server's lock waits by connection (kind 1).
// InnoDB's lock-wait table names transactions; its transaction table maps
// them to connections (reading both takes the PROCESS privilege). The row
// of kind 0 is the reading connection's own transaction, begun before the
// read: present only when the view is newer than it.
const lockWaitsSQL = "SELECT 1, r.trx_mysql_thread_id, b.trx_mysql_thread_id" +
	" FROM information_schema.innodb_lock_waits w" +
	" JOIN information_schema.innodb_trx r ON r.trx_id = w.requesting_trx_id" +
	" JOIN information_schema.innodb_trx b ON b.trx_id = w.blocking_trx_id" +
	" UNION ALL SELECT 0, trx_mysql_thread_id, 0 FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()"

// InnoDB keeps its information_schema transaction and lock tables in a
// cache that a read refreshes only when the last read was 100ms or more
// ago: while something reads them more often (a monitoring poll, another
// proxy's deadlock check, this one's own rounds), every read gets the view
// of the first, however old. Waits that ended long ago, joined with the
// connections' owners of now, made cycles that were none. A view that does
// not have the reader's own transaction, begun before it read, is such an
// old one: it is read again after a pause, a few times.
const (
	staleRetries = 3
	staleWait    = 110 * time.Millisecond
)

// LockWaits reads the lock waits on this pool's server, over a connection
// of its own (as KillQuery: the pool's may all be held by the waiters). It
// answers ErrStaleLockWaits when the server's view stays older than the
// read.
func (p *Pool) LockWaits(ctx context.Context) ([]LockWait, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout+staleRetries*2*staleWait)
	defer cancel()
	mc, err := mysql.Connect(ctx, &p.params)
	if err != nil {
		return nil, p.wrap(sqlerror.CRConnHostError, err)
	}
	defer mc.Close()
	if _, err := mc.ExecuteFetch("START TRANSACTION WITH CONSISTENT SNAPSHOT", 0, false); err != nil {
		return nil, fmt.Errorf("backend: reading the lock waits on %s: %w", p.desc, err)
	}
	for try := 0; ; try++ {
		res, err := mc.ExecuteFetch(lockWaitsSQL, 100000, false)
		if err != nil {
			return nil, fmt.Errorf("backend: reading the lock waits on %s: %w", p.desc, err)
		}
		out := make([]LockWait, 0, len(res.Rows))
		fresh := false
		for _, row := range res.Rows {
			w, err1 := strconv.ParseUint(row[1].ToString(), 10, 32)
			if row[0].ToString() == "0" {
				fresh = fresh || (err1 == nil && uint32(w) == mc.ConnectionID)
				continue
			}
			h, err2 := strconv.ParseUint(row[2].ToString(), 10, 32)
			if err1 != nil || err2 != nil {
				continue // a transaction without a connection (a recovered XA branch)
			}
			out = append(out, LockWait{Waiter: uint32(w), Holder: uint32(h)})
		}
		if fresh {
			return out, nil
		}
		if try == staleRetries {
			return nil, fmt.Errorf("%w (%s)", ErrStaleLockWaits, p.desc)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("backend: reading the lock waits on %s: %w", p.desc, ctx.Err())
		case <-time.After(staleWait + rand.N(staleWait/2)):
		}
	}
}
