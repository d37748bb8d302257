package voice

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

type everyone struct{}

func (everyone) HasMember(context.Context, string) (bool, error) { return true, nil }

// TestTURNOverTLS: with a certificate, TURN also listens for TLS over TCP,
// the credentials name it as turns:, and an allocation over it works for
// a client that verifies the certificate.
func TestTURNOverTLS(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "turn.iotad.test"},
		DNSNames: []string{"turn.iotad.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	conf := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil },
		NextProtos: []string{"http/1.1", "acme-tls/1"}}
	srv, err := StartTURN(TURNConfig{Addr: "127.0.0.1:0", PublicIP: "127.0.0.1", Secret: "s", Members: everyone{},
		TLS: conf, TLSAddr: "127.0.0.1:0", TLSHost: "turn.iotad.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	urls, user, pass, err := srv.Credentials("u1")
	if err != nil {
		t.Fatal(err)
	}
	want := "turns:turn.iotad.test:" + strconv.Itoa(srv.TLSPort()) + "?transport=tcp"
	if len(urls) != 3 || urls[2] != want {
		t.Fatalf("URLs %v, want the third %q", urls, want)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	addr := "127.0.0.1:" + strconv.Itoa(srv.TLSPort())
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "turn.iotad.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Username: user, Password: pass,
		Realm: "iotad", Conn: turn.NewSTUNConn(conn)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate over turns: %v", err)
	}
	defer relay.Close()
	if !strings.HasPrefix(relay.LocalAddr().String(), "127.0.0.1:") || srv.Allocations("u1") != 1 {
		t.Fatalf("relay %v, %d allocations", relay.LocalAddr(), srv.Allocations("u1"))
	}
	// Without TLS there is no turns: URL.
	plain, err := StartTURN(TURNConfig{Addr: "127.0.0.1:0", PublicIP: "127.0.0.1", Secret: "s", Members: everyone{}})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if urls, _, _, _ := plain.Credentials("u1"); len(urls) != 2 || plain.TLSPort() != 0 {
		t.Fatalf("plain TURN URLs %v", urls)
	}
}
