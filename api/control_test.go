package api_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/community"
)

// controlSocket serves e's services on an admin socket in e's data
// directory until the test ends, and returns its path.
func (e *testEnv) controlSocket() string {
	e.t.Helper()
	path := filepath.Join(e.dir, api.ControlSocket)
	ln, err := api.ListenControl(path)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ctl := api.NewControl(api.Services{Iota: e.store, Communities: e.communities}, nil, slog.New(slog.DiscardHandler))
	go func() { done <- api.ServeControl(ctx, ln, ctl) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("admin socket: %v", err)
		}
	})
	return path
}

// TestAdminSocketIsTheOwnersAlone: the socket is 0600 from the moment it
// has its name, and gone when the server stops.
func TestAdminSocketIsTheOwnersAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, api.ControlSocket)
	ln, err := api.ListenControl(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Lstat(path)
	if err != nil || info.Mode().Type() != os.ModeSocket || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v %v, want a socket of mode 0600", info, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("the data directory holds %d entries, want the socket alone", len(entries))
	}
	ln.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the socket outlived its listener: %v", err)
	}
	if _, err := api.CallControl(context.Background(), path, api.ControlRequest{Op: "user.list"}); !errors.Is(err, api.ErrNoServer) {
		t.Fatalf("no socket: %v, want ErrNoServer", err)
	}
}

// TestSecondServerCannotTakeTheAdminSocket: a second server on the same
// data directory would answer the CLI with caches of its own; it is
// refused while the first one answers.
func TestSecondServerCannotTakeTheAdminSocket(t *testing.T) {
	e := newEnv(t, nil)
	path := e.controlSocket()
	if ln, err := api.ListenControl(path); err == nil {
		ln.Close()
		t.Fatal("a second server took the admin socket of a running one")
	}
	if _, err := api.CallControl(ctxT(t), path, api.ControlRequest{Op: "user.list"}); err != nil {
		t.Fatalf("the first server no longer answers: %v", err)
	}
}

// TestCLIRefusesAnAdminSocketOthersCanOpen: commands carry secrets back
// (token secrets, invites), so the CLI does not talk to a socket anyone
// else could have made or could open.
func TestCLIRefusesAnAdminSocketOthersCanOpen(t *testing.T) {
	e := newEnv(t, nil)
	path := e.controlSocket()
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	_, err := api.CallControl(ctxT(t), path, api.ControlRequest{Op: "token.create", Uses: 1})
	if err == nil || errors.Is(err, api.ErrNoServer) {
		t.Fatalf("a 0666 socket: %v, want a refusal", err)
	}
}

// TestStaleAdminSocketIsNoServer: a socket file no one listens on (the
// server died) reads as no server, and the next server replaces it.
func TestStaleAdminSocketIsNoServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), api.ControlSocket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	os.Chmod(path, 0o600)
	if _, err := api.CallControl(ctxT(t), path, api.ControlRequest{Op: "user.list"}); !errors.Is(err, api.ErrNoServer) {
		t.Fatalf("stale socket: %v, want ErrNoServer", err)
	}
	next, err := api.ListenControl(path)
	if err != nil {
		t.Fatalf("the next server could not replace a stale socket: %v", err)
	}
	next.Close()
}

// TestBanThroughTheAdminSocketClosesTheMember: the command runs in the
// server's process, so the community's event reaches the member's open
// socket.
func TestBanThroughTheAdminSocketClosesTheMember(t *testing.T) {
	e := newEnv(t, nil)
	path := e.controlSocket()
	m := e.join(community.RoleMember)
	if _, err := api.CallControl(ctxT(t), path, api.ControlRequest{Op: "member.ban", User: m.ID}); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, m.c); code != api.CloseBanned {
		t.Fatalf("closed with %d, want %d", code, api.CloseBanned)
	}
	if _, err := e.relogin(m.testUser); err == nil {
		t.Fatal("banned member logged in again")
	}
}

// TestAdminSocketErrorsKeepTheirType: a refused command comes back with
// its wire error type and words, and an unknown or malformed one is
// refused as invalid.
func TestAdminSocketErrorsKeepTheirType(t *testing.T) {
	e := newEnv(t, nil)
	path := e.controlSocket()
	owner := e.join(community.RoleMember)
	if err := e.com.OperatorSetRole(context.Background(), owner.ID, community.RoleOwner); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		req  api.ControlRequest
		want string
	}{
		{api.ControlRequest{Op: "member.role", User: "nobody", Role: "admin"}, api.ErrTypeNotFound},
		{api.ControlRequest{Op: "member.role", User: owner.ID, Role: "emperor"}, api.ErrTypeInvalidData},
		{api.ControlRequest{Op: "member.ban", User: owner.ID}, api.ErrTypePermission},
		{api.ControlRequest{Op: "member.kick"}, api.ErrTypeInvalidData},
		{api.ControlRequest{Op: "invite.revoke", ID: "no-such-invite"}, api.ErrTypeNotFound},
		{api.ControlRequest{Op: "user.add", ID: "0190f3a2-7b1c-7e4d-9a2b-3c4d5e6f7a8b", PublicKey: "not a key"}, api.ErrTypeInvalidPublicKey},
		{api.ControlRequest{Op: "user.add", ID: "../../etc"}, api.ErrTypeInvalidData},
		{api.ControlRequest{Op: "user.remove", ID: "nobody"}, api.ErrTypeInvalidUserID},
		{api.ControlRequest{Op: "launch"}, api.ErrTypeInvalidData},
	} {
		_, err := api.CallControl(ctxT(t), path, c.req)
		var ce *api.ControlError
		if !errors.As(err, &ce) || ce.Type != c.want || ce.Detail == "" {
			t.Errorf("%+v: %v, want %s", c.req, err, c.want)
		}
	}
}

// TestAdminSocketPathTooLong: a data directory too deep for a unix socket
// stops serve with words that say so, rather than with EINVAL.
func TestAdminSocketPathTooLong(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := api.ListenControl(filepath.Join(dir, api.ControlSocket))
	if err == nil {
		ln.Close()
		t.Fatal("listened on a socket path longer than sun_path")
	}
	if !strings.Contains(err.Error(), "too long") {
		t.Fatalf("error %q does not say the path is too long", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %d entries behind", len(entries))
	}
}

// unixClient speaks HTTP to the admin socket at path, as a program other
// than the CLI might.
func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

// TestAdminSocketRefusesMalformedCommands: what is not one known command
// gets a 4xx and changes nothing.
func TestAdminSocketRefusesMalformedCommands(t *testing.T) {
	e := newEnv(t, nil)
	hc := unixClient(e.controlSocket())
	for _, c := range []struct {
		method, body string
		want         int
	}{
		{http.MethodGet, "", http.StatusMethodNotAllowed},
		{http.MethodPost, "not json", http.StatusBadRequest},
		{http.MethodPost, `{"op":"user.list","sudo":true}`, http.StatusBadRequest},
		{http.MethodPost, `{"op":"user.list"` + strings.Repeat(" ", 70<<10) + `}`, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(c.method, "http://iotad/", strings.NewReader(c.body))
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s %.40q: %s, want %d", c.method, c.body, res.Status, c.want)
		}
	}
}

// FuzzControlBody: whatever arrives on the admin socket, the server
// answers 200 (a command's reply or error) or 400, and never panics.
func FuzzControlBody(f *testing.F) {
	for _, seed := range []string{
		`{"op":"user.list"}`, `{"op":"member.ban","user":"x"}`, `{"op":"invite.create","uses":-1}`,
		`{"op":"token.create","uses":1,"expires":-5}`, `{"op":"community.addr","addr":"::::"}`, `{}`, `[]`, `null`,
	} {
		f.Add([]byte(seed))
	}
	e := newEnv(f, nil)
	hc := unixClient(e.controlSocket())
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := hc.Post("http://iotad/", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusBadRequest {
			t.Fatalf("%q: %s", body, res.Status)
		}
	})
}
