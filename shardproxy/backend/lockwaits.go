package backend

import (
	"context"
	"fmt"
	"strconv"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
)

// LockWait is one lock wait on a server: the connection Waiter waits for a
// row lock that connection Holder's transaction holds (ids as CONNECTION_ID()).
type LockWait struct {
	Waiter, Holder uint32
}

// lockWaitsSQL lists the server's lock waits by connection. InnoDB's
// lock-wait table names transactions; its transaction table maps them to
// connections (reading both takes the PROCESS privilege).
const lockWaitsSQL = "SELECT r.trx_mysql_thread_id, b.trx_mysql_thread_id" +
	" FROM information_schema.innodb_lock_waits w" +
	" JOIN information_schema.innodb_trx r ON r.trx_id = w.requesting_trx_id" +
	" JOIN information_schema.innodb_trx b ON b.trx_id = w.blocking_trx_id"

// LockWaits reads the lock waits on this pool's server, over a connection
// of its own (as KillQuery: the pool's may all be held by the waiters).
func (p *Pool) LockWaits(ctx context.Context) ([]LockWait, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout)
	defer cancel()
	mc, err := mysql.Connect(ctx, &p.params)
	if err != nil {
		return nil, p.wrap(sqlerror.CRConnHostError, err)
	}
	defer mc.Close()
	res, err := mc.ExecuteFetch(lockWaitsSQL, 100000, false)
	if err != nil {
		return nil, fmt.Errorf("backend: reading the lock waits on %s: %w", p.desc, err)
	}
	out := make([]LockWait, 0, len(res.Rows))
	for _, row := range res.Rows {
		w, err1 := strconv.ParseUint(row[0].ToString(), 10, 32)
		h, err2 := strconv.ParseUint(row[1].ToString(), 10, 32)
		if err1 != nil || err2 != nil {
			continue // a transaction without a connection (a recovered XA branch)
		}
		out = append(out, LockWait{Waiter: uint32(w), Holder: uint32(h)})
	}
	return out, nil
}
