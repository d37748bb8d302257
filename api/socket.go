package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// registry knows every open session, to cap their number and to close them
// all on shutdown (http.Server.Shutdown does not see hijacked connections).
type registry struct {
	max int

	mu       sync.Mutex
	reserved int // slots taken, counted before the upgrade answers
	sessions map[*Session]struct{}
	closed   bool
}

func newRegistry(max int) *registry {
	return &registry{max: max, sessions: map[*Session]struct{}{}}
}

// reserve takes a slot before the upgrade, so that the cap holds even for
// clients whose handshake completes before their session is registered.
func (r *registry) reserve() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.reserved >= r.max {
		return false
	}
	r.reserved++
	return true
}

// release gives back a slot whose upgrade failed.
func (r *registry) release() {
	r.mu.Lock()
	r.reserved--
	r.mu.Unlock()
}

// add registers the session of a reserved slot; false when shutting down.
func (r *registry) add(s *Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.reserved--
		return false
	}
	r.sessions[s] = struct{}{}
	metrics.sockets.Add(1)
	metrics.socketsTotal.Add(1)
	return true
}

// remove unregisters a session and frees its slot.
func (r *registry) remove(s *Session) {
	r.mu.Lock()
	if _, ok := r.sessions[s]; ok {
		delete(r.sessions, s)
		r.reserved--
		metrics.sockets.Add(-1)
	}
	r.mu.Unlock()
}

// closeAll tells every session to close with 1001 and waits, until ctx ends,
// for their writers to drain.
func (r *registry) closeAll(ctx context.Context) {
	r.mu.Lock()
	r.closed = true
	all := make([]*Session, 0, len(r.sessions))
	for s := range r.sessions {
		all = append(all, s)
	}
	r.mu.Unlock()
	for _, s := range all {
		s.Close(CloseGoingAway, "server shutting down")
	}
	for _, s := range all {
		select {
		case <-s.writerDone:
		case <-ctx.Done():
			return
		}
	}
}

// socketServer upgrades HTTP requests to sessions of one endpoint.
type socketServer struct {
	cfg      SocketConfig
	reg      *registry
	log      *slog.Logger
	clock    func() time.Time
	upgrader websocket.Upgrader
}

func (ss *socketServer) serve(w http.ResponseWriter, r *http.Request, ep *Endpoint) {
	if !ss.reg.reserve() {
		metrics.refusedConns.Add(1)
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	ws, err := ss.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already answered the request.
		ss.reg.release()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		ws:         ws,
		nc:         ws.NetConn(),
		cfg:        &ss.cfg,
		ep:         ep,
		reg:        ss.reg,
		ctx:        ctx,
		cancel:     cancel,
		Remote:     remoteHost(r),
		now:        ss.clock,
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		limiter:    rate.NewLimiter(rate.Limit(ss.cfg.RequestRate), ss.cfg.RequestBurst),
	}
	s.log = ss.log.With(slog.String("socket", ep.Name), slog.String("remote", s.Remote))
	if !ss.reg.add(s) {
		metrics.refusedConns.Add(1)
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseGoingAway, "server busy"), time.Now().Add(time.Second))
		ws.Close()
		cancel()
		return
	}
	ws.SetReadLimit(ss.cfg.ReadLimit)
	ws.SetPongHandler(func(string) error { s.extendReadDeadline(); return nil })
	s.extendReadDeadline()
	// The session gets goroutines of its own and the HTTP handler returns:
	// otherwise net/http's buffers for the request (8 KB and more) would
	// stay reachable from the handler's frame for the socket's lifetime.
	go s.writeLoop()
	go ss.run(s, ep)
}

// run is a session's reader, until the connection ends.
func (ss *socketServer) run(s *Session, ep *Endpoint) {
	loginTimer := time.AfterFunc(ss.cfg.LoginTimeout, func() {
		if !s.LoggedIn() {
			s.Close(ClosePolicy, "login timeout")
		}
	})
	s.readLoop()

	loginTimer.Stop()
	s.closeWith(0, "", false)
	s.cancel()
	<-s.writerDone
	s.nc.Close()
	ss.reg.remove(s)
	if ep.OnClose != nil {
		ep.OnClose(s)
	}
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
