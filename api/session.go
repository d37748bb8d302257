package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// SocketConfig holds the per-socket limits of PROTOCOL §2.
type SocketConfig struct {
	// SendQueue is how many frames may wait for a slow reader.
	SendQueue int
	// ReadLimit is the largest frame a client may send.
	ReadLimit int64
	// RequestRate and RequestBurst shape the per-socket token bucket.
	RequestRate  float64
	RequestBurst int
	// RefusedLimit refusals within RefusedWindow close the socket.
	RefusedLimit  int
	RefusedWindow time.Duration
	// LoginTimeout closes a socket that has not logged in by then.
	LoginTimeout time.Duration
	// PingInterval is how often the server pings; a socket silent for two
	// intervals is dropped.
	PingInterval time.Duration
	WriteTimeout time.Duration
}

// DefaultSocketConfig returns the defaults of PROTOCOL §2.
func DefaultSocketConfig() SocketConfig {
	return SocketConfig{
		SendQueue:     256,
		ReadLimit:     64 << 10,
		RequestRate:   20,
		RequestBurst:  40,
		RefusedLimit:  100,
		RefusedWindow: 10 * time.Second,
		LoginTimeout:  10 * time.Second,
		PingInterval:  30 * time.Second,
		WriteTimeout:  10 * time.Second,
	}
}

// closeGrace is how long a socket that sent its close frame waits for the
// peer's answer before the connection is cut.
const closeGrace = time.Second

// Handler answers one request. A nil reply with a nil error sends nothing.
type Handler func(ctx context.Context, s *Session, req *Request) (*Reply, error)

// Endpoint is one kind of socket: its handler table and its hooks.
type Endpoint struct {
	Name     string
	handlers map[string]Handler
	public   map[string]bool
	// OnClose runs once when a session of this endpoint ends.
	OnClose func(s *Session)
}

// NewEndpoint returns an endpoint with no handlers.
func NewEndpoint(name string) *Endpoint {
	return &Endpoint{Name: name, handlers: map[string]Handler{}, public: map[string]bool{}}
}

// Handle registers h for typ; it runs only after login.
func (e *Endpoint) Handle(typ string, h Handler) { e.handlers[typ] = h }

// HandlePublic registers h for typ; it runs before login too.
func (e *Endpoint) HandlePublic(typ string, h Handler) {
	e.handlers[typ] = h
	e.public[typ] = true
}

// Session is one client socket: a reader (the goroutine that serves the
// HTTP request) and a writer goroutine that alone writes to the connection.
type Session struct {
	ws     *websocket.Conn
	nc     net.Conn
	cfg    *SocketConfig
	ep     *Endpoint
	log    *slog.Logger
	reg    *registry
	ctx    context.Context
	cancel context.CancelFunc
	now    func() time.Time
	Remote string

	mu          sync.Mutex
	queue       [][]byte
	spare       [][]byte
	closing     bool
	closeCode   int
	closeReason string
	flushFirst  bool
	wake        chan struct{}
	writerDone  chan struct{}

	limiter    *rate.Limiter
	refusedAt  []time.Time
	refusedPos int

	loggedIn atomic.Bool
	// UserID is the logged-in user (as text), set by the login handlers.
	UserID string
	// Login is the pending challenge, touched only by the reader goroutine.
	Login *PendingLogin
	// State is what the endpoint keeps per session (the community member, the call).
	State any
	// closeAfterReply, when set by a handler, closes the socket with this
	// code right after the handler's reply or error.
	closeAfterReply int
}

// Context is cancelled when the session ends.
func (s *Session) Context() context.Context { return s.ctx }

// LoggedIn reports whether the session completed its login.
func (s *Session) LoggedIn() bool { return s.loggedIn.Load() }

// SetLoggedIn marks the login complete (the login timer then has no effect).
func (s *Session) SetLoggedIn(userID string) {
	s.UserID = userID
	s.loggedIn.Store(true)
}

// Log is the session's logger.
func (s *Session) Log() *slog.Logger { return s.log }

// Send queues a complete frame. It never blocks: a full queue closes the
// socket with 1008, since a reader that far behind would otherwise hold
// memory or, worse, slow down everyone who shares a channel with it.
func (s *Session) Send(frame []byte) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	if len(s.queue) >= s.cfg.SendQueue {
		s.closing, s.closeCode, s.closeReason, s.flushFirst = true, ClosePolicy, "send queue full", false
		s.mu.Unlock()
		metrics.slowConsumers.Add(1)
		s.log.Warn("socket closed: send queue full", slog.Int("queue", s.cfg.SendQueue))
		s.signal()
		return false
	}
	s.queue = append(s.queue, frame)
	first := len(s.queue) == 1
	s.mu.Unlock()
	if first {
		s.signal()
	}
	return true
}

// SendMessage encodes and queues a server message.
func (s *Session) SendMessage(typ, id string, level int, message string, data any) bool {
	b, err := EncodeFrame(typ, id, level, message, data)
	if err != nil {
		s.log.Error("encode message", slog.String("type", typ), slog.Any("err", err))
		return false
	}
	return s.Send(textFrame(b))
}

// Close sends a close frame after what is queued and ends the session.
func (s *Session) Close(code int, reason string) {
	s.closeWith(code, reason, true)
}

func (s *Session) closeWith(code int, reason string, flush bool) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing, s.closeCode, s.closeReason, s.flushFirst = true, code, reason, flush
	s.mu.Unlock()
	s.signal()
}

func (s *Session) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Session) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Session) writeLoop() {
	defer close(s.writerDone)
	ticker := time.NewTicker(s.cfg.PingInterval)
	defer ticker.Stop()
	for {
		ping := false
		select {
		case <-s.wake:
		case <-ticker.C:
			ping = true
		}
		s.mu.Lock()
		batch := s.queue
		s.queue, s.spare = s.spare, nil
		closing, code, reason, flush := s.closing, s.closeCode, s.closeReason, s.flushFirst
		s.mu.Unlock()

		if ping {
			batch = append(batch, pingFrame)
		}
		if len(batch) > 0 && (!closing || flush) {
			if err := s.write(batch); err != nil {
				s.nc.Close()
				return
			}
			metrics.framesOut.Add(int64(len(batch)))
			metrics.writesOut.Add(1)
		}
		clear(batch)
		s.mu.Lock()
		s.spare = batch[:0]
		s.mu.Unlock()

		if closing {
			if code != 0 {
				s.write([][]byte{closeFrame(code, reason)})
				// Let the reader wait briefly for the peer's close frame;
				// cutting the connection at once could lose ours in a reset.
				s.nc.SetReadDeadline(time.Now().Add(closeGrace))
			} else {
				s.nc.Close()
			}
			return
		}
	}
}

func (s *Session) write(frames [][]byte) error {
	s.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(s.nc)
	return err
}

func (s *Session) readLoop() {
	for {
		mt, data, err := s.ws.ReadMessage()
		if err != nil {
			return
		}
		s.extendReadDeadline()
		if s.isClosing() {
			continue
		}
		metrics.framesIn.Add(1)
		if mt != websocket.TextMessage {
			s.Close(CloseUnsupported, "only text frames carry the protocol")
			continue
		}
		if !utf8.Valid(data) {
			s.Close(CloseInvalidData, "frame is not valid UTF-8")
			continue
		}
		s.handle(data)
	}
}

func (s *Session) extendReadDeadline() {
	if s.isClosing() {
		return
	}
	s.nc.SetReadDeadline(time.Now().Add(2*s.cfg.PingInterval + closeGrace))
}

func (s *Session) handle(frame []byte) {
	req, err := DecodeRequest(frame)
	if !s.limiter.Allow() {
		s.replyError(&req, ErrRateLimited)
		s.noteRefusal()
		return
	}
	if err != nil {
		s.replyError(&req, err)
		return
	}
	h, ok := s.ep.handlers[req.Type]
	if !ok {
		s.replyError(&req, fmt.Errorf("%w: unknown type %s", ErrProtocol, quoteShort(req.Type)))
		return
	}
	if !s.loggedIn.Load() && !s.ep.public[req.Type] {
		s.replyError(&req, ErrNotAuthenticated)
		return
	}
	reply, err := h(s.ctx, s, &req)
	switch {
	case err != nil:
		s.replyError(&req, err)
	case reply != nil && req.HasID:
		s.SendMessage(reply.Type, req.ID, LevelDebug, reply.LogMessage, reply.Data)
	}
	if code := s.closeAfterReply; code != 0 {
		s.Close(code, closeReasons[code])
	}
}

var closeReasons = map[int]string{
	ClosePolicy: "login failed",
	CloseNormal: "goodbye",
}

// noteRefusal closes a socket that keeps hammering after being refused.
func (s *Session) noteRefusal() {
	now := time.Now()
	if s.refusedAt == nil {
		// Made on the first refusal: most sockets never have one.
		s.refusedAt = make([]time.Time, s.cfg.RefusedLimit)
	}
	s.refusedAt[s.refusedPos] = now
	s.refusedPos = (s.refusedPos + 1) % len(s.refusedAt)
	// The ring holds the last RefusedLimit refusals; the slot after the
	// newest is the oldest of them.
	oldest := s.refusedAt[s.refusedPos]
	if !oldest.IsZero() && now.Sub(oldest) <= s.cfg.RefusedWindow {
		s.log.Warn("socket closed: too many refused requests")
		s.Close(ClosePolicy, "too many requests")
	}
}

func (s *Session) replyError(req *Request, err error) {
	typ, data := wireError(err)
	metrics.countError(typ)
	if typ == ErrTypeInternal {
		s.log.Error("request failed", slog.String("type", req.Type), slog.String("id", req.ID),
			slog.String("user", s.UserID), slog.Any("err", err))
	} else {
		s.log.Debug("request refused", slog.String("type", req.Type), slog.String("id", req.ID),
			slog.String("user", s.UserID), slog.String("error", typ), slog.Any("err", err))
	}
	id := ""
	if req.HasID {
		id = req.ID
	}
	s.SendMessage(typ, id, LevelWarn, data.Detail, data)
}

func quoteShort(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		r := []rune(s)
		s = string(r[:64]) + "…"
	}
	return `"` + s + `"`
}
