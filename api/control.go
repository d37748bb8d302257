package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/iotad/iotad/community"
	icrypto "github.com/iotad/iotad/crypto"
	iotasvc "github.com/iotad/iotad/iota"
)

// ControlSocket is the name of the admin socket in the data directory. The
// operator's commands (`iotad member role`, `iotad user remove`, …) are
// sent through it to a running server, so that they go through the same
// services as the sockets' requests and the server's caches and open
// sockets see the change at once. It is a unix socket of mode 0600: only
// the user who owns the data directory can connect, and whoever can is the
// operator.
const ControlSocket = "admin.sock"

// ErrNoServer means no server answers on the admin socket: the file is not
// there, or a server that died left it behind (connection refused). The
// CLI then opens the database itself.
var ErrNoServer = errors.New("no iotad serve is running on this data directory")

// maxSocketPath is the longest unix socket path every platform takes
// (sun_path is 104 bytes on the BSDs and macOS, 108 on Linux, with the NUL).
const maxSocketPath = 103

// controlMaxBody bounds a request on the admin socket; the largest is a
// handful of names and ids.
const controlMaxBody = 64 << 10

// ControlRequest is one operator command. Op names it: user.add, .list,
// .remove; token.create, .list, .revoke; community.create, .addr, .list;
// invite.create, .list, .revoke; member.list, .role, .ban, .unban, .kick.
// The other fields are its arguments, unused ones left empty.
type ControlRequest struct {
	Op         string        `json:"op"`
	Community  string        `json:"community,omitempty"`
	User       string        `json:"user,omitempty"`
	Role       string        `json:"role,omitempty"`
	ID         string        `json:"id,omitempty"`
	Name       string        `json:"name,omitempty"`
	PublicKey  string        `json:"public_key,omitempty"`
	Uses       int           `json:"uses,omitempty"`
	Expires    time.Duration `json:"expires,omitempty"`
	Addr       string        `json:"addr,omitempty"`
	PublicAddr string        `json:"public_addr,omitempty"`
	// TLS makes an invite say tls=1 although this server does not serve
	// TLS itself: a reverse proxy in front of it does.
	TLS bool `json:"tls,omitempty"`
}

// ControlReply is what a command returns; only the fields of its op are set.
type ControlReply struct {
	// Secret is a new token's secret or a new invite's tensamin:// text,
	// shown once.
	Secret      string             `json:"secret,omitempty"`
	User        *ControlUser       `json:"user,omitempty"`
	Token       *ControlToken      `json:"token,omitempty"`
	Invite      *ControlInvite     `json:"invite,omitempty"`
	Community   *ControlCommunity  `json:"community,omitempty"`
	First       bool               `json:"first,omitempty"`
	Users       []ControlUser      `json:"users,omitempty"`
	Tokens      []ControlToken     `json:"tokens,omitempty"`
	Invites     []ControlInvite    `json:"invites,omitempty"`
	Members     []ControlMember    `json:"members,omitempty"`
	Communities []ControlCommunity `json:"communities,omitempty"`
	Error       *ControlError      `json:"error,omitempty"`
}

// ControlUser is an Iota account as the operator sees it.
type ControlUser struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	PublicKey string    `json:"public_key"`
	CreatedAt time.Time `json:"created_at"`
}

// ControlToken is a registration token (never its secret).
type ControlToken struct {
	ID        string    `json:"id"`
	MaxUses   int       `json:"max_uses"`
	Uses      int       `json:"uses"`
	ExpiresAt time.Time `json:"expires_at"`
	Revoked   bool      `json:"revoked"`
}

// ControlInvite is an invite (never its secret).
type ControlInvite struct {
	ID        string    `json:"id"`
	MaxUses   int       `json:"max_uses"`
	Uses      int       `json:"uses"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
	UserID    string    `json:"user_id"`
	Revoked   bool      `json:"revoked"`
}

// ControlMember is a member of a community.
type ControlMember struct {
	UserID   string    `json:"user_id"`
	Role     string    `json:"role"`
	Banned   bool      `json:"banned"`
	JoinedAt time.Time `json:"joined_at"`
}

// ControlCommunity is a community and its addresses.
type ControlCommunity struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PublicKey  string `json:"public_key"`
	ListenAddr string `json:"listen_addr"`
	PublicAddr string `json:"public_addr"`
}

// ControlError is a command's error as it crossed the admin socket: Type
// is the wire error type (errors.go), Detail the words.
type ControlError struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
}

func (e *ControlError) Error() string { return e.Detail }

// Control carries out operator commands on the services of one process:
// the running server's (through the admin socket) or, when none runs, the
// CLI's own.
type Control struct {
	iota        *iotasvc.Store
	communities *community.Service
	// srv is the running server, whose Iota sockets a removed user loses;
	// nil in the CLI's own process, which has no sockets.
	srv *Server
	log *slog.Logger

	// mu serialises commands: community addresses are plain fields that
	// only commands write, and commands are rare.
	mu sync.Mutex
}

// NewControl returns the commands over svc; srv is the server serving svc,
// or nil when none does in this process.
func NewControl(svc Services, srv *Server, log *slog.Logger) *Control {
	return &Control{iota: svc.Iota, communities: svc.Communities, srv: srv, log: log}
}

// operator is the actor of every command: above every member but an owner.
var operator = community.OperatorMember()

// Do runs one command.
func (ctl *Control) Do(ctx context.Context, req ControlRequest) (ControlReply, error) {
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	switch req.Op {
	case "user.add", "user.list", "user.remove":
		return ctl.user(ctx, req)
	case "token.create", "token.list", "token.revoke":
		return ctl.token(ctx, req)
	case "community.create", "community.addr", "community.list":
		return ctl.community(ctx, req)
	case "invite.create", "invite.list", "invite.revoke":
		return ctl.invite(ctx, req)
	case "member.list", "member.role", "member.ban", "member.unban", "member.kick":
		return ctl.member(ctx, req)
	}
	return ControlReply{}, fmt.Errorf("%w: unknown command %q", ErrInvalidData, req.Op)
}

func (ctl *Control) user(ctx context.Context, req ControlRequest) (ControlReply, error) {
	switch req.Op {
	case "user.add":
		// The CLI keeps the private key: only the public one comes here,
		// with the id its key file already names.
		if _, err := uuid.Parse(req.ID); err != nil {
			return ControlReply{}, fmt.Errorf("%w: a new user's id is a UUID", ErrInvalidData)
		}
		pub, err := icrypto.ParsePublicKey(req.PublicKey)
		if err != nil {
			return ControlReply{}, err
		}
		u, err := ctl.iota.CreateUserAs(ctx, req.ID, req.Name, pub)
		if err != nil {
			return ControlReply{}, err
		}
		cu := controlUser(u)
		return ControlReply{User: &cu}, nil
	case "user.list":
		users, err := ctl.iota.Users(ctx)
		if err != nil {
			return ControlReply{}, err
		}
		out := make([]ControlUser, len(users))
		for i, u := range users {
			out[i] = controlUser(u)
		}
		return ControlReply{Users: out}, nil
	}
	if req.ID == "" {
		return ControlReply{}, fmt.Errorf("%w: the user id is required", ErrInvalidData)
	}
	if err := ctl.iota.DeleteUser(ctx, req.ID); err != nil {
		return ControlReply{}, err
	}
	if ctl.srv != nil {
		ctl.srv.closeIotaSessions(req.ID)
	}
	return ControlReply{}, nil
}

// closeIotaSessions closes every Iota socket of a removed account, as the
// account's own delete_user does for its other devices.
func (s *Server) closeIotaSessions(userID string) {
	s.iota.accountDeleted(userID, nil)
}

func controlUser(u iotasvc.User) ControlUser {
	return ControlUser{ID: u.ID, Name: u.Name, PublicKey: u.PublicKey.String(), CreatedAt: u.CreatedAt}
}

func (ctl *Control) token(ctx context.Context, req ControlRequest) (ControlReply, error) {
	switch req.Op {
	case "token.create":
		secret, t, err := ctl.iota.CreateToken(ctx, req.Uses, req.Expires)
		if err != nil {
			return ControlReply{}, err
		}
		ct := controlToken(t)
		return ControlReply{Secret: secret, Token: &ct}, nil
	case "token.list":
		tokens, err := ctl.iota.Tokens(ctx)
		if err != nil {
			return ControlReply{}, err
		}
		out := make([]ControlToken, len(tokens))
		for i, t := range tokens {
			out[i] = controlToken(t)
		}
		return ControlReply{Tokens: out}, nil
	}
	if req.ID == "" {
		return ControlReply{}, fmt.Errorf("%w: the token id is required", ErrInvalidData)
	}
	return ControlReply{}, ctl.iota.RevokeToken(ctx, req.ID)
}

func controlToken(t iotasvc.Token) ControlToken {
	return ControlToken{ID: t.ID, MaxUses: t.MaxUses, Uses: t.Uses, ExpiresAt: t.ExpiresAt, Revoked: t.Revoked}
}

func (ctl *Control) community(ctx context.Context, req ControlRequest) (ControlReply, error) {
	switch req.Op {
	case "community.create":
		first := len(ctl.communities.All()) == 0
		listen := req.Addr
		if !first && listen == "" {
			listen = ctl.communities.NextListenAddr()
		}
		c, err := ctl.communities.Create(ctx, req.Name)
		if err != nil {
			return ControlReply{}, err
		}
		if err := ctl.communities.SetAddresses(ctx, c, listen, req.PublicAddr); err != nil {
			return ControlReply{}, err
		}
		if err := c.CreateDefaultChannels(ctx); err != nil {
			return ControlReply{}, err
		}
		cc := controlCommunity(c)
		return ControlReply{Community: &cc, First: first}, nil
	case "community.addr":
		c, err := ctl.communities.Get(req.Community)
		if err != nil {
			return ControlReply{}, err
		}
		return ControlReply{}, ctl.communities.SetAddresses(ctx, c, req.Addr, req.PublicAddr)
	}
	all := ctl.communities.All()
	out := make([]ControlCommunity, len(all))
	for i, c := range all {
		out[i] = controlCommunity(c)
	}
	return ControlReply{Communities: out}, nil
}

func controlCommunity(c *community.Community) ControlCommunity {
	return ControlCommunity{ID: c.ID, Name: c.Name, PublicKey: c.Public.String(), ListenAddr: c.ListenAddr, PublicAddr: c.PublicAddr}
}

// pick finds the community a command names, or the first when it names none.
func (ctl *Control) pick(id string) (*community.Community, error) {
	if id != "" {
		return ctl.communities.Get(id)
	}
	all := ctl.communities.All()
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: there is no community yet: run `iotad serve` once or `iotad community create`", community.ErrNotFound)
	}
	return all[0], nil
}

func (ctl *Control) invite(ctx context.Context, req ControlRequest) (ControlReply, error) {
	c, err := ctl.pick(req.Community)
	if err != nil {
		return ControlReply{}, err
	}
	switch req.Op {
	case "invite.create":
		role, err := community.ParseRole(req.Role)
		if err != nil {
			return ControlReply{}, err
		}
		secret, inv, err := c.CreateOperatorInvite(ctx, community.InviteOptions{MaxUses: req.Uses, TTL: req.Expires, UserID: req.User, Role: role})
		if err != nil {
			return ControlReply{}, err
		}
		addr := req.PublicAddr
		if addr == "" {
			addr = invitePublicAddr(c)
		}
		ci := controlInvite(inv)
		tls := req.TLS || (ctl.srv != nil && ctl.srv.cfg.TLS != nil)
		return ControlReply{Secret: InviteText(addr, secret, c.Public, tls), Invite: &ci}, nil
	case "invite.list":
		invites, err := c.Invites(ctx, operator)
		if err != nil {
			return ControlReply{}, err
		}
		out := make([]ControlInvite, len(invites))
		for i, inv := range invites {
			out[i] = controlInvite(inv)
		}
		return ControlReply{Invites: out}, nil
	}
	return ControlReply{}, c.RevokeInvite(ctx, operator, req.ID)
}

func controlInvite(inv community.Invite) ControlInvite {
	return ControlInvite{ID: inv.ID, MaxUses: inv.MaxUses, Uses: inv.Uses, Role: string(inv.Role),
		ExpiresAt: inv.ExpiresAt, UserID: inv.UserID, Revoked: inv.Revoked}
}

// invitePublicAddr is what an invite made by the operator names: the
// community's public address, else the one the running server uses for
// it, else localhost and its port.
func invitePublicAddr(c *community.Community) string {
	switch {
	case c.PublicAddr != "":
		return c.PublicAddr
	case c.ServedAddr != "":
		return c.ServedAddr
	case c.ListenAddr != "":
		if _, port, err := net.SplitHostPort(c.ListenAddr); err == nil {
			return net.JoinHostPort("localhost", port)
		}
	}
	return "localhost:1984"
}

// member runs the member commands through the community's own methods,
// whose events reach the server's sockets: a ban closes the member's
// sockets with 4003, a role change updates their sessions and is pushed
// as role_changed.
func (ctl *Control) member(ctx context.Context, req ControlRequest) (ControlReply, error) {
	c, err := ctl.pick(req.Community)
	if err != nil {
		return ControlReply{}, err
	}
	if req.Op == "member.list" {
		members, err := c.Members(ctx, operator)
		if err != nil {
			return ControlReply{}, err
		}
		out := make([]ControlMember, len(members))
		for i, m := range members {
			out[i] = ControlMember{UserID: m.UserID, Role: string(m.Role), Banned: m.Banned, JoinedAt: m.JoinedAt}
		}
		return ControlReply{Members: out}, nil
	}
	if req.User == "" {
		return ControlReply{}, fmt.Errorf("%w: the user id is required", ErrInvalidData)
	}
	switch req.Op {
	case "member.role":
		role, err := community.ParseRole(req.Role)
		if err != nil {
			return ControlReply{}, err
		}
		return ControlReply{}, c.OperatorSetRole(ctx, req.User, role)
	case "member.ban":
		return ControlReply{}, c.Ban(ctx, operator, req.User)
	case "member.unban":
		return ControlReply{}, c.Unban(ctx, operator, req.User)
	}
	return ControlReply{}, c.Kick(ctx, operator, req.User)
}

// ServeHTTP answers one command per POST: a ControlRequest in, a
// ControlReply out.
func (ctl *Control) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a command", http.StatusMethodNotAllowed)
		return
	}
	var req ControlRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, controlMaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		// Unknown fields most likely come from a CLI newer than the server.
		http.Error(w, fmt.Sprintf("not a command this iotad serve knows (is it older than the CLI?): %v", err), http.StatusBadRequest)
		return
	}
	rep, err := ctl.Do(r.Context(), req)
	log := ctl.log.With(slog.String("op", req.Op), slog.String("community", req.Community), slog.String("user", req.User), slog.String("id", req.ID))
	if err != nil {
		typ, data := wireError(err)
		if typ == ErrTypeInternal {
			log.Error("admin command failed", slog.Any("err", err))
			data.Detail = "internal error; the log of iotad serve has the cause"
		} else {
			log.Info("admin command refused", slog.String("error", typ), slog.Any("err", err))
		}
		rep = ControlReply{Error: &ControlError{Type: typ, Detail: data.Detail}}
	} else {
		log.Info("admin command")
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rep)
}

// ErrControlInUse: another server holds the data directory's admin socket.
var ErrControlInUse = errors.New("another iotad serve is running on this data directory")

// ListenControl opens the admin socket at path with mode 0600, with no
// moment at which anyone else could connect: it is bound inside a fresh
// 0700 directory, made 0600 there, then renamed into place. A socket left
// by a server that died is replaced; one that a live server answers on is
// not, since two servers must not share a data directory (nodes of a
// cluster do, and only the first opens it). Closing the
// listener removes the socket file.
func ListenControl(path string) (net.Listener, error) {
	// The socket is first bound as DIR/.admNNNNNNNNNN/s (os.MkdirTemp's
	// suffix is at most 10 digits).
	if longest := len(filepath.Join(filepath.Dir(path), ".adm0123456789", "s")); longest > maxSocketPath || len(path) > maxSocketPath {
		return nil, fmt.Errorf("admin socket %s: the path is too long for a unix socket (%d bytes at most); use a shorter --data",
			path, maxSocketPath-max(longest-len(path), 0))
	}
	if conn, err := net.Dial("unix", path); err == nil {
		conn.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, ErrControlInUse)
	} else if !noServer(err) {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".adm")
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// The listener's own unlink would look for the temporary name.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	file, err := os.Stat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return &controlListener{UnixListener: ln, path: path, file: file}, nil
}

// controlListener is the admin socket under its final name.
type controlListener struct {
	*net.UnixListener
	path string
	// file is the socket file as this listener put it in place: two
	// nodes taking over a dead node's socket at once both rename theirs
	// into place, and the one replaced must not remove the other's.
	file os.FileInfo
	once sync.Once
}

func (l *controlListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// OwnsPath reports whether the socket file at the path is still this
// listener's, so that CLI commands reach it.
func (l *controlListener) OwnsPath() bool {
	now, err := os.Stat(l.path)
	return err == nil && os.SameFile(now, l.file)
}

func (l *controlListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if l.OwnsPath() {
			os.Remove(l.path)
		}
	})
	return err
}

// ServeControl answers commands on ln until ctx is cancelled, then waits
// for the command under way; the socket file goes with the listener.
func ServeControl(ctx context.Context, ln net.Listener, ctl *Control) error {
	hs := &http.Server{Handler: ctl, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(ctl.log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = hs.Shutdown(sctx)
		cancel()
		<-errc
	}
	ln.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// noServer tells the errors of dialling a socket no server listens on.
func noServer(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// dialError marks a failure to connect, which means the command was
// never sent, so that the CLI may run it itself.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// CallControl sends req to the server listening on the admin socket at
// path. It returns ErrNoServer when none does (no socket file, or one left
// by a server that died), and refuses a socket others could open.
func CallControl(ctx context.Context, path string, req ControlRequest) (ControlReply, error) {
	info, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ControlReply{}, ErrNoServer
		}
		return ControlReply{}, fmt.Errorf("admin socket: %w", err)
	}
	if info.Mode().Type() != fs.ModeSocket || info.Mode().Perm()&0o077 != 0 {
		return ControlReply{}, fmt.Errorf("admin socket %s is not a socket of mode 0600: not talking to it", path)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return ControlReply{}, err
	}
	// A command is a few database writes; a server that does not answer
	// in a minute is stuck, and the operator should hear so.
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, &dialError{err}
			}
			return conn, nil
		},
		DisableKeepAlives: true,
	}}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://iotad/", bytes.NewReader(body))
	if err != nil {
		return ControlReply{}, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(hreq)
	if err != nil {
		var de *dialError
		if errors.As(err, &de) && noServer(de.err) {
			return ControlReply{}, ErrNoServer
		}
		return ControlReply{}, fmt.Errorf("admin socket: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		return ControlReply{}, fmt.Errorf("admin socket: %s: %s", res.Status, bytes.TrimSpace(msg))
	}
	var rep ControlReply
	if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
		return ControlReply{}, fmt.Errorf("admin socket: reply: %w", err)
	}
	if rep.Error != nil {
		return ControlReply{}, rep.Error
	}
	return rep, nil
}
