package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names in the directory, as MySQL 8 names its generated ones.
const (
	CAFile     = "ca.pem"
	CAKeyFile  = "ca-key.pem"
	CertFile   = "server-cert.pem"
	KeyFile    = "server-key.pem"
	validYears = 10
)

// Files are the paths of one directory's certificates.
type Files struct {
	Dir, CA, CAKey, Cert, Key string
	// Created is true when Ensure made them (the first start).
	Created bool
}

// Paths returns the file paths in dir, whether or not they exist.
func Paths(dir string) Files {
	return Files{
		Dir:   dir,
		CA:    filepath.Join(dir, CAFile),
		CAKey: filepath.Join(dir, CAKeyFile),
		Cert:  filepath.Join(dir, CertFile),
		Key:   filepath.Join(dir, KeyFile),
	}
}

// Ensure returns dir's certificates, making them first when the server
// certificate or key is missing. hosts (names or IP addresses) go into the
// server certificate's subject alternative names besides localhost,
// 127.0.0.1 and ::1. Keys are written readable by the owner only. Files
// that exist are kept as they are: delete the directory to make new ones.
func Ensure(dir string, hosts []string) (Files, error) {
	f := Paths(dir)
	_, errCert := os.Stat(f.Cert)
	_, errKey := os.Stat(f.Key)
	if errCert == nil && errKey == nil {
		// A private key others can read is refused, as ssh does, rather
		// than served: whoever read it can impersonate the server.
		for _, p := range []string{f.Key, f.CAKey} {
			if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
				return f, fmt.Errorf("tlscert: %s is readable by others (mode %v): chmod 600 it, or delete %s to make new certificates", p, st.Mode().Perm(), dir)
			}
		}
		if _, err := tls.LoadX509KeyPair(f.Cert, f.Key); err != nil {
			return f, fmt.Errorf("tlscert: %s: %w (delete %s to make new certificates)", f.Cert, err, dir)
		}
		return f, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, fmt.Errorf("tlscert: %w", err)
	}
	if err := create(f, hosts, time.Now()); err != nil {
		return f, err
	}
	f.Created = true
	return f, nil
}

func create(f Files, hosts []string, now time.Time) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Strata auto-generated CA", Organization: []string{"Strata"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(validYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("tlscert: CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("tlscert: CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	srv := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "Strata auto-generated server certificate", Organization: []string{"Strata"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(validYears, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		switch ip := net.ParseIP(h); {
		case h == "" || h == "localhost":
		case ip != nil:
			if !ip.IsUnspecified() && !ip.Equal(net.IPv4(127, 0, 0, 1)) && !ip.Equal(net.IPv6loopback) {
				srv.IPAddresses = append(srv.IPAddresses, ip)
			}
		default:
			srv.DNSNames = append(srv.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, srv, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("tlscert: server certificate: %w", err)
	}
	// The CA's key is written too, as MySQL does, so that an operator can
	// sign client certificates or a new server certificate with it.
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	for _, w := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{f.CA, "CERTIFICATE", caDER, 0o644},
		{f.CAKey, "EC PRIVATE KEY", caKeyDER, 0o600},
		{f.Key, "EC PRIVATE KEY", keyDER, 0o600},
		{f.Cert, "CERTIFICATE", der, 0o644}, // last: its presence says the set is complete
	} {
		if err := writeAtomic(w.path, pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: w.der}), w.mode); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// writeAtomic writes through a temporary file and a rename, so a crash
// never leaves half a key behind.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("tlscert: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("tlscert: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	return nil
}

// CAPool returns a pool holding dir's CA, for a client's tls.Config.
func CAPool(caFile string) (*x509.CertPool, error) {
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tlscert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("tlscert: %s holds no PEM certificate", caFile)
	}
	return pool, nil
}
