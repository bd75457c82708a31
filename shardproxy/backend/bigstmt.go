package backend

import (
	"errors"
	"time"

	"vitess.io/vitess/go/mysql"
)

// bigStatement is the size from which a statement goes alone: the
// statements that bring the connection to the session's database and
// state (and BEGIN, XA START) go first, in a round trip of their own, so
// that they add nothing to it. A client's statement as large as
// max_allowed_packet takes must reach the server no larger (the server
// would refuse it with 1153 and close the connection); one more round
// trip is nothing beside such a statement.
const bigStatement = 1 << 20

// applyAlone runs, in a round trip of its own, what appendPrefix would put
// before a statement.
func (c *Conn) applyAlone(db string, st *State, pre string, timeout time.Duration) error {
	buf, nPre := c.appendPrefix(nil, db, st, pre)
	if nPre == 0 {
		return nil
	}
	if timeout > 0 {
		c.setDeadline(timeout)
		defer c.clearDeadline()
	}
	if err := c.c.WriteComQuery(string(buf[:len(buf)-1])); err != nil {
		c.broken = true
		return c.connError(err)
	}
	for i := 0; i < nPre; i++ {
		_, more, _, err := c.c.ReadQueryResult(mysql.FETCH_NO_ROWS, false)
		if err != nil {
			c.broken = true
			return c.connError(err)
		}
		if more != (i < nPre-1) {
			c.broken = true
			return c.connError(errors.New("backend: unexpected results of session statements"))
		}
	}
	if db != "" {
		c.db = db
	}
	c.state = st
	return nil
}
