package executor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"vitess.io/vitess/go/mysql/sqlerror"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"
)

// protoServer is the server's state for them.
type protoServer struct {
	started   time.Time
	maxPacket int // client packets over this get 1153
}

// protocolLimits reads max_allowed_packet of every shard's primary: a
// statement larger than a shard takes would get 1153 there and the shard
// would close the connection; the proxy takes no larger packets than the
// smallest (nor than its own max_allowed_packet). A shard that cannot be
// asked leaves the configured limit.
func (s *Executor) protocolLimits(ctx context.Context) protoServer {
	ps := protoServer{started: time.Now(), maxPacket: s.cfg.MaxAllowedPacket}
	for _, name := range s.vs.Shards {
		p := s.cluster.Shard(name).Primary
		conn, err := p.Get(ctx, nil)
		if err != nil {
			s.log.Warn("shardproxy: cannot read the shard's max_allowed_packet", "shard", name, "err", err)
			continue
		}
		res, _, err := conn.Exec(ctx, "SELECT @@max_allowed_packet", backend.ExecOptions{Timeout: s.cfg.Backend.ConnectTimeout})
		p.Put(conn)
		if err != nil || len(res.Rows) == 0 {
			s.log.Warn("shardproxy: cannot read the shard's max_allowed_packet", "shard", name, "err", err)
			continue
		}
		n, err := res.Rows[0][0].ToInt64()
		if err == nil && n >= 1024 && int(n) < ps.maxPacket {
			s.log.Info("shardproxy: max_allowed_packet capped by a shard's", "shard", name, "limit", n, "configured", s.cfg.MaxAllowedPacket)
			ps.maxPacket = int(n)
		}
	}
	return ps
}

// MaxAllowedPacket is the largest client packet the proxy takes: its own
// max_allowed_packet, capped by the shards'.
func (s *Executor) MaxAllowedPacket() int { return s.MaxPacket() }

// MaxPacket implements wire.Server: the largest client packet the proxy
// takes.
func (s *Executor) MaxPacket() int {
	if s.proto.maxPacket > 0 {
		return s.proto.maxPacket
	}
	return s.cfg.MaxAllowedPacket
}

// stmtShape is what MariaDB makes of the semicolons and comments of a
// COM_QUERY with multi-statements on, beyond the statements vitess's
// splitter finds: an empty statement between semicolons that a statement
// follows (`SELECT 1;;SELECT 2`, `;SELECT 1`) is a syntax error there
// (`SELECT 1;;` alone is fine), and comments after the last statement's
// semicolon are one more statement, answered with an OK.
type stmtShape struct {
	commentOnly     bool // comments, no statement
	strayAt         int  // offset of the ';' that closes such an empty statement, -1 if none
	strayAfter      int  // statements before it
	trailingComment bool
}

func scanStatements(p *sqlparser.Parser, sql string) stmtShape {
	const eof = 0x100 // the tokenizer's end of input
	sh := stmtShape{strayAt: -1}
	tkn := p.NewStringTokenizer(sql)
	stmts, cand, candAfter := 0, -1, 0
	tokens, comments, anyComment, semicolon := false, false, false, false
	for {
		typ, _ := tkn.Scan()
		switch typ {
		case ';', 0, eof:
			switch {
			case tokens:
				stmts++
				if cand >= 0 && sh.strayAt < 0 {
					sh.strayAt, sh.strayAfter = cand, candAfter
				}
			case !comments && typ == ';' && cand < 0:
				cand, candAfter = tkn.Pos-1, stmts
			}
			if typ != ';' {
				sh.trailingComment = semicolon && !tokens && comments && stmts > 0
				sh.commentOnly = stmts == 0 && anyComment
				return sh
			}
			tokens, comments, semicolon = false, false, true
		case sqlparser.COMMENT:
			comments, anyComment = true, true
		case sqlparser.LEX_ERROR:
			return stmtShape{strayAt: -1} // the parser says what is wrong
		default:
			tokens = true
		}
	}
}

// afterFirstStatement is where MariaDB, reading one statement, finds the
// text it refuses: the first token after the ';' that ends the first
// statement (spaces and comments skipped; a ';' in a string or a comment
// ends nothing).
func afterFirstStatement(p *sqlparser.Parser, sql string) int {
	const eof = 0x100
	tkn := p.NewStringTokenizer(sql)
	for {
		typ, _ := tkn.Scan()
		switch typ {
		case 0, eof, sqlparser.LEX_ERROR:
			return strings.IndexByte(sql, ';')
		case ';':
			return skipSpaceAndComments(sql, tkn.Pos)
		}
	}
}

// skipSpaceAndComments is the offset of the first byte from i on that is
// neither space nor in a comment.
func skipSpaceAndComments(sql string, i int) int {
	for i < len(sql) {
		switch rest := sql[i:]; {
		case strings.ContainsRune(" \t\r\n\f\v", rune(sql[i])):
			i++
		case strings.HasPrefix(rest, "#"), strings.HasPrefix(rest, "-- "), strings.HasPrefix(rest, "--\t"), strings.HasPrefix(rest, "--\n"):
			end := strings.IndexByte(rest, '\n')
			if end < 0 {
				return len(sql)
			}
			i += end + 1
		case strings.HasPrefix(rest, "/*") && !strings.HasPrefix(rest, "/*!") && !strings.HasPrefix(rest, "/*M!"):
			end := strings.Index(rest[2:], "*/")
			if end < 0 {
				return i
			}
			i += 2 + end + 2
		default:
			return i
		}
	}
	return i
}

// oneStatement drops the semicolons that end a single statement: MariaDB
// takes `SELECT 1;;`, the parser one semicolon only.
func oneStatement(sql string) string {
	if i := strings.IndexByte(sql, ';'); i >= 0 && strings.TrimRight(sql[i:], "; \t\r\n") == "" {
		return strings.TrimRight(sql[:i], " \t\r\n")
	}
	return sql
}

// commentOnly tells the parser's "Query was empty" of a statement that is
// only comments, which MariaDB answers with an OK.
func (s *Executor) commentOnly(sql string, err error) bool {
	var se *sqlerror.SQLError
	if !errors.As(err, &se) || se.Num != sqlerror.EREmptyQuery {
		return false
	}
	return scanStatements(s.parser, sql).commentOnly
}

// CheckPrepareText implements wire.Server: it refuses, as MariaDB does, to prepare several
// statements (1064) or none (1065).
func (s *Executor) CheckPrepareText(query string) error {
	if strings.IndexByte(query, ';') < 0 {
		return nil
	}
	pieces, err := s.parser.SplitStatementToPieces(query)
	if len(pieces) == 1 && strings.TrimSpace(pieces[0]) == "" {
		pieces = nil // the splitter's answer to ";"
	}
	switch {
	case err != nil:
		return nil // the parser says what is wrong
	case len(pieces) > 1:
		return mysqlerr.SyntaxErrorAt(query, strings.Index(query, pieces[1]))
	case len(pieces) == 0 && !scanStatements(s.parser, query).commentOnly:
		return errEmpty
	}
	return nil
}

// FieldList implements wire.Session: it reads a table's columns through the session (so that routing and
// the current database are the session's) with a query that returns none
// of its rows.
func (ss *Session) FieldList(table, wildcard string) ([]*querypb.Field, error) {
	if ss.DB == "" {
		return nil, sqlerror.NewSQLError(sqlerror.ERNoDb, sqlerror.SSNoDB, "No database selected")
	}
	sql := "SELECT * FROM " + sqlparser.String(sqlparser.NewIdentifierCS(table)) + " LIMIT 0"
	res, err := ss.execute(context.Background(), sql)
	if err != nil {
		return nil, err
	}
	if wildcard == "" || wildcard == "%" {
		return res.Fields, nil
	}
	re := likeToRegexp(wildcard)
	var out []*querypb.Field
	for _, fl := range res.Fields {
		if re.MatchString(fl.Name) {
			out = append(out, fl)
		}
	}
	return out, nil
}

// Statistics implements wire.Server: the COM_STATISTICS answer, in MariaDB's words.
func (s *Executor) Statistics() []byte {
	up := time.Since(s.proto.started)
	var questions float64 // every statement, the fast lane's too (runLane calls finish)
	if s.metrics != nil {
		for _, c := range s.metrics.Statements {
			var m dto.Metric
			if c != nil && c.Write(&m) == nil {
				questions += m.GetCounter().GetValue()
			}
		}
	}
	var slow float64
	if s.metrics != nil && s.metrics.Slow != nil {
		var m dto.Metric
		if s.metrics.Slow.Write(&m) == nil {
			slow = m.GetCounter().GetValue()
		}
	}
	secs := max(int64(up/time.Second), 1)
	return fmt.Appendf(nil, "Uptime: %d  Threads: %d  Questions: %d  Slow queries: %d  Opens: 0  Open tables: 0  Queries per second avg: %s",
		secs, s.clients.Load(), int64(questions), int64(slow), strconv.FormatFloat(questions/float64(secs), 'f', 3, 64))
}
