package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "iotad test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leaf makes a server certificate for 127.0.0.1, localhost and names,
// with the given serial, as PEM.
func (ca *testCA) leaf(t *testing.T, serial int64, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "iotad test leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: append([]string{"localhost"}, names...), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// files writes a leaf and its key to a fresh directory, as serve's
// --tls-cert and --tls-key read them.
func (ca *testCA) files(t *testing.T, serial int64, names ...string) (certFile, keyFile string) {
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	c, k := ca.leaf(t, serial, names...)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	return certFile, keyFile
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// grepWriter passes on the log lines that contain want, so that the
// server's other lines never block it.
type grepWriter struct {
	want  string
	lines chan string
}

func (w grepWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(string(p), "\n") {
		if strings.Contains(l, w.want) {
			w.lines <- l
		}
	}
	return len(p), nil
}

// servedSerial is the serial of the leaf addr serves to a client that
// trusts pool.
func servedSerial(t *testing.T, addr string, pool *x509.CertPool) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func waitLine(t *testing.T, lines <-chan string, want string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, want) {
				return l
			}
		case <-deadline:
			t.Fatalf("no log line with %q", want)
		}
	}
}

// TestServeTLSFromFiles: with --tls-cert and --tls-key, the Iota and the
// community are reached over wss:// and logged in to; every response says
// HSTS; --http-addr redirects to https; a renewed pair written to the files
// is served without a restart, and a bad one keeps the last good one.
func TestServeTLSFromFiles(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.files(t, 1001, "iotad.test")
	data := t.TempDir()
	addr, httpAddr := freePort(t), freePort(t)
	logs := grepWriter{want: "TLS certificate", lines: make(chan string, 100)}
	startServeWith(t, logs, "--data", data, "--addr", addr, "--tls-cert", certFile, "--tls-key", keyFile,
		"--tls-reload", "20ms", "--http-addr", httpAddr, "--turn-addr", "127.0.0.1:0", "--public-ip", "127.0.0.1")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tc := &tls.Config{RootCAs: ca.pool()}
	raw, _ := os.ReadFile(filepath.Join(data, "owner.tu"))
	userID, priv, _ := icrypto.ParseKeyFile(raw)
	iota, err := client.Dial(ctx, "wss://"+addr+"/ws/iota", &client.Options{TLSConfig: tc})
	if err != nil {
		t.Fatal(err)
	}
	defer iota.Close()
	if _, err := iota.Login(ctx, priv, map[string]any{"user_id": userID}); err != nil {
		t.Fatalf("Iota login over wss: %v", err)
	}
	// The name, not only the IP: the community's clients use its host name.
	tcName := &tls.Config{RootCAs: ca.pool(), ServerName: "iotad.test"}
	com, err := client.Dial(ctx, "wss://"+addr+"/", &client.Options{TLSConfig: tcName})
	if err != nil {
		t.Fatal(err)
	}
	defer com.Close()
	_, mpriv, _ := icrypto.GenerateKey(randReader)
	if _, err := com.LoginCommunity(ctx, "friend", mpriv, firstInvites(t, data)[1], nil); err != nil {
		t.Fatalf("community login over wss: %v", err)
	}
	// The call socket over TLS, and turns: among the ticket's servers.
	r, err := com.Function(ctx, "voice", "General", "voice", "join", nil)
	if err != nil {
		t.Fatal(err)
	}
	res0, _ := r.Result()
	var join struct {
		Ticket     string `json:"ticket"`
		ICEServers []struct {
			URLs []string `json:"urls"`
		} `json:"ice_servers"`
	}
	if err := json.Unmarshal(res0.Payload, &join); err != nil || join.Ticket == "" {
		t.Fatalf("voice join: %s %v", res0.Payload, err)
	}
	if urls := fmt.Sprint(join.ICEServers); !strings.Contains(urls, "turns:127.0.0.1:") || !strings.Contains(urls, "?transport=tcp") {
		t.Fatalf("the ticket's ICE servers name no turns: %s", urls)
	}
	call, err := client.Dial(ctx, "wss://"+addr+"/ws/calls/", &client.Options{TLSConfig: tc})
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	if _, err := call.Request(ctx, "identification", map[string]string{"path": "General", "name": "voice", "ticket": join.Ticket}); err != nil {
		t.Fatalf("call socket over wss: %v", err)
	}
	if _, err := client.Dial(ctx, "wss://"+addr+"/ws/iota", nil); err == nil {
		t.Fatal("a client that does not trust the test CA connected")
	}

	https := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := https.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Strict-Transport-Security"); got != api.HSTS || res.StatusCode != http.StatusOK {
		t.Fatalf("GET / over https: %d, HSTS %q", res.StatusCode, got)
	}
	if res.TLS.NegotiatedProtocol == "h2" {
		t.Fatal("h2 negotiated: WebSocket upgrades need HTTP/1.1")
	}
	res, err = https.Get("http://" + httpAddr + "/some/path?x=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	_, port, _ := net.SplitHostPort(addr)
	if want := "https://127.0.0.1:" + port + "/some/path?x=1"; res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != want {
		t.Fatalf("--http-addr: %d to %q, want 301 to %q", res.StatusCode, res.Header.Get("Location"), want)
	}

	if got := servedSerial(t, addr, ca.pool()); got != "1001" {
		t.Fatalf("served serial %s, want 1001", got)
	}
	c2, k2 := ca.leaf(t, 1002, "iotad.test")
	writeFile(t, keyFile, k2)
	writeFile(t, certFile, c2)
	waitLine(t, logs.lines, "serial=1002")
	if got := servedSerial(t, addr, ca.pool()); got != "1002" {
		t.Fatalf("after renewal: served serial %s, want 1002", got)
	}
	// The socket opened before the renewal is still up.
	if _, _, err := iota.Communities(ctx, priv); err != nil {
		t.Fatalf("the Iota socket after renewal: %v", err)
	}
	writeFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"))
	waitLine(t, logs.lines, "not reloaded")
	if got := servedSerial(t, addr, ca.pool()); got != "1002" {
		t.Fatalf("after a bad pair: served serial %s, want 1002 kept", got)
	}
}

// TestServeWithoutTLSSaysNoHSTS: a plain-http server must not pin browsers
// to https it does not speak.
func TestServeWithoutTLSSaysNoHSTS(t *testing.T) {
	addr := freePort(t)
	startServeWith(t, io.Discard, "--data", t.TempDir(), "--addr", addr, "--log-level", "warn")
	res, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Strict-Transport-Security"); got != "" || res.StatusCode != http.StatusOK {
		t.Fatalf("plain http: %d, HSTS %q", res.StatusCode, got)
	}
}

func TestTLSFlagErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--tls-cert", filepath.Join(dir, "c.pem")},
		{"--tls-cert", filepath.Join(dir, "c.pem"), "--tls-key", filepath.Join(dir, "k.pem")}, // no such files
		{"--tls-cert", "c", "--tls-key", "k", "--domain", "iotad.test"},
		{"--http-addr", "127.0.0.1:0"},
		{"--domain", "127.0.0.1"},
		{"--domain", "iotad.test", "--acme-ca", filepath.Join(dir, "none.pem")},
	} {
		full := append([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--media-addr", "127.0.0.1:0", "--admin-addr", ""}, args...)
		if _, _, err := runCmd(t, full...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestACMEFromPebble: with --domain, iotad gets its certificate from a real
// ACME server (pebble, on loopback, with validation always passing), and a
// client that trusts only pebble's root verifies the chain iotad serves.
func TestACMEFromPebble(t *testing.T) {
	bin, err := exec.LookPath("pebble")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("PEBBLE_REQUIRED") != "" {
			t.Fatal("pebble is not installed (scripts/test.sh installs Debian's pebble)")
		}
		t.Skip("pebble is not installed (apt-get install pebble)")
	}
	ca := newTestCA(t)
	dir := t.TempDir()
	// Debian's pebble ships no certificate for its own https: one from
	// the test CA, which iotad is told to trust with --acme-ca.
	pc, pk := ca.leaf(t, 2001)
	writeFile(t, filepath.Join(dir, "pebble.pem"), pc)
	writeFile(t, filepath.Join(dir, "pebble.key"), pk)
	writeFile(t, filepath.Join(dir, "ca.pem"), ca.pem)
	acmeAddr, mgmtAddr := freePort(t), freePort(t)
	_, httpPort, _ := net.SplitHostPort(freePort(t))
	_, tlsPort, _ := net.SplitHostPort(freePort(t))
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": acmeAddr, "managementListenAddress": mgmtAddr,
		"certificate": filepath.Join(dir, "pebble.pem"), "privateKey": filepath.Join(dir, "pebble.key"),
		"httpPort": json.Number(httpPort), "tlsPort": json.Number(tlsPort), "ocspResponderURL": "",
		"externalAccountBindingRequired": false,
	}}
	cj, _ := json.Marshal(conf)
	writeFile(t, filepath.Join(dir, "pebble.json"), cj)
	cmd := exec.Command(bin, "-config", filepath.Join(dir, "pebble.json"))
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1")
	pout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ACME directory available") {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, pout)
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("pebble did not start")
	}
	mgmt := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}, Timeout: 10 * time.Second}

	data := t.TempDir()
	addr := freePort(t)
	startServeWith(t, io.Discard, "--data", data, "--addr", addr, "--domain", "iotad.test",
		"--acme-directory", "https://"+acmeAddr+"/dir", "--acme-ca", filepath.Join(dir, "ca.pem"), "--acme-email", "op@iotad.test")

	res, err := mgmt.Get("https://" + mgmtAddr + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(res.Body)
	res.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's /roots/0 is no PEM: %q", rootPEM)
	}
	start := time.Now()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Minute}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "iotad.test"})
	if err != nil {
		t.Fatalf("the certificate from pebble: %v", err)
	}
	took := time.Since(start)
	chain := conn.ConnectionState().VerifiedChains[0]
	conn.Close()
	t.Logf("first certificate from pebble: %v (chain of %d, issuer %q)", took.Round(time.Millisecond), len(chain), chain[1].Subject.CommonName)
	if _, err := os.Stat(filepath.Join(data, "acme", "iotad.test")); err != nil {
		t.Fatalf("the certificate is not cached in DATA/acme: %v", err)
	}
	if info, err := os.Stat(filepath.Join(data, "acme")); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("DATA/acme: %v %v", info, err)
	}
	// A name not in --domain gets no certificate.
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "other.test"}); err == nil {
		c.Close()
		t.Fatal("a certificate was served for a name not in --domain")
	}
}

func TestTurnsAddr(t *testing.T) {
	for _, tc := range []struct {
		flag, turn string
		tls        bool
		want       string
		bad        bool
	}{
		{"", ":3478", false, "", false},
		{"", ":3478", true, ":3479", false},
		{"", "127.0.0.1:0", true, "127.0.0.1:0", false},
		{"off", ":3478", true, "", false},
		{":443", ":3478", true, ":443", false},
		{":443", ":3478", false, "", true},
		{"nonsense", ":3478", true, "", true},
		{"", ":65535", true, "", true},
	} {
		got, err := turnsAddr(tc.flag, tc.turn, tc.tls)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("turnsAddr(%q, %q, %v) = %q, %v; want %q (error: %v)", tc.flag, tc.turn, tc.tls, got, err, tc.want, tc.bad)
		}
	}
}

// TestServeTLSReloadsOnSIGHUP: with the file check far off, SIGHUP alone
// makes serve pick up a renewed pair.
func TestServeTLSReloadsOnSIGHUP(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile := ca.files(t, 3001)
	addr := freePort(t)
	logs := grepWriter{want: "TLS certificate", lines: make(chan string, 100)}
	startServeWith(t, logs, "--data", t.TempDir(), "--addr", addr, "--tls-cert", certFile, "--tls-key", keyFile, "--tls-reload", "1h")
	c2, k2 := ca.leaf(t, 3002)
	writeFile(t, keyFile, k2)
	writeFile(t, certFile, c2)
	if got := servedSerial(t, addr, ca.pool()); got != "3001" {
		t.Fatalf("before SIGHUP: served serial %s, want 3001", got)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLine(t, logs.lines, "serial=3002")
	if got := servedSerial(t, addr, ca.pool()); got != "3002" {
		t.Fatalf("after SIGHUP: served serial %s, want 3002", got)
	}
}
