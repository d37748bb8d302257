// Package client is a Go client of iotad's wire protocol, used by the tests,
// the CLI and the load tool: dial, log in by solving the challenge,
// request/reply by id, and a channel of everything the server pushes.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	icrypto "github.com/iotad/iotad/crypto"
)

// Message is one frame from the server.
type Message struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Log  json.RawMessage `json:"log,omitempty"`
	Data json.RawMessage `json:"data"`
}

// IsError reports whether the message is an error reply.
func (m Message) IsError() bool { return strings.HasPrefix(m.Type, "error") }

// Decode decodes the message's data into v.
func (m Message) Decode(v any) error { return json.Unmarshal(m.Data, v) }

// ErrorReply is a server error reply returned as a Go error.
type ErrorReply struct {
	Type   string
	Detail string
	Msg    Message
}

func (e *ErrorReply) Error() string { return e.Type + ": " + e.Detail }

// Client is one socket to iotad.
type Client struct {
	ws         *websocket.Conn
	pushes     chan Message
	onFrame    func([]byte) bool
	memberKeys *MemberKeyCache
	pinned     *icrypto.PublicKey
	legacy     bool

	writeMu sync.Mutex

	mu        sync.Mutex
	serverKey icrypto.PublicKey
	pending   map[string]chan Message
	done      chan struct{}
	readErr   error
}

// Options tune a client.
type Options struct {
	// PushBuffer is how many pushed messages may wait unread; the reader
	// stops reading while it is full.
	PushBuffer int
	Header     http.Header
	// OnFrame, when set, sees every frame first; a frame it returns true
	// for is consumed and not decoded (load tools count frames this way).
	// The frame's bytes are reused once it returns.
	OnFrame func(frame []byte) bool
	// MemberKeys, when set, remembers member keys across logins, as the
	// server does, so that a returning member checks the community's proof
	// without an X448 operation. Clients may share one.
	MemberKeys *MemberKeyCache
	// ServerKey pins the identity key of the server this socket logs in
	// to (PROTOCOL §3); nil trusts the first one named.
	ServerKey *icrypto.PublicKey
	// LegacyLogin asks community logins for version 1 (login_version 1),
	// which binds the login to no server: only for a server run with
	// --legacy-login, or one from before version 2 (the load tool measures
	// old builds with it).
	LegacyLogin bool
	// TLSConfig is used for wss:// URLs (nil: the system's roots).
	TLSConfig *tls.Config
	// NetDialContext, when set, opens the TCP connection (a test behind a
	// proxy binds a local address of its own with it).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Dial connects to a WebSocket URL such as ws://127.0.0.1:1984/ws/iota.
func Dial(ctx context.Context, url string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	if opts.PushBuffer == 0 {
		opts.PushBuffer = 1024
	}
	dialer := *websocket.DefaultDialer
	dialer.TLSClientConfig = opts.TLSConfig
	dialer.NetDialContext = opts.NetDialContext
	ws, _, err := dialer.DialContext(ctx, url, opts.Header)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	c := &Client{
		ws:         ws,
		onFrame:    opts.OnFrame,
		memberKeys: opts.MemberKeys,
		pinned:     opts.ServerKey,
		legacy:     opts.LegacyLogin,
		pushes:     make(chan Message, opts.PushBuffer),
		pending:    map[string]chan Message{},
		done:       make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

func (c *Client) readLoop() {
	defer close(c.done)
	defer close(c.pushes)
	// One buffer for every frame, not ReadMessage's allocation per frame:
	// a load tool's thousand sockets receive a million frames a second,
	// and what a frame decodes to is copied out of it.
	var buf bytes.Buffer
	for {
		data, err := c.nextFrame(&buf)
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		if c.onFrame != nil && c.onFrame(data) {
			continue
		}
		var m Message
		if err := json.Unmarshal(data, &m); err != nil {
			c.mu.Lock()
			c.readErr = fmt.Errorf("client: server sent a frame that is not JSON: %w", err)
			c.mu.Unlock()
			c.ws.Close()
			return
		}
		c.mu.Lock()
		ch := c.pending[m.ID]
		if ch != nil {
			delete(c.pending, m.ID)
		}
		c.mu.Unlock()
		if ch != nil {
			ch <- m
			continue
		}
		c.pushes <- m
	}
}

// nextFrame reads the next frame into buf, which a rare large frame does
// not leave large.
func (c *Client) nextFrame(buf *bytes.Buffer) ([]byte, error) {
	if buf.Cap() > 64<<10 {
		*buf = bytes.Buffer{}
	}
	buf.Reset()
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Pushes delivers every message that is not a reply to a pending request.
// It is closed when the connection ends.
func (c *Client) Pushes() <-chan Message { return c.pushes }

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (a *websocket.CloseError when the server
// closed it), once Done is closed.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

// CloseCode is the close code the server sent, or 0.
func (c *Client) CloseCode() int {
	var ce *websocket.CloseError
	if errors.As(c.Err(), &ce) {
		return ce.Code
	}
	return 0
}

// Close closes the connection.
func (c *Client) Close() error {
	c.writeMu.Lock()
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.writeMu.Unlock()
	return c.ws.Close()
}

// SendRaw writes one frame as given (tests use it for bad input).
func (c *Client) SendRaw(messageType int, frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.ws.WriteMessage(messageType, frame)
}

type envelope struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Log  struct {
		Level   int    `json:"log_level"`
		Message string `json:"message"`
	} `json:"log"`
	Data any `json:"data"`
}

// Send writes a message without waiting for a reply.
func (c *Client) Send(typ, id string, data any) error {
	if data == nil {
		data = struct{}{}
	}
	b, err := json.Marshal(envelope{Type: typ, ID: id, Data: data})
	if err != nil {
		return fmt.Errorf("client: encode %s: %w", typ, err)
	}
	return c.SendRaw(websocket.TextMessage, b)
}

// Request sends a message with a fresh id and waits for the reply. An
// error reply comes back as *ErrorReply (with the message too).
func (c *Client) Request(ctx context.Context, typ string, data any) (Message, error) {
	return c.RequestID(ctx, uuid.NewString(), typ, data)
}

// RequestID is Request with a chosen id.
func (c *Client) RequestID(ctx context.Context, id, typ string, data any) (Message, error) {
	ch := make(chan Message, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.Send(typ, id, data); err != nil {
		return Message{}, err
	}
	select {
	case m := <-ch:
		return reply(m)
	case <-c.done:
		// The reply may have come just before the close.
		select {
		case m := <-ch:
			return reply(m)
		default:
		}
		return Message{}, fmt.Errorf("client: connection closed waiting for %s: %w", typ, c.Err())
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

func reply(m Message) (Message, error) {
	if m.IsError() {
		var d struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(m.Data, &d)
		return m, &ErrorReply{Type: m.Type, Detail: d.Detail, Msg: m}
	}
	return m, nil
}

// ErrServerIdentity means a challenge did not come from the server the
// client pinned: it does not open with the pinned key, names another key,
// or is of a login version the client did not ask for. Nothing has been
// answered when it is returned (PROTOCOL §3).
var ErrServerIdentity = errors.New("client: the server is not the one pinned for this login; refusing to answer its challenge")

// Expect is what a login must prove before the client answers.
type Expect struct {
	Role   icrypto.LoginRole
	UserID string
	// Server is the pinned identity key. Nil trusts the challenge's
	// server_key on first use; the caller should pin what Solve returns.
	Server *icrypto.PublicKey
	// Legacy accepts a version-1 challenge: only for a client that asked
	// for one with login_version 1.
	Legacy bool
	// Secrets, when set, keeps X448(user, server) across logins.
	Secrets *MemberKeyCache
}

type challengeFrame struct {
	Challenge    string `json:"challenge"`
	PublicKey    string `json:"public_key"`
	ServerKey    string `json:"server_key"`
	LoginVersion int    `json:"login_version"`
}

// Solve opens a challenge for the user and returns the answer and the
// server key it was bound to. It opens with the pinned key, never with the
// one the frame offers, and refuses (ErrServerIdentity) anything else.
func Solve(priv icrypto.PrivateKey, challenge Message, want Expect) (string, icrypto.PublicKey, error) {
	var d challengeFrame
	if err := challenge.Decode(&d); err != nil {
		return "", icrypto.PublicKey{}, fmt.Errorf("%w: malformed challenge: %v", ErrServerIdentity, err)
	}
	eph, err := icrypto.ParsePublicKey(d.PublicKey)
	if err != nil {
		return "", icrypto.PublicKey{}, fmt.Errorf("%w: challenge key: %v", ErrServerIdentity, err)
	}
	if want.Legacy && d.LoginVersion <= 1 {
		plain, err := icrypto.OpenChallenge(priv, eph, d.Challenge)
		if err != nil {
			return "", icrypto.PublicKey{}, fmt.Errorf("client: open challenge: %w", err)
		}
		return string(plain), icrypto.PublicKey{}, nil
	}
	if d.LoginVersion != 2 {
		return "", icrypto.PublicKey{}, fmt.Errorf("%w: login version %d", ErrServerIdentity, d.LoginVersion)
	}
	offered, err := icrypto.ParsePublicKey(d.ServerKey)
	if err != nil {
		return "", icrypto.PublicKey{}, fmt.Errorf("%w: server_key: %v", ErrServerIdentity, err)
	}
	server := offered
	if want.Server != nil {
		server = *want.Server
		if offered != server {
			return "", server, fmt.Errorf("%w: it names key %s, pinned %s", ErrServerIdentity, offered, server)
		}
	}
	l := icrypto.LoginV2{Role: want.Role, UserID: want.UserID, Ephemeral: eph, Server: server}
	static, err := want.Secrets.shared(priv, server)
	if err != nil {
		return "", server, fmt.Errorf("%w: server_key: %v", ErrServerIdentity, err)
	}
	plain, err := icrypto.OpenChallengeV2Static(priv, static, l, d.Challenge)
	if err != nil {
		return "", server, fmt.Errorf("%w: %v", ErrServerIdentity, err)
	}
	return string(plain), server, nil
}

// SolveV1 opens a version-1 challenge, as a --legacy-login server sends
// it. It proves nothing about the server.
func SolveV1(priv icrypto.PrivateKey, challenge Message) (string, error) {
	answer, _, err := Solve(priv, challenge, Expect{Legacy: true})
	return answer, err
}

// Login logs in to an Iota socket: identification → challenge →
// challenge_response, with the given identification data (at least
// user_id), and returns the identification_response. The challenge must
// come from the Iota key pinned in Options.ServerKey; without a pin the
// one the Iota names is trusted and can be read with ServerKey after.
func (c *Client) Login(ctx context.Context, priv icrypto.PrivateKey, identification map[string]any) (Message, error) {
	m, _, err := c.login(ctx, priv, identification, icrypto.RoleIota, c.pinned)
	return m, err
}

// login returns the identification_response and the challenge's answer.
func (c *Client) login(ctx context.Context, priv icrypto.PrivateKey, identification map[string]any, role icrypto.LoginRole, pinned *icrypto.PublicKey) (Message, string, error) {
	userID, err := identificationUserID(identification)
	if err != nil {
		return Message{}, "", err
	}
	ch, err := c.Request(ctx, "identification", identification)
	if err != nil {
		return ch, "", err
	}
	legacy := identification["login_version"] == 1
	answer, server, err := Solve(priv, ch, Expect{Role: role, UserID: userID, Server: pinned, Legacy: legacy, Secrets: c.memberKeys})
	if err != nil {
		return Message{}, "", err
	}
	m, err := c.Request(ctx, "challenge_response", map[string]string{"challenge": answer})
	if err != nil {
		return m, "", err
	}
	c.mu.Lock()
	c.serverKey = server
	c.mu.Unlock()
	return m, answer, nil
}

// identificationUserID is the user id as it goes on the wire, the AAD of
// a version-2 challenge.
func identificationUserID(identification map[string]any) (string, error) {
	switch v := identification["user_id"].(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	}
	return "", fmt.Errorf("client: identification needs a user_id (string or integer)")
}

// ServerKey is the identity key the last login on this socket proved.
func (c *Client) ServerKey() icrypto.PublicKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.serverKey
}
