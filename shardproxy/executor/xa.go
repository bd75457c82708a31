package executor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/internal/sqltext"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/txcoord/client"
)

// isXAStatement reports whether sql is an XA statement (XA START, END,
// PREPARE, COMMIT, ROLLBACK, RECOVER), which the parser does not know.
func isXAStatement(sql string) bool {
	t := strings.TrimLeft(sqltext.StripComments(sql), " \t\r\n")
	return len(t) > 3 && equalFold(t[:2], "xa") && (t[2] == ' ' || t[2] == '\t' || t[2] == '\n' || t[2] == '\r')
}

// clientXA answers a client's XA statement: in a sharded database the
// proxy runs XA itself, so the client's would tangle with it.
func (s *Session) clientXA() (bool, error) {
	if d := s.srv.vs.Databases[s.DB]; d != nil && d.Sharded {
		return true, session.ErrClientXA()
	}
	return false, nil
}

// isShowTransactions reports whether sql is SHOW STRATA TRANSACTIONS.
func isShowTransactions(sql string) bool {
	f := strings.Fields(strings.TrimRight(sqltext.StripComments(sql), "; \t\r\n"))
	return len(f) == 3 && equalFold(f[0], "show") && equalFold(f[1], "strata") && equalFold(f[2], "transactions")
}

// showTransactions lists distributed transactions: those in flight on this
// proxy, the prepared branches the last recovery pass left in doubt, and
// the decisions the coordinator holds whose branches may be unfinished.
func (s *Session) showTransactions(ctx context.Context) (*sqltypes.Result, error) {
	x := s.srv.shared.XA
	if x == nil {
		return nil, sqlerror.NewSQLError(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
			"SHOW STRATA TRANSACTIONS needs a coordinator: list its nodes in transactions.coordinator")
	}
	fields := []*querypb.Field{
		{Name: "id", Type: querypb.Type_UINT64},
		{Name: "source", Type: querypb.Type_VARCHAR},
		{Name: "shards", Type: querypb.Type_VARCHAR},
		{Name: "state", Type: querypb.Type_VARCHAR},
		{Name: "age_ms", Type: querypb.Type_INT64},
		{Name: "detail", Type: querypb.Type_VARCHAR},
	}
	res := &sqltypes.Result{Fields: fields}
	now := time.Now()
	add := func(id uint64, source, shards, state string, since time.Time, detail string) {
		age := int64(0)
		if !since.IsZero() {
			age = now.Sub(since).Milliseconds()
		}
		res.Rows = append(res.Rows, []sqltypes.Value{
			sqltypes.NewUint64(id), sqltypes.NewVarChar(source), sqltypes.NewVarChar(shards),
			sqltypes.NewVarChar(state), sqltypes.NewInt64(age), sqltypes.NewVarChar(detail),
		})
	}
	for _, t := range x.Transactions.List() {
		add(t.ID, "proxy", strings.Join(t.Shards, ","), t.State, t.Started, fmt.Sprintf("session %d", t.Session))
	}
	if x.Resolver != nil {
		last := x.Resolver.Last()
		for _, d := range last.InDoubt {
			state := "prepared, no decision"
			if d.Decision.String() != "UNKNOWN" {
				state = "prepared, decided " + strings.ToLower(d.Decision.String())
			}
			add(d.XID.TxID, "recovery", d.XID.Shard, state, d.Since, "found by XA RECOVER")
		}
	}
	if x.Coordinator != nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		recs, _, err := x.Coordinator.List(cctx, false, 1000)
		cancel()
		if err != nil {
			add(0, "coordinator", "", "unreachable", time.Time{}, err.Error())
		}
		for _, r := range recs {
			add(r.TxID, "coordinator", strings.Join(r.Shards, ","), "decided "+strings.ToLower(r.Decision.String())+", not completed", r.Decided, r.Owner)
		}
		// The coordinator's Seata TC, where the coordinator runs one: its
		// open global transactions (id 0: a Seata XID is no number; the
		// detail column names it).
		if sl, ok := x.Coordinator.(seataLister); ok {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			globals, err := sl.SeataList(cctx, 1000)
			cancel()
			if err == nil {
				for _, g := range globals {
					add(0, "seata", strings.Join(g.Resources, ","), strings.ToLower(g.Status), g.Begin, g.XID+" "+g.Name)
				}
			}
		}
	}
	return res, nil
}

// seataLister is the optional ability of a coordinator client to list the
// Seata TC's global transactions (txcoord/client has it).
type seataLister interface {
	SeataList(ctx context.Context, limit int) ([]client.SeataGlobal, error)
}

// The proxy's coordinator is a *client.Client (shardproxy/xa.go): keep it
// able to list, or the rows would silently go.
var _ seataLister = (*client.Client)(nil)
