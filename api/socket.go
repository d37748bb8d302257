package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// socketLimits are the caps the registry enforces; 0 means no cap.
type socketLimits struct {
	// max caps all sockets, perAddr the sockets of one address, and
	// perAddrUnauth those of them not logged in yet.
	max, perAddr, perAddrUnauth int
	// perUser caps the logged-in sockets of one user.
	perUser int
	// userRate and userBurst shape the token bucket all of a user's
	// sockets share; a rate of 0 means none.
	userRate  rate.Limit
	userBurst int
}

// Refusals of an upgrade. The server-wide ones answer 503 (come back
// later), the per-address ones 429 (this client is the reason).
var (
	errServerFull     = errors.New("too many connections")
	errShuttingDown   = errors.New("shutting down")
	errAddrFull       = errors.New("too many connections from this address")
	errAddrUnauthFull = errors.New("too many connections from this address that have not logged in")
)

type addrCount struct{ total, unauth int }

type userCount struct {
	sockets int
	limiter *rate.Limiter
}

// registry knows every open session, to cap their number and to close them
// all on shutdown (http.Server.Shutdown does not see hijacked connections).
type registry struct {
	lim socketLimits

	mu       sync.Mutex
	reserved int // slots taken, counted before the upgrade answers
	addrs    map[string]*addrCount
	users    map[string]*userCount
	swept    time.Time
	sessions map[*Session]struct{}
	closed   bool
	// readers counts the sessions' reader goroutines, which run handlers:
	// shutdown waits for them before the stores they use are closed.
	readers sync.WaitGroup
}

func newRegistry(lim socketLimits) *registry {
	return &registry{lim: lim, sessions: map[*Session]struct{}{},
		addrs: map[string]*addrCount{}, users: map[string]*userCount{}}
}

// reserve takes a slot before the upgrade, so that the caps hold even for
// clients whose handshake completes before their session is registered.
// A new socket counts as not logged in until login moves it to its user.
func (r *registry) reserve(addr string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.addrs[addr]
	if a == nil {
		a = &addrCount{}
	}
	switch {
	case r.closed:
		metrics.refusedShutdown.Add(1)
		return errShuttingDown
	case r.lim.max > 0 && r.reserved >= r.lim.max:
		metrics.refusedServer.Add(1)
		return errServerFull
	case r.lim.perAddr > 0 && a.total >= r.lim.perAddr:
		metrics.refusedAddr.Add(1)
		return errAddrFull
	case r.lim.perAddrUnauth > 0 && a.unauth >= r.lim.perAddrUnauth:
		metrics.refusedAddrUnauth.Add(1)
		return errAddrUnauthFull
	}
	r.addrs[addr] = a
	a.total++
	a.unauth++
	r.reserved++
	return nil
}

// release gives back a slot whose upgrade failed.
func (r *registry) release(addr string) {
	r.mu.Lock()
	r.free(addr, true)
	r.mu.Unlock()
}

// free gives back a slot; r.mu is held.
func (r *registry) free(addr string, unauth bool) {
	r.reserved--
	a := r.addrs[addr]
	a.total--
	if unauth {
		a.unauth--
	}
	if a.total == 0 {
		delete(r.addrs, addr)
	}
}

// add registers the session of a reserved slot; false when shutting down.
// The caller then runs the session's reader, and calls remove at its end.
func (r *registry) add(s *Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.free(s.addr, true)
		metrics.refusedShutdown.Add(1)
		return false
	}
	r.sessions[s] = struct{}{}
	r.readers.Add(1)
	metrics.sockets.Add(1)
	metrics.socketsTotal.Add(1)
	return true
}

// remove unregisters a session and frees its slot.
func (r *registry) remove(s *Session) {
	r.mu.Lock()
	if _, ok := r.sessions[s]; ok {
		delete(r.sessions, s)
		r.free(s.addr, s.counted == "")
		if s.counted != "" {
			r.users[s.counted].sockets--
			s.counted = ""
		}
		metrics.sockets.Add(-1)
	}
	r.mu.Unlock()
	r.readers.Done()
}

// login moves a session from its address's not-logged-in sockets to its
// user's, unless the user is at the per-user cap. It returns the token
// bucket the user's sockets share (nil when there is none).
func (r *registry) login(s *Session, userID string) (*rate.Limiter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.sessions[s]; !ok {
		return nil, fmt.Errorf("%w: the socket is closing", ErrProtocol)
	}
	now := time.Now()
	r.sweepUsers(now)
	u := r.users[userID]
	if u == nil {
		u = &userCount{}
		if r.lim.userRate > 0 {
			u.limiter = rate.NewLimiter(r.lim.userRate, r.lim.userBurst)
		}
		r.users[userID] = u
	}
	if s.counted == userID {
		return u.limiter, nil
	}
	if r.lim.perUser > 0 && u.sockets >= r.lim.perUser {
		metrics.refusedUserSockets.Add(1)
		return nil, fmt.Errorf("%w: this user has %d sockets open already", ErrRateLimited, u.sockets)
	}
	if s.counted != "" {
		r.users[s.counted].sockets--
	} else {
		r.addrs[s.addr].unauth--
	}
	u.sockets++
	s.counted = userID
	return u.limiter, nil
}

// sweepUsers forgets users with no socket whose bucket has refilled, so
// the map stays small; keeping the others means closing every socket and
// opening new ones does not refill a user's bucket. r.mu is held.
func (r *registry) sweepUsers(now time.Time) {
	if now.Sub(r.swept) < time.Minute {
		return
	}
	r.swept = now
	for id, u := range r.users {
		if u.sockets == 0 && (u.limiter == nil || u.limiter.TokensAt(now) >= float64(r.lim.userBurst)) {
			delete(r.users, id)
		}
	}
}

// closeAll tells every session to close with 1001 and waits for their
// readers (and so their writers and handlers) to end. When ctx ends first,
// the connections still open are cut and their handlers' contexts
// cancelled, and it waits for those readers too: a handler still running
// after Serve returns would use the stores the caller closes next.
func (r *registry) closeAll(ctx context.Context) {
	r.mu.Lock()
	r.closed = true
	all := r.snapshot()
	r.mu.Unlock()
	for _, s := range all {
		s.Close(CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		r.readers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	r.mu.Lock()
	left := r.snapshot()
	r.mu.Unlock()
	for _, s := range left {
		s.cancel()
		s.nc.Close()
	}
	<-done
}

// snapshot lists the sessions; r.mu is held.
func (r *registry) snapshot() []*Session {
	all := make([]*Session, 0, len(r.sessions))
	for s := range r.sessions {
		all = append(all, s)
	}
	return all
}

// socketServer upgrades HTTP requests to sessions of one endpoint.
type socketServer struct {
	cfg      SocketConfig
	reg      *registry
	log      *slog.Logger
	clock    func() time.Time
	upgrader websocket.Upgrader
	proxies  []netip.Prefix
}

func (ss *socketServer) serve(w http.ResponseWriter, r *http.Request, ep *Endpoint) {
	remote, peer := clientHost(r, ss.proxies)
	addr := addrKey(remote)
	if err := ss.reg.reserve(addr); err != nil {
		status := http.StatusTooManyRequests
		if errors.Is(err, errServerFull) || errors.Is(err, errShuttingDown) {
			status = http.StatusServiceUnavailable
		}
		ss.log.Debug("upgrade refused", slog.String("remote", remote), slog.Any("err", err))
		http.Error(w, err.Error(), status)
		return
	}
	hw := &hijackResponse{ResponseWriter: w}
	ws, err := ss.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		// Upgrade has already answered the request.
		ss.reg.release(addr)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		ws:         ws,
		nc:         hw.conn.Conn,
		cfg:        &ss.cfg,
		ep:         ep,
		reg:        ss.reg,
		ctx:        ctx,
		cancel:     cancel,
		Remote:     remote,
		addr:       addr,
		now:        ss.clock,
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		limiter:    rate.NewLimiter(rate.Limit(ss.cfg.RequestRate), ss.cfg.RequestBurst),
		br:         hw.br,
	}
	if tcp, ok := hw.conn.Conn.(*net.TCPConn); ok && hw.br != nil {
		if s.raw, err = tcp.SyscallConn(); err == nil {
			s.readable = s.readableOnce
		} else {
			s.raw = nil // the reader waits in gorilla
		}
	}
	s.baseLog, s.peer = ss.log, peer
	if !ss.reg.add(s) {
		// No writer runs yet, so this is the one write from here.
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseGoingAway, "server busy"), time.Now().Add(time.Second))
		ws.Close()
		cancel()
		return
	}
	// gorilla's own handlers would write pongs and close frames from the
	// reader goroutine; these hand them to the writer, the only goroutine
	// that writes. What gorilla still writes itself (the close frame of a
	// protocol error) becomes a close through the writer too.
	hw.conn.s.Store(s)
	ws.SetPingHandler(func(payload string) error {
		s.queuePong(payload)
		s.extendReadDeadline()
		return nil
	})
	ws.SetPongHandler(func(string) error { s.extendReadDeadline(); return nil })
	ws.SetCloseHandler(func(code int, _ string) error {
		s.peerClose(code)
		return nil
	})
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
	if ep.OnClose != nil {
		ep.OnClose(s)
	}
	ss.reg.remove(s)
}

// hijackResponse hands gorilla a quietConn in place of the hijacked
// connection.
type hijackResponse struct {
	http.ResponseWriter
	conn *quietConn
	// br is the reader gorilla reads the socket through, ours so that the
	// session can see what it holds (Session.waitReadable).
	br *bufio.Reader
}

// readBufferSize is the socket's read buffer: most client frames fit.
const readBufferSize = 1024

func (w *hijackResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("api: the response cannot be hijacked")
	}
	nc, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &quietConn{Conn: nc}
	if brw.Reader.Buffered() > 0 {
		return w.conn, brw, nil // gorilla refuses a client that did not wait for the handshake
	}
	// With no read buffer size of its own, gorilla reads through the
	// hijacked reader when it is large enough: this one.
	w.br = bufio.NewReaderSize(w.conn, readBufferSize)
	return w.conn, bufio.NewReadWriter(w.br, brw.Writer), nil
}

// quietConn is the connection as gorilla sees it. Until a session owns it,
// gorilla writes through (the handshake, a refusal); after, a frame gorilla
// writes does not reach the socket: a close frame (gorilla's answer to a
// protocol error) becomes the session's close, sent by its writer.
type quietConn struct {
	net.Conn
	s atomic.Pointer[Session]
}

func (c *quietConn) Write(p []byte) (int, error) {
	s := c.s.Load()
	if s == nil {
		return c.Conn.Write(p)
	}
	// gorilla writes a server control frame as one unmasked frame:
	// two header bytes, then at most 125 bytes of payload.
	if len(p) >= 4 && p[0]&0x0f == opClose && int(p[1]&0x7f) == len(p)-2 {
		s.closeWith(int(binary.BigEndian.Uint16(p[2:4])), string(p[4:]), false)
	}
	return len(p), nil
}

func (c *quietConn) SetWriteDeadline(t time.Time) error {
	if c.s.Load() != nil {
		return nil // the writer's deadlines are its own
	}
	return c.Conn.SetWriteDeadline(t)
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// addrKey is the address the per-address caps and login limits count: an
// IPv4 address, or the /64 of an IPv6 one, since one host is commonly
// given a whole /64 and could otherwise open sockets from 2^64 addresses.
// An IPv4-mapped IPv6 address counts as its IPv4 address.
func addrKey(host string) string {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
