// Package api speaks iotad's wire protocol: the JSON envelope, message and
// error types, the WebSocket session loop shared by every socket, and the
// HTTP routes that put the Iota, the community and the web page on one
// listener.
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/community/voice"
	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/bus"
	iotasvc "github.com/iotad/iotad/iota"
	"github.com/iotad/iotad/web"
)

// Config is what the api layer needs to know.
type Config struct {
	Socket SocketConfig
	// MaxConnections caps open sockets; over it an upgrade gets HTTP 503.
	MaxConnections int
	// MaxConnectionsPerAddr caps the sockets of one remote address, and
	// MaxUnauthenticatedPerAddr those of them not logged in yet; over
	// either an upgrade gets HTTP 429. IPv6 addresses count by their /64.
	MaxConnectionsPerAddr     int
	MaxUnauthenticatedPerAddr int
	// MaxConnectionsPerUser caps one user's logged-in sockets (Iota,
	// community and call sockets together); a login past it is refused
	// with error_rate_limited.
	MaxConnectionsPerUser int
	// UserRequestRate and UserRequestBurst shape one token bucket shared by
	// all of a user's logged-in sockets, on top of each socket's own.
	UserRequestRate  float64
	UserRequestBurst int
	// LoginRate and LoginBurst limit logins per remote address.
	LoginRate  float64
	LoginBurst int
	// TrustedProxies are the reverse proxies whose Forwarded or
	// X-Forwarded-For header names the remote address (see clientHost);
	// from any other peer those headers are ignored.
	TrustedProxies []netip.Prefix
	// AllowedOrigins are browser origins allowed besides the page's own.
	AllowedOrigins []string
	// ReadHeaderTimeout and IdleTimeout bound plain HTTP connections.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds how long Serve waits for sockets to drain.
	ShutdownTimeout time.Duration
	// UploadTimeout, plus a second per 64 KiB of the ticket's size, bounds
	// how long an upload's body may take to arrive (PROTOCOL §9 "Files and
	// images").
	UploadTimeout time.Duration
	// PublicAddr is host:port as invites name this server; empty means the
	// Host the request came in on is not known, so "localhost:1984".
	PublicAddr string
	// Pprof mounts net/http/pprof at /debug/pprof/ of the admin listener
	// (off by default: it lets anyone who reaches that port profile the
	// server).
	Pprof bool
	// LegacyLogin accepts login version 1 (PROTOCOL §3) from clients that
	// ask for it. It is open to relaying: a community the user visits can
	// log in as them elsewhere with it.
	LegacyLogin bool
	// TLS, when set, is served on the main listener and every community
	// listener (see TLSConfig), and every response carries HSTS.
	TLS *tls.Config
	// Clock tells the time for challenge expiry; nil means time.Now. Tests
	// move it forward instead of sleeping.
	Clock func() time.Time
}

// DefaultConfig returns the defaults of PROTOCOL §2.
func DefaultConfig() Config {
	return Config{
		Socket:                    DefaultSocketConfig(),
		MaxConnections:            10000,
		MaxConnectionsPerAddr:     256,
		MaxUnauthenticatedPerAddr: 64,
		MaxConnectionsPerUser:     32,
		UserRequestRate:           60,
		UserRequestBurst:          120,
		LoginRate:                 10,
		LoginBurst:                20,
		ReadHeaderTimeout:         10 * time.Second,
		IdleTimeout:               120 * time.Second,
		ShutdownTimeout:           5 * time.Second,
		UploadTimeout:             30 * time.Second,
	}
}

// Server is the HTTP side of iotad.
type Server struct {
	cfg     Config
	log     *slog.Logger
	sockets *socketServer
	logins  *loginLimiter
	sfu     *voice.SFU
	iota    *iotaAPI
	iotaEP  *Endpoint
	page    http.Handler
	router  chi.Router
	// community is the community served at "/" of the main listener (nil
	// when there is none).
	community *communityAPI
	// metrics is what the admin listener's /metrics reports.
	metrics *prometheus.Registry

	// ownPorts are the ports of every listener Serve accepts on: the page
	// served by one may open sockets to the others.
	ownPorts sync.Map // port string → struct{}
}

// Services are what the server serves.
type Services struct {
	Iota *iotasvc.Store
	// Communities: the first one (if any) is served at "/" and "/ws/calls/"
	// of the main listener; the others on listeners of their own.
	Communities *community.Service
	// SFU carries the calls' media; nil means call sockets do presence only.
	SFU *voice.SFU
	// Bus carries Iota device sync between nodes (the communities' events
	// go through community.Options.Bus, normally the same bus); nil means
	// this node alone (a bus.Memory).
	Bus bus.Bus
	// IotaKey is the Iota's identity key for version-2 logins, kept in the
	// data directory; the zero key means one made for this process alone
	// (tests), which clients can pin only on first use.
	IotaKey icrypto.PrivateKey
}

// New wires the routes.
func New(cfg Config, log *slog.Logger, svc Services) *Server {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Server{cfg: cfg, log: log, sfu: svc.SFU, page: web.Handler()}
	s.logins = newLoginLimiter(cfg.LoginRate, cfg.LoginBurst)
	reg := newRegistry(socketLimits{
		max: cfg.MaxConnections, perAddr: cfg.MaxConnectionsPerAddr, perAddrUnauth: cfg.MaxUnauthenticatedPerAddr,
		perUser: cfg.MaxConnectionsPerUser, userRate: rate.Limit(cfg.UserRequestRate), userBurst: cfg.UserRequestBurst,
	})
	s.sockets = &socketServer{cfg: cfg.Socket, reg: reg, log: log, clock: cfg.Clock, proxies: cfg.TrustedProxies}
	s.sockets.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// No size: gorilla reads through the reader hijackResponse
		// hands it (readBufferSize).
		// Server frames are written by the session, not by gorilla, so a
		// pool keeps gorilla from holding a write buffer per socket.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     s.checkOrigin,
	}
	if svc.Bus == nil {
		svc.Bus = bus.NewMemory()
	}
	s.iota = newIotaAPI(svc.Iota, s.logins, iotaIdentity(svc.IotaKey, cfg.LegacyLogin), log, svc.Bus)
	s.iotaEP = s.iota.endpoint()
	if cfg.PublicAddr == "" {
		s.cfg.PublicAddr = "localhost:1984"
	}
	if svc.Communities != nil {
		if all := svc.Communities.All(); len(all) > 0 {
			s.community = newCommunityAPI(all[0], s.logins, cfg.LegacyLogin, log, s.cfg.PublicAddr, svc.SFU)
			s.community.tls = cfg.TLS != nil
			s.community.runLimit = runLimit(cfg.Socket)
		}
	}
	s.router = s.routes(s.community)
	var extra []prometheus.Collector
	if svc.Communities != nil {
		extra = append(extra, svc.Communities.Collectors()...)
	}
	if svc.SFU != nil {
		extra = append(extra, svc.SFU.Collectors()...)
	}
	s.metrics = newMetricsRegistry(extra...)
	return s
}

// routes is one listener's router: the Iota, the page, and the community
// it serves at "/" (none when c is nil).
func (s *Server) routes(c *communityAPI) chi.Router {
	var communityEP, callsEP *Endpoint
	if c != nil {
		communityEP, callsEP = c.endpoint(), c.callsEndpoint()
	}
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	r.Get("/ws/iota", func(w http.ResponseWriter, r *http.Request) {
		s.sockets.serve(w, r, s.iotaEP)
	})
	calls := func(w http.ResponseWriter, r *http.Request) {
		if callsEP == nil {
			http.NotFound(w, r)
			return
		}
		s.sockets.serve(w, r, callsEP)
	}
	r.Get("/ws/calls/", calls)
	r.Get("/ws/calls", calls)
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		// The seed puts the community socket at the root of the address,
		// where browsers also expect the page: the Upgrade header decides.
		if websocket.IsWebSocketUpgrade(r) {
			if communityEP == nil {
				http.Error(w, "no community is served here", http.StatusNotFound)
				return
			}
			s.sockets.serve(w, r, communityEP)
			return
		}
		s.page.ServeHTTP(w, r)
	})
	s.fileRoutes(r, c)
	r.Get("/*", s.page.ServeHTTP)
	return r
}

// Handler is the main listener's HTTP handler.
func (s *Server) Handler() http.Handler { return s.router }

// AdminHandler serves /metrics and, with Config.Pprof, /debug/pprof/. It
// belongs on a listener of its own that only operators reach, never on
// the public one: the counters and profiles tell an attacker how the
// server is doing.
func (s *Server) AdminHandler() http.Handler {
	r := chi.NewRouter()
	r.Handle("/metrics", s.metricsHandler())
	if s.cfg.Pprof {
		r.HandleFunc("/debug/pprof/*", pprof.Index)
		r.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		r.HandleFunc("/debug/pprof/profile", pprof.Profile)
		r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		r.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return r
}

// ServeAdmin serves AdminHandler on ln until ctx is cancelled.
func (s *Server) ServeAdmin(ctx context.Context, ln net.Listener) error {
	return s.serveUntil(ctx, s.httpServer(s.AdminHandler()), ln)
}

// serveUntil serves hs on ln until ctx is cancelled, then shuts it down.
func (s *Server) serveUntil(ctx context.Context, hs *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	return err
}

// CommunityListener is a community's own address. The seed's community
// address is host:port with no path, so every community after the first
// is reached on a port of its own; the page and the Iota are served there
// too, so that a page opened on any of iotad's ports works.
type CommunityListener struct {
	Listener  net.Listener
	Community *community.Community
	// PublicAddr is host:port as this community's invites name it.
	PublicAddr string
}

// Serve serves the main listener ln and the communities' own listeners
// until ctx is cancelled or one of them fails, then shuts down in order:
// stop accepting, close every socket with 1001, wait for every session's
// writer and reader, and so every handler, to end (past ShutdownTimeout
// the connections left are cut, and waited for still). When Serve returns
// nothing of the api layer uses the stores any more: the caller may close
// them.
func (s *Server) Serve(ctx context.Context, ln net.Listener, own ...CommunityListener) error {
	servers := []*http.Server{s.publicServer(s.router)}
	listeners := []net.Listener{ln}
	for _, cl := range own {
		c := newCommunityAPI(cl.Community, s.logins, s.cfg.LegacyLogin, s.log, cl.PublicAddr, s.sfu)
		c.tls = s.cfg.TLS != nil
		c.runLimit = runLimit(s.cfg.Socket)
		servers = append(servers, s.publicServer(s.routes(c)))
		listeners = append(listeners, cl.Listener)
	}
	for _, l := range listeners {
		if _, port, err := net.SplitHostPort(l.Addr().String()); err == nil {
			s.ownPorts.Store(port, struct{}{})
		}
	}
	errc := make(chan error, len(servers))
	for i, hs := range servers {
		go func() {
			if hs.TLSConfig != nil {
				errc <- hs.ServeTLS(listeners[i], "", "")
				return
			}
			errc <- hs.Serve(listeners[i])
		}()
	}
	var firstErr error
	select {
	case firstErr = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var shutdownErrs []error
	for _, hs := range servers {
		shutdownErrs = append(shutdownErrs, hs.Shutdown(sctx))
	}
	s.sockets.reg.closeAll(sctx)
	n := len(servers)
	if firstErr != nil {
		n--
	}
	for range n {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil && !errors.Is(firstErr, http.ErrServerClosed) {
		return firstErr
	}
	return errors.Join(shutdownErrs...)
}

// publicServer is httpServer for a listener the clients use: with TLS
// when configured, HTTP/1.1 only (WebSockets are HTTP/1.1 upgrades).
func (s *Server) publicServer(h http.Handler) *http.Server {
	if s.cfg.TLS == nil {
		return s.httpServer(h)
	}
	hs := s.httpServer(withHSTS(h))
	hs.TLSConfig = s.cfg.TLS.Clone()
	hs.Protocols = new(http.Protocols)
	hs.Protocols.SetHTTP1(true)
	return hs
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// checkOrigin lets non-browser clients (no Origin) and the page's own
// origins in (the page as served on any of iotad's listeners), plus any
// origin the operator allowed.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if s.ownOrigin(u, r.Host) {
		return true
	}
	for _, allowed := range s.cfg.AllowedOrigins {
		if allowed == "*" || strings.EqualFold(allowed, origin) {
			return true
		}
	}
	return false
}

// ownOrigin: the same host as the request names, on another of iotad's
// own ports (a page from the main port joining a community on its own).
func (s *Server) ownOrigin(origin *url.URL, requestHost string) bool {
	host, _, err := net.SplitHostPort(requestHost)
	if err != nil {
		host = requestHost
	}
	if !strings.EqualFold(origin.Hostname(), strings.Trim(host, "[]")) {
		return false
	}
	port := origin.Port()
	if port == "" {
		port = "80"
		if origin.Scheme == "https" {
			port = "443"
		}
	}
	_, ok := s.ownPorts.Load(port)
	return ok
}

// loginLimiter limits logins per remote address.
type loginLimiter struct {
	rate  rate.Limit
	burst int

	mu    sync.Mutex
	perIP map[string]*rate.Limiter
	swept time.Time
}

func newLoginLimiter(perSecond float64, burst int) *loginLimiter {
	return &loginLimiter{rate: rate.Limit(perSecond), burst: burst, perIP: map[string]*rate.Limiter{}}
}

// allow takes a login from the bucket of ip's address (IPv6: its /64).
func (l *loginLimiter) allow(ip string) bool {
	ip = addrKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	// Forget addresses whose bucket has refilled, so the map stays small.
	if now.Sub(l.swept) > time.Minute {
		for k, lim := range l.perIP {
			if lim.TokensAt(now) >= float64(l.burst) {
				delete(l.perIP, k)
			}
		}
		l.swept = now
	}
	lim := l.perIP[ip]
	if lim == nil {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.perIP[ip] = lim
	}
	return lim.AllowN(now, 1)
}

func newID() string { return uuid.NewString() }
