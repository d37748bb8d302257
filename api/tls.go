package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// HSTS is the Strict-Transport-Security value sent with every response
// when TLS is on. No includeSubDomains: other names under the operator's
// domain may not speak TLS. A browser applies it to the host on every port.
const HSTS = "max-age=31536000"

// CertFiles serves a PEM certificate and key pair from files, reloaded
// when they change (Watch) or when asked (Reload): renewing a certificate
// needs no restart. A pair that does not load keeps the previous one.
type CertFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.Mutex
	cert  *tls.Certificate
	stamp fileStamp
}

// fileStamp tells whether either file changed since the last load. The
// inode is in it because renewal tools replace files by rename.
type fileStamp struct {
	cert, key fileInfo
}

type fileInfo struct {
	size  int64
	mtime time.Time
	ino   uint64
}

// LoadCertFiles loads the pair once; an error here is fatal to the caller,
// since there is no previous certificate to keep.
func LoadCertFiles(certFile, keyFile string, log *slog.Logger) (*CertFiles, error) {
	c := &CertFiles{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, nil
}

// Reload reads both files again. On error the certificate served stays the
// one loaded before.
func (c *CertFiles) Reload() error {
	stamp := c.currentStamp()
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	cert, err := ParseKeyPair(certPEM, keyPEM)
	c.mu.Lock()
	defer c.mu.Unlock()
	// The stamp is kept even when the pair is bad, so that a bad pair is
	// reported once; the next write to either file changes it again.
	c.stamp = stamp
	if err != nil {
		return fmt.Errorf("tls pair %s, %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert = cert
	return nil
}

// ParseKeyPair parses a PEM certificate chain and its key, and checks what
// tls.X509KeyPair leaves to the first handshake: that the leaf parses and
// is within its validity period.
func ParseKeyPair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("leaf: %w", err)
	}
	now := time.Now()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("leaf is valid from %v to %v, not now", leaf.NotBefore, leaf.NotAfter)
	}
	cert.Leaf = leaf
	return &cert, nil
}

func (c *CertFiles) currentStamp() fileStamp {
	return fileStamp{cert: statFile(c.certFile), key: statFile(c.keyFile)}
}

// Watch stats the files every interval, and reloads them when they changed
// or when reload receives (SIGHUP), until ctx ends.
func (c *CertFiles) Watch(ctx context.Context, every time.Duration, reload <-chan os.Signal) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-reload:
			forced = true
		}
		c.mu.Lock()
		changed := c.stamp != c.currentStamp()
		c.mu.Unlock()
		if !changed && !forced {
			continue
		}
		if err := c.Reload(); err != nil {
			c.log.Warn("TLS certificate not reloaded; serving the previous one", slog.Any("err", err))
			continue
		}
		leaf := c.leaf()
		c.log.Info("TLS certificate reloaded", slog.String("subject", leaf.Subject.String()),
			slog.String("serial", leaf.SerialNumber.String()), slog.Time("not_after", leaf.NotAfter))
	}
}

func (c *CertFiles) leaf() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert.Leaf
}

// ACMEConfig sets up certificates obtained and renewed by ACME.
type ACMEConfig struct {
	// Domains are the only names certificates are asked for.
	Domains []string
	// CacheDir keeps the account key and the certificates (0700).
	CacheDir string
	// DirectoryURL is the ACME directory (empty: Let's Encrypt's).
	DirectoryURL string
	// Email is the account's contact, for expiry notices; may be empty.
	Email string
	// HTTPClient talks to the ACME server (nil: http.DefaultClient); a
	// private CA's roots go in its transport.
	HTTPClient *http.Client
}

// NewACME returns the autocert manager for cfg. It answers TLS-ALPN-01 on
// any listener whose tls.Config uses its GetCertificate and offers
// acme.ALPNProto, and HTTP-01 through its HTTPHandler.
func NewACME(cfg ACMEConfig) (*autocert.Manager, error) {
	if len(cfg.Domains) == 0 {
		return nil, errors.New("acme: no domain names")
	}
	for _, d := range cfg.Domains {
		if d == "" || strings.ContainsAny(d, ":/ ") || net.ParseIP(d) != nil {
			return nil, fmt.Errorf("acme: %q is not a domain name", d)
		}
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme cache: %w", err)
	}
	// MkdirAll keeps the mode of a directory that exists.
	if err := os.Chmod(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme cache: %w", err)
	}
	dir := cfg.DirectoryURL
	if dir == "" {
		dir = autocert.DefaultACMEDirectory
	}
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(filepath.Clean(cfg.CacheDir)),
		HostPolicy: autocert.HostWhitelist(cfg.Domains...),
		Email:      cfg.Email,
		Client:     &acme.Client{DirectoryURL: dir, HTTPClient: cfg.HTTPClient},
	}, nil
}

// TLSConfig is the listeners' TLS configuration around getCert. HTTP/2 is
// not offered: WebSockets here are HTTP/1.1 upgrades, and a browser that
// reached the page over h2 would try them over h2 too. acme.ALPNProto lets
// an ACME server validate on this listener (TLS-ALPN-01); without ACME
// that protocol is never negotiated, since getCert would not answer it.
func TLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), acmeALPN bool) *tls.Config {
	protos := []string{"http/1.1"}
	if acmeALPN {
		protos = append(protos, acme.ALPNProto)
	}
	return &tls.Config{GetCertificate: getCert, NextProtos: protos, MinVersion: tls.VersionTLS12}
}

// withHSTS tells browsers to use https for this host from now on.
func withHSTS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", HSTS)
		h.ServeHTTP(w, r)
	})
}

// RedirectHandler sends plain-http GET and HEAD requests to the same path
// over https on httpsPort (omitted when 443); anything else gets 400, so
// that no request body is replayed over a redirect.
func RedirectHandler(httpsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "use https", http.StatusBadRequest)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if !plainHost(host) {
			http.Error(w, "use https", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if httpsPort != "" && httpsPort != "443" {
			host = net.JoinHostPort(strings.Trim(host, "[]"), httpsPort)
		}
		path := r.URL.RequestURI()
		if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
			// "//x" would read as another host to some clients.
			path = "/"
		}
		http.Redirect(w, r, "https://"+host+path, http.StatusMovedPermanently)
	})
}

// plainHost: a DNS name or an IP address, nothing a redirect could be
// bent with.
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':') {
			return false
		}
	}
	if strings.Contains(h, ":") {
		_, err := netip.ParseAddr(h)
		return err == nil
	}
	return true
}

// ServeRedirect serves h (RedirectHandler, or ACME's HTTP-01 handler
// around it) on the plain-http listener ln until ctx ends.
func (s *Server) ServeRedirect(ctx context.Context, ln net.Listener, h http.Handler) error {
	return s.serveUntil(ctx, s.httpServer(h), ln)
}

func statFile(path string) fileInfo {
	info, err := os.Stat(path)
	if err != nil {
		return fileInfo{}
	}
	fi := fileInfo{size: info.Size(), mtime: info.ModTime()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		fi.ino = st.Ino
	}
	return fi
}
