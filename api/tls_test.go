package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned makes a PEM pair valid from notBefore to notAfter.
func selfSigned(tb testing.TB, serial int64, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "iotad.test"},
		DNSNames: []string{"iotad.test"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestParseKeyPairRefusals(t *testing.T) {
	now := time.Now()
	good, goodKey := selfSigned(t, 1, now.Add(-time.Hour), now.Add(time.Hour))
	_, otherKey := selfSigned(t, 2, now.Add(-time.Hour), now.Add(time.Hour))
	expired, expiredKey := selfSigned(t, 3, now.Add(-2*time.Hour), now.Add(-time.Hour))
	future, futureKey := selfSigned(t, 4, now.Add(time.Hour), now.Add(2*time.Hour))
	if c, err := ParseKeyPair(good, goodKey); err != nil || c.Leaf.SerialNumber.Int64() != 1 {
		t.Fatalf("good pair: %v", err)
	}
	for name, pair := range map[string][2][]byte{
		"key of another certificate": {good, otherKey},
		"expired":                    {expired, expiredKey},
		"not yet valid":              {future, futureKey},
		"empty":                      {nil, nil},
		"swapped":                    {goodKey, good},
	} {
		if _, err := ParseKeyPair(pair[0], pair[1]); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// TestCertFilesKeepTheLastGoodPair: a renewal half written, or broken,
// must not take the server's certificate away.
func TestCertFilesKeepTheLastGoodPair(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	now := time.Now()
	c1, k1 := selfSigned(t, 1, now.Add(-time.Hour), now.Add(time.Hour))
	os.WriteFile(cf, c1, 0o600)
	os.WriteFile(kf, k1, 0o600)
	files, err := LoadCertFiles(cf, kf, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		c, _ := files.GetCertificate(&tls.ClientHelloInfo{})
		return c.Leaf.SerialNumber.Int64()
	}
	c2, k2 := selfSigned(t, 2, now.Add(-time.Hour), now.Add(time.Hour))
	os.WriteFile(cf, c2, 0o600) // the key is not written yet
	if err := files.Reload(); err == nil || serial() != 1 {
		t.Fatalf("half-written renewal: %v, serving %d", err, serial())
	}
	os.WriteFile(kf, k2, 0o600)
	if err := files.Reload(); err != nil || serial() != 2 {
		t.Fatalf("renewal: %v, serving %d", err, serial())
	}
	os.Remove(kf)
	if err := files.Reload(); err == nil || serial() != 2 {
		t.Fatalf("missing key: %v, serving %d", err, serial())
	}
	if _, err := LoadCertFiles(cf, kf, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a first load without a key succeeded")
	}
}

func TestRedirectHandler(t *testing.T) {
	for _, tc := range []struct {
		name, method, host, target, port string
		code                             int
		location                         string
	}{
		{"port kept", "GET", "example.org", "/a?b=c", "1984", 301, "https://example.org:1984/a?b=c"},
		{"443 left out", "GET", "example.org:80", "/", "443", 301, "https://example.org/"},
		{"ipv6", "HEAD", "[::1]:80", "/x", "8443", 301, "https://[::1]:8443/x"},
		{"no body replayed", "POST", "example.org", "/", "443", 400, ""},
		{"no host", "GET", "", "/", "443", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			r.Host = tc.host
			w := httptest.NewRecorder()
			RedirectHandler(tc.port).ServeHTTP(w, r)
			if w.Code != tc.code || w.Header().Get("Location") != tc.location {
				t.Fatalf("%d to %q, want %d to %q", w.Code, w.Header().Get("Location"), tc.code, tc.location)
			}
		})
	}
}

// FuzzRedirectHandler: whatever Host a request claims, the redirect goes
// to https on the host it named, never to a host smuggled in the path.
func FuzzRedirectHandler(f *testing.F) {
	for _, s := range [][2]string{{"example.org", "/"}, {"a:80", "//evil.example/x"}, {"[::1]", "/?q=%2F"}, {"x@y", "/"}, {"", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		r := &http.Request{Method: "GET", Host: host, URL: &url.URL{Path: path}, Header: http.Header{}}
		w := httptest.NewRecorder()
		RedirectHandler("8443").ServeHTTP(w, r)
		if w.Code != http.StatusMovedPermanently {
			return
		}
		loc, err := url.Parse(w.Header().Get("Location"))
		if err != nil || loc.Scheme != "https" || loc.Port() != "8443" {
			t.Fatalf("Host %q path %q: redirected to %q (%v)", host, path, w.Header().Get("Location"), err)
		}
		if loc.Hostname() == "" || !strings.Contains(strings.ToLower(host), strings.ToLower(loc.Hostname())) {
			t.Fatalf("Host %q path %q: redirected to host %q", host, path, loc.Hostname())
		}
	})
}

func FuzzParseKeyPair(f *testing.F) {
	now := time.Now()
	c, k := selfSigned(f, 1, now.Add(-time.Hour), now.Add(time.Hour))
	f.Add(c, k)
	f.Add(k, c)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		cert, err := ParseKeyPair(certPEM, keyPEM)
		if err == nil && (cert.Leaf == nil || now.After(cert.Leaf.NotAfter.Add(time.Hour))) {
			t.Fatalf("loaded a pair without a current leaf")
		}
	})
}
