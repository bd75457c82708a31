package shardproxy_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestAuth: both authentication methods, with and without a password; a
// wrong password or an unknown user is 1045, and the proxy keeps serving.
func TestAuth(t *testing.T) {
	for _, plugin := range []string{"mysql_native_password", "caching_sha2_password"} {
		t.Run(plugin, func(t *testing.T) {
			p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) {
				c.AuthPlugin = plugin
				c.Users = []config.User{{Name: "root"}, {Name: "app", Password: "s3cret!"}}
			})
			try := func(user, pw string) error {
				mc := mysql.NewConfig()
				mc.User, mc.Passwd, mc.Net, mc.Addr, mc.DBName = user, pw, "tcp", p.Server.Addr(), p.Demo
				mc.Timeout = 5 * time.Second
				c, err := mysql.NewConnector(mc)
				if err != nil {
					return err
				}
				db := sql.OpenDB(c)
				defer db.Close()
				var one int
				return db.QueryRow("SELECT 1").Scan(&one)
			}
			for _, ok := range [][2]string{{"root", ""}, {"app", "s3cret!"}} {
				if err := try(ok[0], ok[1]); err != nil {
					t.Errorf("%s: %v", ok[0], err)
				}
			}
			for _, bad := range [][2]string{{"app", "wrong"}, {"app", ""}, {"root", "x"}, {"nobody", "x"}} {
				if err := try(bad[0], bad[1]); proxytest.SQLErr(err) != 1045 {
					t.Errorf("%s/%q: got %v, want 1045", bad[0], bad[1], err)
				}
			}
			if err := try("app", "s3cret!"); err != nil {
				t.Errorf("after failures: %v", err)
			}
		})
	}
}

// TestTLS: a client may upgrade to TLS; with require, plain clients are
// refused.
func TestTLS(t *testing.T) {
	cert, key := selfSigned(t)
	for _, require := range []bool{false, true} {
		p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) {
			c.TLS = config.TLS{Cert: cert, Key: key, Require: require}
			c.MaxAllowedPacket = 1 << 20
		})
		tlsDB := p.Open(t, p.Demo, "tls=skip-verify")
		var name string
		if err := tlsDB.QueryRow("SELECT 1").Scan(&name); err != nil {
			t.Fatalf("require=%v, TLS client: %v", require, err)
		}
		// SHOW STATUS tells the client about its own connection (the
		// backend's would describe the proxy's plain one).
		var variable, cipher, version string
		if err := tlsDB.QueryRow("SHOW STATUS LIKE 'Ssl_cipher'").Scan(&variable, &cipher); err != nil || cipher == "" {
			t.Errorf("TLS client: Ssl_cipher %q (%v)", cipher, err)
		}
		if err := tlsDB.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_version'").Scan(&variable, &version); err != nil || !strings.HasPrefix(version, "TLSv1.") {
			t.Errorf("TLS client: Ssl_version %q (%v)", version, err)
		}
		plain := p.Open(t, p.Demo)
		if !require {
			if err := plain.QueryRow("SHOW STATUS LIKE 'Ssl_cipher'").Scan(&variable, &cipher); err != nil || cipher != "" {
				t.Errorf("plain client: Ssl_cipher %q (%v), want empty", cipher, err)
			}
		}
		err := plain.Ping()
		if require && proxytest.SQLErr(err) != 3159 {
			t.Errorf("require: plain client got %v, want 3159", err)
		}
		if !require && err != nil {
			t.Errorf("plain client: %v", err)
		}
		if !require {
			continue
		}
		// Over TLS too: packets over max_allowed_packet are refused, and
		// the mariadb client (with its COM_FIELD_LIST completion) works.
		if _, err := tlsDB.Exec("SELECT '" + strings.Repeat("x", 2<<20) + "'"); err == nil {
			t.Error("TLS: 2 MiB statement accepted with max_allowed_packet 1 MiB")
		}
		// The proxy closed that connection after its 1153, as a server
		// does; whether the driver noticed before pooling it again depends
		// on timing, so go on with a fresh pool.
		tlsDB = p.Open(t, p.Demo, "tls=skip-verify")
		proxytest.MustExec(t, tlsDB, "CREATE TABLE IF NOT EXISTS t4 (id BIGINT PRIMARY KEY, name VARCHAR(10), price DECIMAL(8,2))")
		out, err := mariadbCLI(t, p, p.Demo, "SELECT COUNT(*) FROM t4;\n", "--ssl", "--ssl-verify-server-cert=0", "--auto-rehash")
		if err != nil || !strings.Contains(out, "COUNT(*)") {
			t.Errorf("mariadb over TLS: %v %q", err, out)
		}
	}
}

func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strata-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
