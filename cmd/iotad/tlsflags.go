package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/iotad/iotad/api"
)

// tlsFlags are serve's TLS settings: a certificate from files, or one
// from an ACME CA for --domain.
type tlsFlags struct {
	certFile, keyFile string
	reload            time.Duration
	domains           string
	acmeDirectory     string
	acmeEmail         string
	acmeCA            string
	httpAddr          string
}

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.certFile, "tls-cert", "", "PEM certificate chain to serve TLS with (with --tls-key); reloaded when the file changes or on SIGHUP")
	fs.StringVar(&t.keyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.DurationVar(&t.reload, "tls-reload", 5*time.Second, "how often --tls-cert and --tls-key are checked for changes")
	fs.StringVar(&t.domains, "domain", "", "comma-separated domain names to get certificates for by ACME (TLS-ALPN-01 on --addr; HTTP-01 with --http-addr); cached in DATA/acme")
	fs.StringVar(&t.acmeDirectory, "acme-directory", autocert.DefaultACMEDirectory, "ACME directory URL for --domain")
	fs.StringVar(&t.acmeEmail, "acme-email", "", "contact address given to the ACME CA (expiry notices); optional")
	fs.StringVar(&t.acmeCA, "acme-ca", "", "PEM file of roots to trust for the ACME server's own https (a private ACME CA); default: the system's")
	fs.StringVar(&t.httpAddr, "http-addr", "", "with TLS: plain-http address (e.g. :80) that answers ACME HTTP-01 and redirects everything else to https; empty: none")
}

// tlsSetup is TLS as serve runs it; the zero value is TLS off.
type tlsSetup struct {
	config   *tls.Config
	acme     *autocert.Manager
	domains  []string
	httpAddr string
}

func (s tlsSetup) on() bool { return s.config != nil }

// schemes are the URL schemes of the page and of the sockets.
func (s tlsSetup) schemes() (page, socket string) {
	if s.on() {
		return "https", "wss"
	}
	return "http", "ws"
}

// defaultPublicAddr is the address invites name without --public-addr:
// with ACME, the first domain (the certificate names no other), else the
// listener's.
func (s tlsSetup) defaultPublicAddr(ln net.Addr) string {
	if len(s.domains) == 0 {
		return displayAddr(ln)
	}
	_, port, _ := net.SplitHostPort(ln.String())
	return net.JoinHostPort(s.domains[0], port)
}

// host is the name clients reach TLS on, as the certificate names it:
// the first --domain, else publicAddr's host.
func (s tlsSetup) host(publicAddr string) string {
	if len(s.domains) > 0 {
		return s.domains[0]
	}
	host, _, err := net.SplitHostPort(publicAddr)
	if err != nil {
		return publicAddr
	}
	return host
}

// start checks the flags and loads the certificate source; with files, it
// watches them until ctx ends.
func (t *tlsFlags) start(ctx context.Context, dataDir string, log *slog.Logger) (tlsSetup, error) {
	files := t.certFile != "" || t.keyFile != ""
	domains := splitList(t.domains)
	switch {
	case files && len(domains) > 0:
		return tlsSetup{}, errors.New("--tls-cert and --domain are two sources of certificates: give one")
	case files && (t.certFile == "" || t.keyFile == ""):
		return tlsSetup{}, errors.New("--tls-cert and --tls-key go together")
	case !files && len(domains) == 0:
		if t.httpAddr != "" {
			return tlsSetup{}, errors.New("--http-addr redirects to https: it needs --tls-cert or --domain")
		}
		return tlsSetup{}, nil
	}
	if files {
		if t.reload <= 0 {
			return tlsSetup{}, fmt.Errorf("--tls-reload %v is not positive", t.reload)
		}
		cf, err := api.LoadCertFiles(t.certFile, t.keyFile, log)
		if err != nil {
			return tlsSetup{}, err
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			defer signal.Stop(hup)
			cf.Watch(ctx, t.reload, hup)
		}()
		return tlsSetup{config: api.TLSConfig(cf.GetCertificate, false), httpAddr: t.httpAddr}, nil
	}
	hc, err := acmeHTTPClient(t.acmeCA)
	if err != nil {
		return tlsSetup{}, err
	}
	m, err := api.NewACME(api.ACMEConfig{
		Domains: domains, CacheDir: filepath.Join(dataDir, "acme"),
		DirectoryURL: t.acmeDirectory, Email: t.acmeEmail, HTTPClient: hc,
	})
	if err != nil {
		return tlsSetup{}, err
	}
	return tlsSetup{config: api.TLSConfig(m.GetCertificate, true), acme: m, domains: domains, httpAddr: t.httpAddr}, nil
}

// acmeHTTPClient trusts caFile's roots for the ACME server (nil: the
// default client and the system's roots).
func acmeHTTPClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--acme-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("--acme-ca %s: no PEM certificate in it", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return &http.Client{Transport: tr, Timeout: time.Minute}, nil
}

// serveHTTP opens --http-addr, if given, and serves the redirect to https
// (and ACME's HTTP-01) on it until stop is called.
func (s tlsSetup) serveHTTP(ctx context.Context, srv *api.Server, publicAddr string, log *slog.Logger) (stop func(), err error) {
	if s.httpAddr == "" {
		return func() {}, nil
	}
	ln, err := listenTCP(ctx, s.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	_, port, _ := net.SplitHostPort(publicAddr)
	h := api.RedirectHandler(port)
	if s.acme != nil {
		h = s.acme.HTTPHandler(h)
	}
	go func() {
		defer close(done)
		if err := srv.ServeRedirect(ctx, ln, h); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http listener", slog.Any("err", err))
		}
	}()
	log.Info("http redirect listening", slog.String("addr", ln.Addr().String()))
	return func() { cancel(); <-done }, nil
}

// turnsAddr is where TURN over TLS listens: nowhere without TLS or with
// "off", else flag, else the TURN port + 1 on the TURN address's host
// (port 0 stays 0: any free port).
func turnsAddr(flag, turnAddr string, tlsOn bool) (string, error) {
	if flag == "off" || !tlsOn {
		if flag != "" && flag != "off" {
			return "", errors.New("--turns-addr needs TLS (--tls-cert or --domain)")
		}
		return "", nil
	}
	if flag != "" {
		if _, _, err := net.SplitHostPort(flag); err != nil {
			return "", fmt.Errorf("--turns-addr: %w", err)
		}
		return flag, nil
	}
	host, port, err := net.SplitHostPort(turnAddr)
	if err != nil {
		return "", fmt.Errorf("--turn-addr: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p >= 65535 {
		return "", fmt.Errorf("--turn-addr: port %q", port)
	}
	if p > 0 {
		p++
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}
