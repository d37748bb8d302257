package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// SocketConfig holds the per-socket limits of PROTOCOL §2.
type SocketConfig struct {
	// SendQueue is how many frames may wait for a slow reader, and
	// SendQueueBytes how many bytes they may add up to (frames being written
	// count until written; a lone frame may be larger); past either the
	// socket is closed with 1008. 0 means no bound.
	SendQueue      int
	SendQueueBytes int
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
		SendQueue:      256,
		SendQueueBytes: 8 << 20,
		ReadLimit:      64 << 10,
		RequestRate:    20,
		RequestBurst:   40,
		RefusedLimit:   100,
		RefusedWindow:  10 * time.Second,
		LoginTimeout:   10 * time.Second,
		PingInterval:   30 * time.Second,
		WriteTimeout:   10 * time.Second,
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

// Session is one client socket: a reader goroutine, and a writer goroutine
// that alone writes to the connection (it ends while the socket idles).
type Session struct {
	ws *websocket.Conn
	nc net.Conn
	// br is what gorilla reads nc through; raw is nc's descriptor when nc
	// is plain TCP (not TLS, whose own buffer nobody can see), for
	// waitReadable.
	br       *bufio.Reader
	raw      syscall.RawConn
	readable func(fd uintptr) bool // readableOnce: a method value made per wait would allocate
	looked   bool
	cfg      *SocketConfig
	ep       *Endpoint
	// baseLog is the server's logger; log adds the socket's attributes
	// only to what is logged, since slog's With formats them at once, a
	// cost (and a deeper stack on the reader) every login paid.
	baseLog *slog.Logger
	peer    string
	reg     *registry
	ctx     context.Context
	cancel  context.CancelFunc
	now     func() time.Time
	Remote  string
	// addr is Remote as the per-address caps count it (IPv6 by its /64).
	addr string

	mu    sync.Mutex
	queue [][]byte
	spare [][]byte
	// queued is the bytes of the frames in queue and in the batch being
	// written: what the socket holds in memory for its peer.
	queued int
	// pong answers the latest ping only (RFC 6455 §5.5.3 allows it), so a
	// ping flood costs one pending frame, not a queue of them.
	pong        []byte
	closing     bool
	closeCode   int
	closeReason string
	flushFirst  bool
	// peerClosed says the peer began the closing handshake: it sends
	// nothing after its close frame, so ours can be followed by an
	// immediate close, without the half-close and its wait.
	peerClosed bool
	pingDue    bool
	// writing says one goroutine has frames off the queue that are not yet
	// all written: the writer with its batch, or a waker writing its run
	// inline (Wake). Only its holder writes to nc and touches
	// writeDeadline, so frames leave in queue order, never interleaved.
	writing bool
	// parked says the writer goroutine ended because the socket had
	// nothing to write for a ping interval: the next frame starts another.
	// An idle socket then holds the reader's stack alone.
	parked    bool
	pingTimer *time.Timer
	onPark    func() // tests: called as the writer parks
	// onInline (tests) is told each inline write's bytes sent and offered.
	onInline   func(sent, offered int)
	wake       chan struct{}
	writerDone chan struct{}
	// writeDeadline is the connection's write deadline, kept by whoever
	// is writing.
	writeDeadline time.Time

	limiter *rate.Limiter
	// userLimiter is the budget shared by all of the user's sockets, set at
	// login; touched only by the reader goroutine.
	userLimiter *rate.Limiter
	refusedAt   []time.Time
	refusedPos  int

	loggedIn atomic.Bool
	// counted is the user whose per-user cap this session counts against;
	// guarded by reg.mu.
	counted string
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
// It fails with ErrRateLimited, and the session stays logged out, when the
// user already has as many sockets open as the per-user cap allows.
func (s *Session) SetLoggedIn(userID string) error {
	if s.reg != nil {
		lim, err := s.reg.login(s, userID)
		if err != nil {
			s.log(slog.LevelWarn, "login refused: per-user socket cap", slog.String("user", userID))
			return err
		}
		s.userLimiter = lim
	}
	s.UserID = userID
	s.loggedIn.Store(true)
	return nil
}

// log writes one record with the socket's name and remote address.
func (s *Session) log(level slog.Level, msg string, attrs ...slog.Attr) {
	ctx := context.Background()
	if !s.baseLog.Enabled(ctx, level) {
		return
	}
	all := make([]slog.Attr, 0, 3+len(attrs))
	if s.ep != nil {
		all = append(all, slog.String("socket", s.ep.Name))
	}
	all = append(all, slog.String("remote", s.Remote))
	if s.peer != "" && s.peer != s.Remote {
		all = append(all, slog.String("via", s.peer))
	}
	s.baseLog.LogAttrs(ctx, level, msg, append(all, attrs...)...)
}

// Send queues a complete frame. It never blocks: a full queue (in frames
// or in bytes) closes the socket with 1008, since a reader that far behind
// would otherwise hold memory or, worse, slow down everyone who shares a
// channel with it.
func (s *Session) Send(frame []byte) bool {
	ok, wake, restart := s.enqueue(frame, true)
	switch {
	case restart:
		go s.writeRun(false)
	case wake:
		s.wakeWriter()
	}
	return ok
}

// SendLater queues frame like Send but leaves the writer asleep, parked
// or not: it reports whether the caller must Wake the session once it has
// queued what else it has, so that a run of frames leaves in one write.
func (s *Session) SendLater(frame []byte) (wake bool) {
	_, wake, _ = s.enqueue(frame, false)
	return wake
}

// Wake gets what SendLater queued written. Mostly the waker writes it
// itself (writeInline), which spares the writer goroutine a wake and a
// park for every delivery: in a room of 1,000 that was a tenth of the
// CPU. The writer is woken, or started if parked, for what that leaves.
func (s *Session) Wake() {
	if inlineWrites && s.raw != nil && s.writeInline() {
		return
	}
	s.signal()
}

// writeInline writes the queue from the calling goroutine in one
// non-blocking writev when no one else is writing and frames alone are
// pending: pings, pongs and the close stay the writer's, since their order
// and the closing handshake are its job. What the kernel does not take
// goes back to the front of the queue for the writer, which waits for the
// slow reader under its deadline. It reports false when it left the queue
// to the writer, and true when the queue was written or already taken.
func (s *Session) writeInline() bool {
	s.mu.Lock()
	if len(s.queue) == 0 {
		s.mu.Unlock()
		return true // the writer took it, or a waker before us
	}
	if s.writing || s.closing || s.pong != nil || s.pingDue {
		s.mu.Unlock()
		return false
	}
	s.writing = true
	batch := s.queue
	s.queue, s.spare = s.spare, nil
	s.mu.Unlock()

	s.keepWriteDeadline() // an expired one would fail the write before it starts
	sent, err := writeNow(s.raw, batch)
	whole, left := 0, sent
	for whole < len(batch) && left >= len(batch[whole]) {
		left -= len(batch[whole])
		whole++
	}
	if whole > 0 {
		metrics.framesOut.Add(int64(whole))
	}
	if sent > 0 {
		metrics.writesOut.Add(1)
	}
	if s.onInline != nil {
		offered := 0
		for _, f := range batch {
			offered += len(f)
		}
		s.onInline(sent, offered)
	}

	s.mu.Lock()
	s.writing = false
	s.queued -= sent
	if whole == len(batch) {
		clear(batch)
		s.spare = batch[:0]
	} else {
		// The rest, a frame's tail first, goes before what was queued
		// meanwhile.
		rest := batch[:copy(batch, batch[whole:])]
		clear(batch[len(rest):])
		rest[0] = rest[0][left:]
		rest = append(rest, s.queue...)
		clear(s.queue)
		s.queue, s.spare = rest, s.queue[:0]
	}
	pending := len(s.queue) > 0 || s.pong != nil || s.pingDue || s.closing
	s.mu.Unlock()
	switch {
	case err != nil:
		s.closeWith(0, "", false) // the writer drops the queue and closes nc
	case pending:
		s.signal()
	}
	return true
}

// enqueue queues frame; wake says the writer may be asleep with it, and
// restart that it was parked and the caller must start one (only when
// unpark says a parked writer is to be started at once).
func (s *Session) enqueue(frame []byte, unpark bool) (ok, wake, restart bool) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false, false, false
	}
	if s.queueFull(len(frame)) {
		s.closing, s.closeCode, s.closeReason, s.flushFirst = true, ClosePolicy, "send queue full", false
		frames, bytes := len(s.queue), s.queued
		s.mu.Unlock()
		metrics.slowConsumers.Add(1)
		s.log(slog.LevelWarn, "socket closed: send queue full", slog.String("user", s.UserID),
			slog.Int("frames", frames), slog.Int("bytes", bytes))
		s.signal()
		return false, false, false
	}
	s.queue = append(s.queue, frame)
	s.queued += len(frame)
	queued := s.queued
	first := len(s.queue) == 1
	if unpark {
		restart = s.parked
		s.parked = false
	}
	s.mu.Unlock()
	metrics.noteQueuePeak(queued)
	return true, first, restart
}

// queueFull reports whether n more bytes would pass a bound; s.mu is held.
// A frame is always taken when nothing is queued, so that one reply larger
// than the bound (a long community list) still goes out; a socket then
// holds at most the bound or that one frame.
func (s *Session) queueFull(n int) bool {
	c := s.cfg
	return (c.SendQueue > 0 && len(s.queue) >= c.SendQueue) ||
		(c.SendQueueBytes > 0 && s.queued > 0 && s.queued+n > c.SendQueueBytes)
}

// SendMessage encodes and queues a server message.
func (s *Session) SendMessage(typ, id string, level int, message string, data any) bool {
	b, err := EncodeFrame(typ, id, level, message, data)
	if err != nil {
		s.log(slog.LevelError, "encode message", slog.String("type", typ), slog.Any("err", err))
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

// peerClose is gorilla's close handler: the reply goes out through the
// writer, with the peer's code.
func (s *Session) peerClose(code int) {
	s.mu.Lock()
	if !s.closing {
		s.peerClosed = true
	}
	s.mu.Unlock()
	s.closeWith(code, "", false)
}

// queuePong is gorilla's ping handler: the pong goes out through the
// writer like every other frame.
func (s *Session) queuePong(payload string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.pong = controlFrame(opPong, payload)
	s.mu.Unlock()
	s.signal()
}

// signal wakes the writer, or starts one if it is parked.
func (s *Session) signal() {
	s.mu.Lock()
	restart := s.parked
	s.parked = false
	s.mu.Unlock()
	if restart {
		go s.writeRun(false)
		return
	}
	s.wakeWriter()
}

// wakeWriter wakes a writer that is not parked.
func (s *Session) wakeWriter() {
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

// writeLoop is the session's first writer; it runs until the socket
// closes or, idle, parks (see writeRun).
func (s *Session) writeLoop() {
	// The ping is due when a timer says so, not from a second channel in
	// a select: the writer waits on wake alone, which costs less per
	// delivery than selecting over two channels. The timer outlives a
	// parked writer and starts the next one.
	s.pingTimer = time.AfterFunc(s.cfg.PingInterval, func() {
		s.mu.Lock()
		s.pingDue = true
		s.mu.Unlock()
		s.signal()
	})
	s.writeRun(true)
}

// writeRun writes what is queued, then waits for more (wait says it waits
// first: a writer started on a queued frame has work at once). A wake
// that finds nothing to send but the ping parks the writer, whose
// goroutine ends: a socket idle for a ping interval holds no writer stack
// until its next frame or ping, while a busy socket never parks.
func (s *Session) writeRun(wait bool) {
	parked := false
	defer func() {
		if !parked {
			s.pingTimer.Stop()
			close(s.writerDone)
		}
	}()
	for {
		if wait {
			<-s.wake
		}
		wait = true
		s.mu.Lock()
		if s.writing {
			// A waker is writing inline; it wakes us when it is done and
			// something is left.
			s.mu.Unlock()
			continue
		}
		s.writing = true
		batch, pong, ping := s.queue, s.pong, s.pingDue
		s.queue, s.spare, s.pong, s.pingDue = s.spare, nil, nil, false
		closing, code, reason, flush, peerClosed := s.closing, s.closeCode, s.closeReason, s.flushFirst, s.peerClosed
		s.mu.Unlock()

		n := 0
		for _, f := range batch {
			n += len(f)
		}
		if closing && !flush {
			clear(batch)
			batch = batch[:0]
		}
		// A pong answers a ping that came before any close, so it goes
		// out even when the queue is dropped.
		if pong != nil {
			batch = append(batch, pong)
		}
		idle := ping && len(batch) == 0
		if ping && !closing {
			batch = append(batch, pingFrame)
			s.pingTimer.Reset(s.cfg.PingInterval)
		}
		if len(batch) > 0 {
			if err := s.write(batch); err != nil {
				s.closeWith(0, "", false)
				s.nc.Close()
				return
			}
			metrics.framesOut.Add(int64(len(batch)))
			metrics.writesOut.Add(1)
		}
		clear(batch)
		s.mu.Lock()
		s.spare = batch[:0]
		s.queued -= n
		s.writing = closing // a closing writer keeps the socket to the end
		s.mu.Unlock()

		if closing {
			switch {
			case code != 0 && peerClosed:
				s.write([][]byte{closeFrame(code, reason)})
				s.nc.Close()
			case code != 0:
				s.write([][]byte{closeFrame(code, reason)})
				s.halfClose()
			default:
				s.nc.Close()
			}
			return
		}
		if idle {
			s.mu.Lock()
			if len(s.queue) == 0 && s.pong == nil && !s.pingDue && !s.closing {
				s.parked, parked = true, true
			}
			s.mu.Unlock()
			if parked {
				if s.onPark != nil {
					s.onPark()
				}
				return
			}
		}
	}
}

// halfClose follows our close frame with a FIN and gives the reader
// closeGrace to read, and discard, what the peer still sends until it
// closes too. Closing at once with unread bytes in the kernel's buffer
// would answer them with a reset, which can destroy our close frame before
// the peer reads it (a client that sent too large a frame saw 1006, not
// 1009).
func (s *Session) halfClose() {
	if cw, ok := s.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	s.mu.Lock()
	s.nc.SetReadDeadline(time.Now().Add(closeGrace))
	s.mu.Unlock()
}

// write sends frames in one writev, waiting for a slow reader until the
// write deadline.
func (s *Session) write(frames [][]byte) error {
	s.keepWriteDeadline()
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(s.nc)
	return err
}

// keepWriteDeadline moves the write deadline on; the caller is writing.
// It is moved only when less than half of WriteTimeout is left: rearming
// the poller's timer on every write was 6 % of a busy room's CPU, and a
// write stuck on a peer that does not read still fails after between half
// and all of WriteTimeout.
func (s *Session) keepWriteDeadline() {
	if now := time.Now(); s.writeDeadline.Sub(now) < s.cfg.WriteTimeout/2 {
		s.writeDeadline = now.Add(s.cfg.WriteTimeout)
		s.nc.SetWriteDeadline(s.writeDeadline)
	}
}

// readLoop reads messages until the connection ends. The read limit is
// applied here rather than by gorilla, whose own limit writes a close
// frame from this goroutine, beside the writer.
func (s *Session) readLoop() {
	limit := s.cfg.ReadLimit
	if limit <= 0 {
		limit = math.MaxInt64 - 1
	}
	for {
		s.waitReadable()
		mt, r, err := s.ws.NextReader()
		if err != nil {
			return
		}
		if s.isClosing() {
			// Read only to be discarded: NextReader skips the rest.
			continue
		}
		data, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			return
		}
		s.extendReadDeadline()
		metrics.framesIn.Add(1)
		if int64(len(data)) > limit {
			s.Close(CloseTooBig, "frame too large")
			continue
		}
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

// waitReadable returns when the socket has bytes to read, or at once when
// gorilla holds some already: an idle reader then waits a few frames from
// its goroutine's top, where Go can shrink its stack, instead of deep in
// gorilla's frame reader, where the 8 KB a login grew it to stayed for the
// socket's lifetime (docs/BENCHMARKS.md). What ends the wait (the read
// deadline, the peer gone) NextReader finds again and reports.
//
// The pong that answers each ping is taken here too, when it is whole in
// the buffer: gorilla's NextReader handles control frames inside its own
// loop and then waits there for the next message, so one ping interval
// after the login every idle reader was back deep in gorilla.
func (s *Session) waitReadable() {
	if s.raw == nil {
		return
	}
	for {
		if s.br.Buffered() == 0 {
			s.looked = false
			s.raw.Read(s.readable)
			// The socket is readable, so this fills the buffer without
			// blocking: the read gorilla's Peek would have made.
			if _, err := s.br.Peek(1); err != nil {
				return
			}
		}
		if !s.takePong() {
			return
		}
	}
}

// takePong consumes a client's pong frame if the buffer holds all of it,
// and does what the pong handler does. Only the well-formed case is taken
// (FIN, masked, a control frame's length); anything else is gorilla's to
// read and to refuse. It is called between messages, where a frame starts,
// except when closing, where the read loop leaves messages unread.
func (s *Session) takePong() bool {
	if s.isClosing() {
		return false
	}
	b, _ := s.br.Peek(s.br.Buffered())
	const finPong, masked = 0x80 | opPong, 0x80
	if len(b) < 2 || b[0] != finPong || b[1]&masked == 0 || b[1]&^masked > 125 {
		return false
	}
	n := 2 + 4 + int(b[1]&^masked)
	if len(b) < n {
		return false
	}
	s.br.Discard(n)
	s.extendReadDeadline()
	return true
}

// readableOnce is waitReadable's test. The first call looks at the
// socket: bytes that came before the wait began are never announced,
// since Go's poller forgets readiness when a read starts. Once it found
// none, the next call comes after the poller's wake, and is true: the
// wait costs the one look where gorilla's read would have made one
// failed read too.
func (s *Session) readableOnce(fd uintptr) bool {
	if s.looked {
		return true
	}
	s.looked = true
	return hasBytes(fd)
}

// extendReadDeadline holds s.mu so that it cannot undo the short deadline
// halfClose sets.
func (s *Session) extendReadDeadline() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.nc.SetReadDeadline(time.Now().Add(2*s.cfg.PingInterval + closeGrace))
}

func (s *Session) handle(frame []byte) {
	req, err := DecodeRequest(frame)
	if !s.allowRequest() {
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

// allowRequest takes a token from the socket's bucket and, once logged
// in, from the user's, which all of the user's sockets share: opening more
// sockets does not buy more requests.
func (s *Session) allowRequest() bool {
	if !s.limiter.Allow() {
		metrics.limitedSocket.Add(1)
		return false
	}
	if s.userLimiter != nil && !s.userLimiter.Allow() {
		metrics.limitedUser.Add(1)
		return false
	}
	return true
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
		s.log(slog.LevelWarn, "socket closed: too many refused requests")
		s.Close(ClosePolicy, "too many requests")
	}
}

func (s *Session) replyError(req *Request, err error) {
	typ, data := wireError(err)
	metrics.countError(typ)
	if typ == ErrTypeInternal {
		s.log(slog.LevelError, "request failed", slog.String("type", req.Type), slog.String("id", req.ID),
			slog.String("user", s.UserID), slog.Any("err", err))
	} else {
		s.log(slog.LevelDebug, "request refused", slog.String("type", req.Type), slog.String("id", req.ID),
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
