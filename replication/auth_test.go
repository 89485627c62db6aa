package replication

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aerolithsdb/aerolith/db"
	"github.com/aerolithsdb/aerolith/log"
	"github.com/twmb/franz-go/pkg/kfake"
)

// selfSigned returns a TLS certificate for 127.0.0.1 and the path of its PEM (the CA
// file a client trusts).
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, ca
}

// TestTLSAndSASL: the shipper reaches a broker that wants TLS and SASL (PLAIN and
// SCRAM-SHA-256) with the configured CA and credentials, and reports the failure when
// the password is wrong.
func TestTLSAndSASL(t *testing.T) {
	cert, ca := selfSigned(t)
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "pw1"), kfake.Superuser("SCRAM-SHA-256", "scramuser", "pw2"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	broker := k.ListenAddrs()[0]
	east := openDC(t, "east")
	ctx := context.Background()
	for _, tc := range []struct {
		name, mech, user, pass string
		ok                     bool
	}{
		{"plain", "plain", "plainuser", "pw1", true},
		{"scram", "scram-sha-256", "scramuser", "pw2", true},
		{"wrong password", "scram-sha-256", "scramuser", "nope", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("east", broker, t.TempDir())
			cfg.NoApply, cfg.TLSCAFile, cfg.SASLMechanism, cfg.SASLUser, cfg.SASLPassword = true, ca, tc.mech, tc.user, tc.pass
			r := startRep(t, cfg, east)
			defer r.Close()
			res, err := east.Write(ctx, "test", db.Write{Op: log.OpPut, Collection: "c", ID: tc.name[:1], Body: []byte(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			err = r.WaitShipped(wctx, res.Position)
			if tc.ok && err != nil {
				t.Fatalf("shipping over TLS with SASL %s: %v; status %+v", tc.mech, err, link(r.Status(), "ship"))
			}
			if !tc.ok {
				l := link(r.Status(), "ship")
				if err == nil || l.LastError == "" || l.State == "shipping" {
					t.Fatalf("wrong password: WaitShipped %v, link %+v", err, l)
				}
			}
		})
	}
}
