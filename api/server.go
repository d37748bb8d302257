// Package api speaks iotad's wire protocol: the JSON envelope, message and
// error types, the WebSocket session loop shared by every socket, and the
// HTTP routes that put the Iota, the community and the web page on one
// listener.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/community/voice"
	iotasvc "github.com/iotad/iotad/iota"
	"github.com/iotad/iotad/web"
)

// Config is what the api layer needs to know.
type Config struct {
	Socket SocketConfig
	// MaxConnections caps open sockets; over it an upgrade gets HTTP 503.
	MaxConnections int
	// LoginRate and LoginBurst limit logins per remote address.
	LoginRate  float64
	LoginBurst int
	// AllowedOrigins are browser origins allowed besides the page's own.
	AllowedOrigins []string
	// ReadHeaderTimeout and IdleTimeout bound plain HTTP connections.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds how long Serve waits for sockets to drain.
	ShutdownTimeout time.Duration
	// PublicAddr is host:port as invites name this server; empty means the
	// Host the request came in on is not known, so "localhost:1984".
	PublicAddr string
	// Pprof mounts net/http/pprof at /debug/pprof/ (off by default: it
	// lets anyone who reaches the port profile the server).
	Pprof bool
	// Clock tells the time for challenge expiry; nil means time.Now. Tests
	// move it forward instead of sleeping.
	Clock func() time.Time
}

// DefaultConfig returns the defaults of PROTOCOL §2.
func DefaultConfig() Config {
	return Config{
		Socket:            DefaultSocketConfig(),
		MaxConnections:    10000,
		LoginRate:         10,
		LoginBurst:        20,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ShutdownTimeout:   5 * time.Second,
	}
}

// Server is the HTTP side of iotad.
type Server struct {
	cfg     Config
	log     *slog.Logger
	sockets *socketServer
	iota    *iotaAPI
	iotaEP  *Endpoint
	router  chi.Router
	// community is the community served at "/" (nil when there is none).
	community   *communityAPI
	communityEP *Endpoint
	callsEP     *Endpoint
}

// Services are what the server serves.
type Services struct {
	Iota *iotasvc.Store
	// Communities: the first one (if any) is served at "/" and "/ws/calls/".
	Communities *community.Service
	// SFU carries the calls' media; nil means call sockets do presence only.
	SFU *voice.SFU
}

// New wires the routes.
func New(cfg Config, log *slog.Logger, svc Services) *Server {
	reg := newRegistry(cfg.MaxConnections)
	logins := newLoginLimiter(cfg.LoginRate, cfg.LoginBurst)
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Server{cfg: cfg, log: log}
	s.sockets = &socketServer{cfg: cfg.Socket, reg: reg, log: log, clock: cfg.Clock}
	s.sockets.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		// Server frames are written by the session, not by gorilla, so a
		// pool keeps gorilla from holding a write buffer per socket.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     s.checkOrigin,
	}
	s.iota = newIotaAPI(svc.Iota, logins, log)
	s.iotaEP = s.iota.endpoint()
	if cfg.PublicAddr == "" {
		cfg.PublicAddr = "localhost:1984"
	}
	if svc.Communities != nil {
		if all := svc.Communities.All(); len(all) > 0 {
			s.community = newCommunityAPI(all[0], logins, log, cfg.PublicAddr, svc.SFU)
			s.communityEP = s.community.endpoint()
			s.callsEP = s.community.callsEndpoint()
		}
	}

	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	r.Get("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w)
	})
	if cfg.Pprof {
		r.HandleFunc("/debug/pprof/*", pprof.Index)
		r.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	r.Get("/ws/iota", func(w http.ResponseWriter, r *http.Request) {
		s.sockets.serve(w, r, s.iotaEP)
	})
	page := web.Handler()
	calls := func(w http.ResponseWriter, r *http.Request) {
		if s.callsEP == nil {
			http.NotFound(w, r)
			return
		}
		s.sockets.serve(w, r, s.callsEP)
	}
	r.Get("/ws/calls/", calls)
	r.Get("/ws/calls", calls)
	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		// The seed puts the community socket at the root of the address,
		// where browsers also expect the page: the Upgrade header decides.
		if websocket.IsWebSocketUpgrade(r) {
			if s.communityEP == nil {
				http.Error(w, "no community is served here", http.StatusNotFound)
				return
			}
			s.sockets.serve(w, r, s.communityEP)
			return
		}
		page.ServeHTTP(w, r)
	})
	r.Get("/*", page.ServeHTTP)
	s.router = r
	return s
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.router }

// Serve serves on ln until ctx is cancelled, then shuts down in order: stop
// accepting, close every socket with 1001, wait for writers to drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	shutdownErr := hs.Shutdown(sctx)
	s.sockets.reg.closeAll(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return shutdownErr
}

// checkOrigin lets non-browser clients (no Origin) and the page's own origin
// in, plus any origin the operator allowed.
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
	for _, allowed := range s.cfg.AllowedOrigins {
		if allowed == "*" || strings.EqualFold(allowed, origin) {
			return true
		}
	}
	return false
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

func (l *loginLimiter) allow(ip string) bool {
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
