package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

// startServe runs iotad serve on data until the test ends and returns
// its address once it listens.
func startServe(t *testing.T, data string) string {
	t.Helper()
	addr := freePort(t)
	startServeWith(t, io.Discard, "--data", data, "--addr", addr, "--log-level", "warn")
	return addr
}

// joinAs logs a new member into the community served on addr.
// waitBanned waits for c's socket to close with the ban code; stillOpen is
// the failure when it does not within 10 s.
func waitBanned(t *testing.T, c *client.Client, stillOpen string) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal(stillOpen)
	}
	if code := c.CloseCode(); code != api.CloseBanned {
		t.Fatalf("closed with %d, want %d", code, api.CloseBanned)
	}
}

func joinAs(t *testing.T, addr, userID, invite string) (*client.Client, icrypto.PrivateKey) {
	t.Helper()
	_, priv, err := icrypto.GenerateKey(randReader)
	if err != nil {
		t.Fatal(err)
	}
	return loginAs(t, addr, userID, priv, invite), priv
}

func loginAs(t *testing.T, addr, userID string, priv icrypto.PrivateKey, invite string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.LoginCommunity(ctx, userID, priv, invite, nil); err != nil {
		t.Fatalf("%s: %v", userID, err)
	}
	return c
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := runCmd(t, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return strings.TrimSpace(out)
}

// TestMemberBannedFromTheCLICannotStayConnected: the operator bans a
// member while the server runs; the ban reaches the server, which closes
// the member's open socket with 4003 at once, instead of only writing a
// row the server learns of at the member's next login.
func TestMemberBannedFromTheCLICannotStayConnected(t *testing.T) {
	data := t.TempDir()
	addr := startServe(t, data)
	info, err := os.Lstat(filepath.Join(data, api.ControlSocket))
	if err != nil || info.Mode().Type() != os.ModeSocket || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v %v, want a socket of mode 0600", info, err)
	}
	mallory, priv := joinAs(t, addr, "mallory", firstInvites(t, data)[1])

	mustRun(t, "member", "ban", "--data", data, "--user", "mallory")
	waitBanned(t, mallory, "the banned member's socket is still open")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	again, err := client.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, err := again.LoginCommunity(ctx, "mallory", priv, "", nil); err == nil {
		t.Fatal("the banned member logged in again")
	}
}

// TestAdminDemotedFromTheCLIIsToldAndCannotKick: an admin demoted by the
// operator while logged in. The server must learn of it at once: every
// open socket, the admin's own included, is told role_changed (so that
// clients take the admin controls away), and the admin's kick fails.
func TestAdminDemotedFromTheCLIIsToldAndCannotKick(t *testing.T) {
	data := t.TempDir()
	addr := startServe(t, data)
	adminInvite := mustRun(t, "invite", "create", "--data", data, "--role", "admin")
	admin, _ := joinAs(t, addr, "eve", adminInvite)
	bob, _ := joinAs(t, addr, "bob", firstInvites(t, data)[1])

	mustRun(t, "member", "role", "--data", data, "--user", "eve", "--role", "member")
	for name, c := range map[string]*client.Client{"eve": admin, "bob": bob} {
		waitRoleChanged(t, name, c, "eve", "member")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.Function(ctx, "community", "", "", "kick", map[string]string{"user_id": "bob"}); err == nil {
		t.Fatal("the demoted admin kicked a member")
	}
	select {
	case <-bob.Done():
		t.Fatalf("bob was disconnected (%d)", bob.CloseCode())
	default:
	}
	list := mustRun(t, "member", "list", "--data", data)
	if !strings.Contains(list, "eve\tmember") || !strings.Contains(list, "bob\tmember") {
		t.Fatalf("member list:\n%s", list)
	}
}

// waitRoleChanged waits for the role_changed update of user on c.
func waitRoleChanged(t *testing.T, name string, c *client.Client, user, role string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-c.Pushes():
			if !ok {
				t.Fatalf("%s: socket closed while waiting for role_changed", name)
			}
			r, err := m.Result()
			if err != nil || r.Result != api.ResultRoleChanged {
				continue
			}
			var p struct {
				UserID string `json:"user_id"`
				Role   string `json:"role"`
			}
			if err := json.Unmarshal(r.Payload, &p); err == nil && p.UserID == user && p.Role == role {
				return
			}
		case <-deadline:
			t.Fatalf("%s was not told that %s is now %s", name, user, role)
		}
	}
}

// TestCLIWithoutServerWritesTheDatabase: with no server running (and no
// socket file left by the one that stopped), the member commands open the
// database, and the next server enforces what they wrote.
func TestCLIWithoutServerWritesTheDatabase(t *testing.T) {
	data := t.TempDir()
	var malloryKey, eveKey icrypto.PrivateKey
	t.Run("first server", func(t *testing.T) {
		addr := startServe(t, data)
		invites := firstInvites(t, data)
		_, malloryKey = joinAs(t, addr, "mallory", invites[1])
		adminInvite := mustRun(t, "invite", "create", "--data", data, "--role", "admin")
		_, eveKey = joinAs(t, addr, "eve", adminInvite)
	})
	if _, err := os.Lstat(filepath.Join(data, api.ControlSocket)); !os.IsNotExist(err) {
		t.Fatalf("the admin socket outlived its server: %v", err)
	}
	mustRun(t, "member", "ban", "--data", data, "--user", "mallory")
	mustRun(t, "member", "role", "--data", data, "--user", "eve", "--role", "moderator")
	list := mustRun(t, "member", "list", "--data", data)
	if !strings.Contains(list, "mallory\tmember\tbanned=true") || !strings.Contains(list, "eve\tmoderator") {
		t.Fatalf("member list:\n%s", list)
	}

	addr := startServe(t, data)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.LoginCommunity(ctx, "mallory", malloryKey, "", nil); err == nil {
		t.Fatal("a member banned with no server running logged in")
	}
	eve := loginAs(t, addr, "eve", eveKey, "")
	// A moderator may kick but not ban.
	if _, err := eve.Function(ctx, "community", "", "", "unban", map[string]string{"user_id": "mallory"}); err == nil {
		t.Fatal("the admin demoted with no server running could still unban")
	}
}

// TestStaleAdminSocketFallsBackToTheDatabase: a server that died left
// its socket file; the CLI must not take it for a running server nor
// fail, and the next server replaces it.
func TestStaleAdminSocketFallsBackToTheDatabase(t *testing.T) {
	data := t.TempDir()
	path := filepath.Join(data, api.ControlSocket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	id := mustRun(t, "community", "create", "--data", data, "--name", "Home")
	if list := mustRun(t, "community", "list", "--data", data); !strings.Contains(list, id) {
		t.Fatalf("community list: %q", list)
	}
	startServe(t, data)
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the next server did not replace the stale socket: %v", err)
	}
	conn.Close()
	mustRun(t, "invite", "create", "--data", data)
	if out := mustRun(t, "invite", "list", "--data", data); !strings.Contains(out, "\t0/1\tmember\t") {
		t.Fatalf("invite list through the new server's socket: %q", out)
	}
}

// TestRemovedUserLosesOpenIotaSocket: `iotad user remove` while the
// server runs closes the removed account's open Iota sockets.
func TestRemovedUserLosesOpenIotaSocket(t *testing.T) {
	data := t.TempDir()
	addr := startServe(t, data)
	keyFile := filepath.Join(t.TempDir(), "carol.tu")
	id := mustRun(t, "user", "add", "--data", data, "--name", "carol", "--out", keyFile)
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := icrypto.ParseKeyFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr+"/ws/iota", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Login(ctx, priv, map[string]any{"user_id": id}); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "user", "remove", "--data", data, "--id", id)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the removed user's Iota socket is still open")
	}
	if list := mustRun(t, "user", "list", "--data", data); strings.Contains(list, id) {
		t.Fatalf("removed user still listed:\n%s", list)
	}
}

// TestCLIErrorsCrossTheAdminSocket: a refused command run by the server
// comes back as the same clear error as when the CLI runs it itself.
func TestCLIErrorsCrossTheAdminSocket(t *testing.T) {
	data := t.TempDir()
	startServe(t, data)
	for _, args := range [][]string{
		{"member", "role", "--user", "nobody", "--role", "admin"},
		{"member", "role", "--user", "nobody", "--role", "emperor"},
		{"member", "ban", "--user", ""},
		{"invite", "revoke", "--id", "no-such-invite"},
		{"invite", "create", "--community", "no-such-community"},
		{"token", "create", "--uses", "0"},
	} {
		_, _, err := runCmd(t, append(args, "--data", data)...)
		var ce *api.ControlError
		if err == nil || !errors.As(err, &ce) || ce.Type == api.ErrTypeInternal || ce.Detail == "" {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestInviteCreateTLSBehindAProxy: iotad behind a proxy that ends TLS
// serves plain http, so its invites say tls=1 only when asked with --tls;
// a client then dials wss://.
func TestInviteCreateTLSBehindAProxy(t *testing.T) {
	data := t.TempDir()
	if _, _, err := runCmd(t, "community", "create", "--data", data, "--name", "Home"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		tls  bool
	}{{nil, false}, {[]string{"--tls"}, true}} {
		out, _, err := runCmd(t, append([]string{"invite", "create", "--data", data}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		a, err := client.ParseAddress(strings.TrimSpace(out))
		if err != nil || a.TLS != tc.tls {
			t.Fatalf("invite create %v: %q → %+v %v", tc.args, out, a, err)
		}
	}
}
