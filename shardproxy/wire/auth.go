package wire

import (
	"crypto/rand"
	"crypto/subtle"
	"net"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/config"
)

// AuthServer checks clients against the configured users with
// mysql_native_password or caching_sha2_password, whichever the client
// asks for. Passwords are known in plain text, so caching_sha2_password is
// always answered on its fast path (the client's scramble is checked
// directly): it needs neither TLS nor RSA keys.
type AuthServer struct {
	users   map[string]string
	initial mysql.AuthMethodDescription
}

func NewAuthServer(users []config.User, plugin string) *AuthServer {
	a := &AuthServer{users: map[string]string{}, initial: mysql.AuthMethodDescription(plugin)}
	for _, u := range users {
		a.users[u.Name] = u.Password
	}
	return a
}

func (a *AuthServer) AuthMethods() []mysql.AuthMethod {
	if a.initial == mysql.CachingSha2Password {
		return []mysql.AuthMethod{&sha2Auth{a}, &nativeAuth{a}}
	}
	return []mysql.AuthMethod{&nativeAuth{a}, &sha2Auth{a}}
}

func (a *AuthServer) DefaultAuthMethodDescription() mysql.AuthMethodDescription {
	if a.initial == mysql.CachingSha2Password {
		return a.initial
	}
	return mysql.MysqlNativePassword
}

type userData struct{ User string }

func (u *userData) Get() *querypb.VTGateCallerID { return &querypb.VTGateCallerID{Username: u.User} }

func accessDenied(user string, addr net.Addr, withPassword bool) error {
	host := "localhost"
	if a, ok := addr.(*net.TCPAddr); ok {
		host = a.IP.String()
	}
	using := "NO"
	if withPassword {
		using = "YES"
	}
	return sqlerror.NewSQLErrorf(sqlerror.ERAccessDeniedError, sqlerror.SSAccessDeniedError,
		"Access denied for user '%s'@'%s' (using password: %s)", user, host, using)
}

func Salt() ([]byte, error) {
	s := make([]byte, 20)
	if _, err := rand.Read(s); err != nil {
		return nil, err
	}
	// The salt must be printable and have no NUL: clients treat it as a
	// C string.
	for i := range s {
		s[i] &= 0x7f
		if s[i] == 0 || s[i] == '$' {
			s[i]++
		}
	}
	return append(s, 0), nil
}

// check compares the client's scramble with the one the password gives.
// An empty password expects an empty answer.
func (a *AuthServer) Check(user string, serverData, reply []byte, addr net.Addr, scramble func(salt, pw []byte) []byte) (mysql.Getter, error) {
	pw, ok := a.users[user]
	if len(reply) == 1 && reply[0] == 0 {
		reply = nil
	}
	if !ok || len(serverData) == 0 || serverData[len(serverData)-1] != 0 {
		return nil, accessDenied(user, addr, len(reply) > 0)
	}
	if pw == "" {
		if len(reply) != 0 {
			return nil, accessDenied(user, addr, true)
		}
		return &userData{user}, nil
	}
	want := scramble(serverData[:len(serverData)-1], []byte(pw))
	if subtle.ConstantTimeCompare(want, reply) != 1 {
		return nil, accessDenied(user, addr, len(reply) > 0)
	}
	return &userData{user}, nil
}

type nativeAuth struct{ a *AuthServer }

func (n *nativeAuth) Name() mysql.AuthMethodDescription { return mysql.MysqlNativePassword }

// HandleUser accepts every name: an unknown user fails the password check
// with 1045, as on a server, instead of a handshake error.
func (n *nativeAuth) HandleUser(*mysql.Conn, string) bool { return true }
func (n *nativeAuth) AllowClearTextWithoutTLS() bool      { return true }
func (n *nativeAuth) AuthPluginData() ([]byte, error)     { return Salt() }
func (n *nativeAuth) HandleAuthPluginData(_ *mysql.Conn, user string, serverData, reply []byte, addr net.Addr) (mysql.Getter, error) {
	return n.a.Check(user, serverData, reply, addr, mysql.ScrambleMysqlNativePassword)
}

type sha2Auth struct{ a *AuthServer }

func (s *sha2Auth) Name() mysql.AuthMethodDescription   { return mysql.CachingSha2Password }
func (s *sha2Auth) HandleUser(*mysql.Conn, string) bool { return true }
func (s *sha2Auth) AllowClearTextWithoutTLS() bool      { return true }
func (s *sha2Auth) AuthPluginData() ([]byte, error)     { return Salt() }
func (s *sha2Auth) HandleAuthPluginData(c *mysql.Conn, user string, serverData, reply []byte, addr net.Addr) (mysql.Getter, error) {
	g, err := s.a.Check(user, serverData, reply, addr, mysql.ScrambleCachingSha2Password)
	if err != nil {
		return nil, err
	}
	if s.a.users[user] != "" {
		// Fast authentication succeeded: AuthMoreData(0x03), then the
		// listener sends OK. WritePacket's first four bytes are the header.
		if err := c.WritePacket([]byte{0, 0, 0, 0, mysql.AuthMoreDataPacket, mysql.CachingSha2FastAuth}); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// HasPassword reports whether user is configured with a password.
func (a *AuthServer) HasPassword(user string) bool { return a.users[user] != "" }
