package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"

	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/collations"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
)

// Commands that the vitess listener answers differently from MariaDB, or
// not at all, are answered here, in Conn.Read, before the listener
// sees them (as COM_FIELD_LIST is):
//
//   - COM_STMT_SEND_LONG_DATA has no response, whatever happens: an unknown
//     statement is ignored, a parameter number out of range makes the
//     statement's next executes fail with 1210 until COM_STMT_RESET (the
//     listener answered errors with ERR packets the client never reads);
//   - COM_STMT_RESET and COM_STMT_EXECUTE of an unknown statement get 1243
//     (the listener sent 2014, and crashed the connection on a reset);
//   - the first COM_STMT_EXECUTE of a statement with parameters must bind
//     their types: 1210 (the listener ran it with NULLs); a parameter value
//     cut short is 1210 too (the listener's 2027, rewritten in Write);
//   - the OK of a prepared statement carries its warning count (the
//     listener's is always 0);
//   - COM_STMT_PREPARE of several statements is 1064, of none 1065;
//   - COM_STMT_FETCH goes to the session (Session.Fetch: the listener has
//     no cursors), and COM_STMT_RESET and COM_STMT_CLOSE close the
//     statement's cursor there before the listener answers them;
//   - COM_CHANGE_USER authenticates again and starts the session over;
//   - COM_STATISTICS, COM_PROCESS_INFO and COM_DEBUG get MariaDB's answers
//     (mariadb-admin status and processlist send them);
//   - COM_PROCESS_KILL (mariadb-admin kill, old connectors) is the KILL
//     statement, which the executor answers with the proxy's ids.

// Command bytes the listener has no constants for.
const (
	comStatistics  = 0x09
	comProcessInfo = 0x0a
	comProcessKill = 0x0c
	comDebug       = 0x0d
	comChangeUser  = 0x11
)

// protoConn is a client connection's state for the commands above.
type protoConn struct {
	// typed: statements whose parameter types a COM_STMT_EXECUTE bound
	// (on the listener's path; the fast lane remembers its own).
	typed map[uint32]bool
	// longErr: statements that a COM_STMT_SEND_LONG_DATA gave a parameter
	// number they do not have.
	longErr map[uint32]bool
	// inject is a command for the listener in place of the client's.
	inject []byte
	// watchExec: a COM_STMT_EXECUTE went to the listener; Write fixes its
	// answer.
	watchExec bool
	// watchPrepare: a COM_STMT_PREPARE went to the listener; Write fixes
	// its parameters' definitions.
	watchPrepare bool
	// Cursors Conn keeps (cursor.go): while capturing, the listener's
	// answer to the COM_STMT_EXECUTE of captureID is gathered in captured.
	capturing bool
	captureID uint32
	captured  []byte
	cursors   map[uint32]*heldCursor
}

// injected serves a command put in place of the client's.
func (f *Conn) injected(p []byte) int {
	n := copy(p, f.proto.inject)
	f.proto.inject = f.proto.inject[n:]
	return n
}

// intercept answers the command packet at the head of the buffer (command
// cmd, length bytes after its header) when it is one of those above; handled says it
// was consumed.
func (f *Conn) intercept(cmd byte, length int) (handled bool, err error) {
	switch cmd {
	case mysql.ComStmtExecute:
		if len(f.proto.longErr) == 0 || f.sess == nil || length < 5 {
			return false, nil
		}
		h, err := f.r.Peek(9)
		if err != nil || !f.proto.longErr[binary.LittleEndian.Uint32(h[5:])] {
			return false, nil
		}
		return true, f.consumeAndAnswer(length, func() []byte {
			return errPayload(sqlerror.ERWrongArguments, sqlerror.SSUnknownSQLState, "Incorrect arguments to mysqld_stmt_send_long_data")
		})
	case mysql.ComStmtSendLongData:
		if f.sess == nil || f.sess.MySQL() == nil {
			return false, nil
		}
		pkt, err := f.readPacket(length)
		if err != nil {
			return true, err
		}
		f.longData(pkt[1:])
		return true, nil
	case mysql.ComStmtFetch:
		if f.sess == nil || f.sess.MySQL() == nil {
			return false, nil
		}
		pkt, err := f.readPacket(length)
		if err != nil {
			return true, err
		}
		if len(pkt) >= 9 {
			id := binary.LittleEndian.Uint32(pkt[1:])
			if c := f.proto.cursors[id]; c != nil {
				return true, f.fetchHeld(id, c, binary.LittleEndian.Uint32(pkt[5:]))
			}
		}
		return true, f.sess.Fetch(f, pkt[1:])
	case mysql.ComStmtClose:
		if f.sess != nil && length >= 5 {
			if h, err := f.r.Peek(9); err == nil {
				id := binary.LittleEndian.Uint32(h[5:])
				delete(f.proto.cursors, id)
				f.sess.CloseCursor(id)
			}
		}
		return false, nil // the listener forgets the statement
	case comResetConnection:
		f.proto.cursors = nil
		if f.sess != nil && f.sess.MySQL() != nil {
			f.ok = okExtras{pending: true, session: true}
		}
		return false, nil // the listener answers
	case mysql.ComStmtReset:
		if f.sess == nil || f.sess.MySQL() == nil {
			return false, nil
		}
		h, err := f.r.Peek(min(4+length, 9))
		if err != nil {
			return false, nil
		}
		var id uint32
		if len(h) == 9 {
			id = binary.LittleEndian.Uint32(h[5:])
		}
		if len(h) == 9 && f.sess.MySQL().PrepareData[id] != nil {
			delete(f.proto.longErr, id)
			delete(f.proto.cursors, id)
			f.sess.CloseCursor(id)
			return false, nil // the listener drops the long data
		}
		return true, f.consumeAndAnswer(length, func() []byte {
			return errPayload(sqlerror.ERUnknownStmtHandler, sqlerror.SSUnknownSQLState,
				fmt.Sprintf("Unknown prepared statement handler (%d) given to mysqld_stmt_reset", id))
		})
	case mysql.ComPrepare:
		// The listener refuses several statements with an error of no
		// code, and the handler never sees the text.
		if 4+length > f.r.Size() {
			return false, nil
		}
		b, err := f.r.Peek(4 + length)
		if err != nil || bytes.IndexByte(b[5:], ';') < 0 {
			return false, nil
		}
		perr := f.srv.CheckPrepareText(string(b[5:]))
		if perr == nil {
			return false, nil
		}
		return true, f.consumeAndAnswer(length, func() []byte {
			se := mysqlerr.From(perr)
			return errPayload(sqlerror.ErrorCode(se.Num), se.State, se.Message)
		})
	case comStatistics:
		return true, f.consumeAndAnswer(length, f.srv.Statistics)
	case comDebug:
		return true, f.consumeAndAnswer(length, f.eofPayload)
	case comProcessInfo:
		if _, err := f.readPacket(length); err != nil {
			return true, err
		}
		q := "SHOW PROCESSLIST"
		f.proto.inject = append([]byte{byte(len(q) + 1), 0, 0, 0, mysql.ComQuery}, q...)
		return true, nil
	case comProcessKill:
		pkt, err := f.readPacket(length)
		if err != nil {
			return true, err
		}
		q := "KILL"
		if len(pkt) >= 5 {
			q = fmt.Sprintf("KILL %d", binary.LittleEndian.Uint32(pkt[1:5]))
		}
		f.proto.inject = append([]byte{byte(len(q) + 1), 0, 0, 0, mysql.ComQuery}, q...)
		return true, nil
	case mysql.ComSetOption:
		// The listener answers an unknown option with an ERR and then an
		// EOF: two answers to one command, and the client reads the EOF as
		// its next command's.
		if length < 3 {
			return false, nil
		}
		h, err := f.r.Peek(7)
		if err != nil || binary.LittleEndian.Uint16(h[5:]) <= 1 {
			return false, nil
		}
		return true, f.consumeAndAnswer(length, unknownCommand)
	case comChangeUser:
		if f.sess == nil || f.sess.MySQL() == nil {
			return false, nil
		}
		pkt, err := f.readPacket(length)
		if err != nil {
			return true, err
		}
		return true, f.changeUser(pkt[1:])
	}
	if !listenerCommands[cmd] {
		return true, f.consumeAndAnswer(length, unknownCommand)
	}
	return false, nil
}

// listenerCommands are the commands the listener reads (some of them
// answered here first); MariaDB answers any other with 1047, the listener
// with a text of its own.
var listenerCommands = [256]bool{
	mysql.ComQuit: true, mysql.ComInitDB: true, mysql.ComQuery: true, comFieldList: true,
	comStatistics: true, comProcessInfo: true, comProcessKill: true, comDebug: true,
	mysql.ComPing: true, comChangeUser: true, mysql.ComBinlogDump: true, mysql.ComRegisterReplica: true,
	mysql.ComPrepare: true, mysql.ComStmtExecute: true, mysql.ComStmtSendLongData: true,
	mysql.ComStmtClose: true, mysql.ComStmtReset: true, mysql.ComSetOption: true,
	mysql.ComStmtFetch: true, mysql.ComBinlogDumpGTID: true, comResetConnection: true,
}

// unknownCommand is MariaDB's answer to a command it does not know.
func unknownCommand() []byte {
	return errPayload(sqlerror.ERUnknownComError, sqlerror.SSNetError, "Unknown command")
}

// checkExecute looks at a COM_STMT_EXECUTE of statement id (prep, nil if
// there is none) on its way to the listener (the packet at the head of the
// buffer) and answers it when MariaDB would refuse it: an unknown
// statement, or parameters whose types were never bound. handled says it
// was consumed.
func (f *Conn) checkExecute(length int, id uint32, prep *mysql.PrepareData) (handled bool, err error) {
	const head = 4 + 1 + 4 + 1 + 4 // header, command, id, flags, iterations
	if prep == nil {
		return true, f.consumeAndAnswer(length, func() []byte {
			return errPayload(sqlerror.ERUnknownStmtHandler, sqlerror.SSUnknownSQLState,
				fmt.Sprintf("Unknown prepared statement handler (%d) given to mysqld_stmt_execute", id))
		})
	}
	f.proto.watchExec = true
	n := int(prep.ParamsCount)
	flagAt := head + (n+7)/8
	if n == 0 || 4+length <= flagAt {
		return false, nil
	}
	b, err := f.r.Peek(flagAt + 1)
	if err != nil {
		return false, nil
	}
	if b[flagAt] == 1 {
		if f.proto.typed == nil || len(f.proto.typed) > len(f.sess.MySQL().PrepareData)+16 {
			f.sweepTyped()
		}
		f.proto.typed[id] = true
		return false, nil
	}
	if f.proto.typed[id] {
		return false, nil
	}
	if f.sess.LaneTyped(id) {
		return false, nil // the fast lane saw them bound
	}
	f.proto.watchExec = false
	return true, f.consumeAndAnswer(length, func() []byte {
		return errPayload(sqlerror.ERWrongArguments, sqlerror.SSUnknownSQLState, "Incorrect arguments to mysqld_stmt_execute")
	})
}

// sweepTyped forgets statements the client closed.
func (f *Conn) sweepTyped() {
	if f.proto.typed == nil {
		f.proto.typed = map[uint32]bool{}
		return
	}
	for id := range f.proto.typed {
		if f.sess.MySQL().PrepareData[id] == nil {
			delete(f.proto.typed, id)
		}
	}
}

// fixExecAnswer rewrites the listener's answer to a COM_STMT_EXECUTE (p
// starts with it): a parameter value cut short is MariaDB's 1210, not the
// listener's 2027, and an OK carries the statement's warnings. nil: p goes
// as it is.
func (f *Conn) fixExecAnswer(p []byte) []byte {
	if len(p) < 7 {
		return nil
	}
	n := int(p[0]) | int(p[1])<<8 | int(p[2])<<16
	if 4+n > len(p) {
		return nil
	}
	switch p[4] {
	case mysql.ErrPacket:
		if binary.LittleEndian.Uint16(p[5:]) != uint16(sqlerror.CRMalformedPacket) {
			return nil
		}
		q := appendPacket(nil, p[3], errPayload(sqlerror.ERWrongArguments, sqlerror.SSUnknownSQLState, "Incorrect arguments to mysqld_stmt_execute"))
		return append(q, p[4+n:]...)
	case mysql.OKPacket:
		if f.sess == nil {
			return nil
		}
		w := f.sess.WarningCount()
		pos := 5
		for i := 0; i < 2; i++ { // affected rows, insert id
			_, next, ok := ReadLenEncInt(p[:4+n], pos)
			if !ok {
				return nil
			}
			pos = next
		}
		if w == 0 || pos+4 > 4+n || binary.LittleEndian.Uint16(p[pos+2:]) != 0 {
			return nil
		}
		q := append([]byte(nil), p...)
		binary.LittleEndian.PutUint16(q[pos+2:], w)
		return q
	}
	return nil
}

// listenerParamDef is the definition the listener writes for each
// parameter in a prepare response: "?", VAR_STRING, binary.
var listenerParamDef = []byte("\x03def\x00\x00\x00\x01?\x00\x0c\x3f\x00\x00\x00\x00\x00\xfd\x80\x00\x00\x00\x00")

// fixPrepareAnswer is p, the listener's answer to a COM_STMT_PREPARE (or
// what of it one write holds), with each parameter's type MariaDB's
// MYSQL_TYPE_NULL: MariaDB does not know a parameter's type at prepare.
// nil: p goes as it is.
func fixPrepareAnswer(p []byte) []byte {
	if len(p) < 4+12 || p[4] != mysql.OKPacket {
		return nil
	}
	n := int(p[0]) | int(p[1])<<8 | int(p[2])<<16
	params := int(binary.LittleEndian.Uint16(p[4+7:]))
	var q []byte
	for at := 4 + n; params > 0 && at+4 <= len(p); params-- {
		m := int(p[at]) | int(p[at+1])<<8 | int(p[at+2])<<16
		if at+4+m > len(p) || !bytes.Equal(p[at+4:at+4+m], listenerParamDef) {
			break
		}
		if q == nil {
			q = append([]byte(nil), p...)
		}
		q[at+4+17] = 0x06 // MYSQL_TYPE_NULL
		at += 4 + m
	}
	return q
}

// longData takes COM_STMT_SEND_LONG_DATA (data after the command byte) as
// MariaDB does, without a response.
func (f *Conn) longData(data []byte) {
	if len(data) < 6 {
		return
	}
	id := binary.LittleEndian.Uint32(data)
	param := int(binary.LittleEndian.Uint16(data[4:]))
	prep := f.sess.MySQL().PrepareData[id]
	if prep == nil {
		return
	}
	if param >= int(prep.ParamsCount) {
		if f.proto.longErr == nil {
			f.proto.longErr = map[uint32]bool{}
		}
		f.proto.longErr[id] = true
		return
	}
	if prep.BindVars == nil {
		prep.BindVars = map[string]*querypb.BindVariable{}
	}
	key := ParamName(param)
	if v := prep.BindVars[key]; v != nil {
		v.Value = append(v.Value, data[6:]...)
	} else {
		prep.BindVars[key] = sqltypes.BytesBindVariable(append([]byte(nil), data[6:]...))
	}
}

// changeUser runs COM_CHANGE_USER (data after the command byte): the
// client authenticates as the user it names (always through an auth
// switch, with a fresh salt), and on success the session starts over as
// after COM_RESET_CONNECTION, in the database and character set the packet
// names. A failed one leaves the session as it was.
func (f *Conn) changeUser(data []byte) error {
	c := f.sess.MySQL()
	seq := byte(1)
	reply := func(payload []byte) error {
		_, err := f.w.Write(appendPacket(nil, seq, payload))
		seq++
		return err
	}
	fail := func(err error) error {
		se := mysqlerr.From(err)
		return reply(errPayload(sqlerror.ErrorCode(se.Num), se.State, se.Message))
	}
	malformed := func() error {
		return fail(sqlerror.NewSQLError(mysqlerr.ERMalformedPacket, sqlerror.SSUnknownSQLState, "Malformed communication packet."))
	}
	user, rest, ok := bytes.Cut(data, []byte{0})
	if !ok {
		return malformed()
	}
	if c.Capabilities&mysql.CapabilityClientSecureConnection != 0 {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return malformed()
		}
		rest = rest[1+int(rest[0]):]
	} else if _, rest, ok = bytes.Cut(rest, []byte{0}); !ok {
		return malformed()
	}
	db, rest, _ := bytes.Cut(rest, []byte{0})
	charset := c.CharacterSet
	if len(rest) >= 2 {
		charset = collations.ID(binary.LittleEndian.Uint16(rest))
		rest = rest[2:]
	}
	plugin := string(NewAuthServer(nil, f.cfg.AuthPlugin).DefaultAuthMethodDescription())
	if c.Capabilities&mysql.CapabilityClientPluginAuth != 0 {
		if name, _, _ := bytes.Cut(rest, []byte{0}); string(name) == string(mysql.MysqlNativePassword) || string(name) == string(mysql.CachingSha2Password) {
			plugin = string(name)
		}
	}

	// The auth switch: the client answers with its scramble of the new
	// salt.
	salt, err := Salt()
	if err != nil {
		return err
	}
	sw := append([]byte{mysql.AuthSwitchRequestPacket}, plugin+"\x00"...)
	if err := reply(append(sw, salt...)); err != nil {
		return err
	}
	resp, err := f.readReply()
	if err != nil {
		return err
	}
	seq++
	auth := NewAuthServer(f.cfg.Users, f.cfg.AuthPlugin)
	scramble := mysql.ScrambleMysqlNativePassword
	if plugin == string(mysql.CachingSha2Password) {
		scramble = mysql.ScrambleCachingSha2Password
	}
	getter, err := auth.Check(string(user), salt, resp, f.Conn.RemoteAddr(), scramble)
	if err != nil {
		f.cfg.Log.Warn("shardproxy: COM_CHANGE_USER refused", "conn", f.ID, "user", string(user), "err", err)
		return fail(err)
	}
	if plugin == string(mysql.CachingSha2Password) && auth.HasPassword(string(user)) {
		if err := reply([]byte{mysql.AuthMoreDataPacket, mysql.CachingSha2FastAuth}); err != nil {
			return err
		}
	}

	// Start over, as the new user.
	c.User, c.UserData = string(user), getter
	c.CharacterSet = charset
	c.PrepareData = map[uint32]*mysql.PrepareData{}
	f.proto.typed, f.proto.longErr, f.proto.cursors = nil, nil, nil
	if err := f.sess.ChangedUser(string(db)); err != nil {
		return fail(err)
	}
	okPkt := []byte{mysql.OKPacket, 0, 0}
	okPkt = binary.LittleEndian.AppendUint16(okPkt, c.StatusFlags)
	okPkt = binary.LittleEndian.AppendUint16(okPkt, 0)
	return reply(okPkt)
}

// readPacket reads the packet at the head of the buffer (length bytes
// after its header, which it includes); a packet of 16 MiB or more is
// read with the pieces that continue it, their headers dropped.
func (f *Conn) readPacket(length int) ([]byte, error) {
	pkt := make([]byte, 4+length)
	if _, err := readFull(f.r, pkt); err != nil {
		return nil, err
	}
	pkt = pkt[4:]
	for last := length; last == 0xffffff; {
		var hdr [4]byte
		if _, err := readFull(f.r, hdr[:]); err != nil {
			return nil, err
		}
		last = int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		if len(pkt)+last >= f.srv.MaxPacket() {
			f.tooLarge(hdr[3])
			return nil, errTooLarge
		}
		more := make([]byte, last)
		if _, err := readFull(f.r, more); err != nil {
			return nil, err
		}
		pkt = append(pkt, more...)
	}
	f.lastFull = false // the pieces were read here
	return pkt, nil
}

// readReply reads the client's next packet (an answer in an exchange the
// proxy runs itself).
func (f *Conn) readReply() ([]byte, error) {
	hdr, err := f.r.Peek(4)
	if err != nil {
		return nil, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if n > 1<<16 {
		return nil, errTooLarge
	}
	return f.readPacket(n)
}

// consumeAndAnswer drops the packet at the head of the buffer and writes
// the one-packet answer that answer builds.
func (f *Conn) consumeAndAnswer(length int, answer func() []byte) error {
	if _, err := f.readPacket(length); err != nil {
		return err
	}
	_, err := f.w.Write(appendPacket(nil, 1, answer()))
	return err
}

// errPayload is the payload of an ERR packet.
func errPayload(code sqlerror.ErrorCode, state, msg string) []byte {
	return AppendErr(nil, 0, code, state, msg)[4:]
}

// AppendErr appends an ERR packet, with its header, to b (a SQL state that
// is not 5 characters becomes HY000).
func AppendErr(b []byte, seq byte, code sqlerror.ErrorCode, state, msg string) []byte {
	if len(state) != 5 {
		state = sqlerror.SSUnknownSQLState
	}
	n := 1 + 2 + 1 + 5 + len(msg)
	b = append(b, byte(n), byte(n>>8), byte(n>>16), seq, mysql.ErrPacket, byte(code), byte(code>>8), '#')
	b = append(b, state...)
	return append(b, msg...)
}

// appendPacket appends a packet (payload under 16 MiB) with its header.
func appendPacket(b []byte, seq byte, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n), byte(n>>8), byte(n>>16), seq)
	return append(b, payload...)
}
