package backend

import (
	"context"
	"fmt"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
)

// ID is the server's id of the connection: its CONNECTION_ID(), the id
// KILL takes.
func (c *Conn) ID() uint32 { return c.c.ConnectionID }

// KillQuery stops the statement that connection id runs on this pool's
// server (KILL QUERY id), over a connection of its own, opened for it and
// closed after: a pool whose connections are all in use must not hold up a
// KILL, and the connection the KILL ran on is never another statement's.
func (p *Pool) KillQuery(ctx context.Context, id uint32) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout)
	defer cancel()
	mc, err := mysql.Connect(ctx, &p.params)
	if err != nil {
		return p.wrap(sqlerror.CRConnHostError, err)
	}
	defer mc.Close()
	if _, err := mc.ExecuteFetch(fmt.Sprintf("KILL QUERY %d", id), 0, false); err != nil {
		return fmt.Errorf("backend: KILL QUERY %d on %s: %w", id, p.desc, err)
	}
	return nil
}
