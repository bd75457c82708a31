package rwsplit

import (
	"context"

	"sort"
	"strconv"
	"strings"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/fleet"
	"github.com/strata-db/strata/shardproxy/internal/sqltext"
)

// IsAdminStatement reports whether sql is one of the statements Handle
// serves: it starts (after spaces and comments) with STRATA or SHOW STRATA.
func IsAdminStatement(sql string) bool {
	w := words(sql, 2)
	return len(w) > 0 && (w[0] == "STRATA" || (len(w) > 1 && w[0] == "SHOW" && w[1] == "STRATA"))
}

// IsShowStatement reports whether sql is SHOW STRATA ..., which changes
// nothing.
func IsShowStatement(sql string) bool {
	w := words(sql, 2)
	return len(w) > 1 && w[0] == "SHOW" && w[1] == "STRATA"
}

// Handle runs an admin statement:
//
//	SHOW STRATA SERVERS
//	STRATA SWITCHOVER SHARD <shard> [TO <server>]
//	STRATA FAILOVER SHARD <shard> [TO <server>]
//
// Keywords are case-insensitive; shard and server names are as in SHOW
// STRATA SERVERS.
func (r *Router) Handle(ctx context.Context, sql string) (*sqltypes.Result, error) {
	w := words(sql, 8)
	switch {
	case len(w) == 3 && w[0] == "SHOW" && w[1] == "STRATA" && w[2] == "SERVERS":
		return ServersResult(r.f.Status()), nil
	case len(w) >= 4 && w[0] == "STRATA" && (w[1] == "SWITCHOVER" || w[1] == "FAILOVER") && w[2] == "SHARD":
		args := rawWords(sql)
		shard, target := args[3], ""
		switch {
		case len(w) == 6 && w[4] == "TO":
			target = args[5]
		case len(w) != 4:
			return nil, syntaxError(sql)
		}
		var rep fleet.Report
		var err error
		if w[1] == "SWITCHOVER" {
			rep, err = r.f.Switchover(ctx, shard, target)
		} else {
			rep, err = r.f.Failover(ctx, shard, target)
		}
		if err != nil {
			return nil, fleet.SQLError(err)
		}
		return reportResult(rep), nil
	}
	return nil, syntaxError(sql)
}

func syntaxError(sql string) error {
	return sqlerror.NewSQLErrorf(sqlerror.ERParseError, sqlerror.SSClientError,
		"You have an error in your SQL syntax near '%.80s': the strata statements are SHOW STRATA SERVERS, STRATA SWITCHOVER SHARD <shard> [TO <server>], STRATA FAILOVER SHARD <shard> [TO <server>]", strings.TrimSpace(sql))
}

// rawWords splits sql into words after leading comments, without a
// trailing semicolon; names may be quoted with backquotes.
func rawWords(sql string) []string {
	s := strings.TrimSpace(sqltext.StripComments(sql))
	s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
	out := strings.Fields(s)
	for i, w := range out {
		out[i] = strings.Trim(w, "`'\"")
	}
	return out
}

// words is rawWords upper-cased, at most n of them (n+1 tells "more").
func words(sql string, n int) []string {
	out := rawWords(sql)
	if len(out) > n+1 {
		out = out[:n+1]
	}
	for i, w := range out {
		out[i] = strings.ToUpper(w)
	}
	return out
}

func field(name string, t querypb.Type) *querypb.Field {
	f := &querypb.Field{Name: name, Type: t}
	if t == querypb.Type_VARCHAR {
		f.Charset = 45 // utf8mb4_general_ci
		f.ColumnLength = 1024
	} else {
		f.Charset = 63 // binary
		f.ColumnLength = 20
	}
	return f
}

// ServersResult renders fleet status as SHOW STRATA SERVERS' rows.
func ServersResult(st []fleet.ServerStatus) *sqltypes.Result {
	v, i := querypb.Type_VARCHAR, querypb.Type_INT64
	res := &sqltypes.Result{Fields: []*querypb.Field{
		field("shard", v), field("server", v), field("addr", v), field("role", v), field("health", v),
		field("read_only", i), field("lag_ms", v), field("position", v), field("replication", v),
		field("delay_s", i), field("outstanding", i), field("reads", i), field("writes", i),
		field("ejections", i), field("last_error", v),
	}}
	for _, s := range st {
		health := "up"
		switch {
		case !s.Healthy:
			health = "down"
		case s.Fenced:
			health = "fenced"
		}
		lag := "unknown"
		if s.LagKnown {
			lag = strconv.FormatFloat(float64(s.Lag)/float64(time.Millisecond), 'f', 1, 64)
		}
		errText := s.LastError
		if errText == "" {
			errText = s.ReplError
		}
		res.Rows = append(res.Rows, []sqltypes.Value{
			sqltypes.NewVarChar(s.Shard), sqltypes.NewVarChar(s.Name), sqltypes.NewVarChar(s.Addr),
			sqltypes.NewVarChar(string(s.Role)), sqltypes.NewVarChar(health), sqltypes.NewInt64(int64(b2i(s.ReadOnly))),
			sqltypes.NewVarChar(lag), sqltypes.NewVarChar(s.Position), sqltypes.NewVarChar(s.Replication),
			sqltypes.NewInt64(int64(s.Delay)), sqltypes.NewInt64(s.Outstanding), sqltypes.NewInt64(int64(s.Reads)),
			sqltypes.NewInt64(int64(s.Writes)), sqltypes.NewInt64(int64(s.Ejections)), sqltypes.NewVarChar(errText),
		})
	}
	return res
}

func reportResult(rep fleet.Report) *sqltypes.Result {
	v, i := querypb.Type_VARCHAR, querypb.Type_INT64
	var not []string
	for name, why := range rep.Unrepointed {
		not = append(not, name+": "+why)
	}
	sort.Strings(not)
	return &sqltypes.Result{
		Fields: []*querypb.Field{field("shard", v), field("old_primary", v), field("new_primary", v), field("position", v),
			field("held_ms", i), field("took_ms", i), field("repointed", v), field("not_repointed", v)},
		Rows: [][]sqltypes.Value{{
			sqltypes.NewVarChar(rep.Shard), sqltypes.NewVarChar(rep.Old), sqltypes.NewVarChar(rep.New), sqltypes.NewVarChar(rep.Position),
			sqltypes.NewInt64(rep.Held.Milliseconds()), sqltypes.NewInt64(rep.Took.Milliseconds()),
			sqltypes.NewVarChar(strings.Join(rep.Repointed, ",")), sqltypes.NewVarChar(strings.Join(not, "; ")),
		}},
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
