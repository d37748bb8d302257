package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestUserAndTokenCommands(t *testing.T) {
	data := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "alice.tu")
	out, _, err := runCmd(t, "user", "add", "--data", data, "--out", keyFile, "--name", "alice")
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	info, err := os.Stat(keyFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	raw, _ := os.ReadFile(keyFile)
	fileID, priv, err := icrypto.ParseKeyFile(raw)
	if err != nil || fileID != id {
		t.Fatalf("key file holds %q (%v), user add printed %q", fileID, err, id)
	}
	list, _, err := runCmd(t, "user", "list", "--data", data)
	if err != nil || !strings.Contains(list, id) || !strings.Contains(list, priv.Public().String()) || !strings.Contains(list, "alice") {
		t.Fatalf("user list: %q %v", list, err)
	}
	if _, _, err := runCmd(t, "user", "add", "--data", data, "--out", keyFile); err == nil {
		t.Fatal("user add overwrote a key file")
	}

	// The environment stands in for --data.
	t.Setenv("IOTAD_DATA", data)
	tok, _, err := runCmd(t, "token", "create", "--uses", "2", "--expires", "1h")
	if err != nil || !regexp.MustCompile(`^[A-Za-z0-9_-]{22}\n$`).MatchString(tok) {
		t.Fatalf("token create: %q %v", tok, err)
	}
	toks, _, _ := runCmd(t, "token", "list")
	tokenID := strings.Fields(toks)[0]
	if !strings.Contains(toks, "0/2") || !strings.Contains(toks, "active") {
		t.Fatalf("token list: %q", toks)
	}
	if _, _, err := runCmd(t, "token", "revoke", "--id", tokenID); err != nil {
		t.Fatal(err)
	}
	if toks, _, _ = runCmd(t, "token", "list"); !strings.Contains(toks, "revoked") {
		t.Fatalf("token list after revoke: %q", toks)
	}
	if _, _, err := runCmd(t, "user", "remove", "--id", id); err != nil {
		t.Fatal(err)
	}
	if list, _, _ = runCmd(t, "user", "list"); strings.Contains(list, id) {
		t.Fatal("removed user still listed")
	}
}

func TestBadCommands(t *testing.T) {
	for _, args := range [][]string{
		{"fly"}, {"user"}, {"user", "fly"}, {"token", "create", "--uses", "zero"},
		{"user", "list", "--no-such-flag"}, {"token", "create", "--data", t.TempDir(), "--uses", "0"},
		{"client", "communities", "list", "--key", "/nonexistent"},
		{"serve", "--data", t.TempDir(), "--commit-window", "-1ms"}, {"serve", "--data", t.TempDir(), "--commit-window", "2s"},
	} {
		if _, _, err := runCmd(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, _, err := runCmd(t, "help"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmd(t, "user", "list", "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

// lineWriter hands serve's output to the test line by line.
type lineWriter struct{ lines chan string }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.lines <- l
	}
	return len(p), nil
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeAndClient runs serve in process on a fresh data directory, then
// the client subcommands against it, then shuts it down.
func TestServeAndClient(t *testing.T) {
	data := t.TempDir()
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := lineWriter{lines: make(chan string, 100)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--addr", addr, "--media-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "warn"}, out, io.Discard)
	}()
	for listening := false; !listening; {
		select {
		case l := <-out.lines:
			if strings.Contains(l, "tensamin://") {
				t.Fatalf("first start printed an invite to a writer that is not a terminal: %s", l)
			}
			listening = strings.HasPrefix(l, "iotad is listening")
		case err := <-done:
			t.Fatalf("serve ended: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not start")
		}
	}
	invites := firstInvites(t, data)
	owner := filepath.Join(data, "owner.tu")
	server := "ws://" + addr
	id, _, err := runCmd(t, "client", "communities", "add", "--key", owner, "--server", server, "--address", invites[1], "--title", "Home")
	if err != nil {
		t.Fatal(err)
	}
	list, _, err := runCmd(t, "client", "communities", "list", "--key", owner, "--server", server)
	if err != nil || !strings.Contains(list, invites[1]) || !strings.Contains(list, "Home") {
		t.Fatalf("list: %q %v", list, err)
	}
	if _, _, err := runCmd(t, "client", "communities", "remove", "--key", owner, "--server", server, "--entry", strings.TrimSpace(id)); err != nil {
		t.Fatal(err)
	}
	if list, _, _ = runCmd(t, "client", "communities", "list", "--key", owner, "--server", server); strings.TrimSpace(list) != "" {
		t.Fatalf("list after remove: %q", list)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
}

// TestKill9KeepsAcknowledgedWrites: what the server acknowledged is there
// after SIGKILL right after the reply.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "iotad")
	if out, err := exec.Command(filepath.Join(goroot(), "bin", "go"), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := t.TempDir()
	addr := freePort(t)
	start := func() (*exec.Cmd, []string) {
		cmd := exec.Command(bin, "serve", "--data", data, "--addr", addr, "--media-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "warn")
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var lines []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.HasPrefix(sc.Text(), "iotad is listening") {
				break
			}
		}
		go io.Copy(io.Discard, stdout)
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no /healthz")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return cmd, lines
	}
	cmd, _ := start()
	invite := firstInvites(t, data)[1]
	raw, _ := os.ReadFile(filepath.Join(data, "owner.tu"))
	userID, priv, _ := icrypto.ParseKeyFile(raw)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr+"/ws/iota", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, priv, map[string]any{"user_id": userID}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 5 {
		id, _, err := c.AddCommunity(ctx, priv, client.Community{Address: fmt.Sprintf("tensamin://x%d", i), Title: "T", Position: "0"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// A member's message, acknowledged, then the kill.
	m, err := client.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, mpriv, _ := icrypto.GenerateKey(randReader)
	if _, err := m.LoginCommunity(ctx, "friend", mpriv, invite, nil); err != nil {
		t.Fatal(err)
	}
	sent, err := m.Function(ctx, "text", "General", "general", "send_message", map[string]string{"message": "survives"})
	if err != nil {
		t.Fatal(err)
	}
	// A reply, a reaction and a pin of it, acknowledged too.
	firstID := between(string(sent.Data), `"message_id":"`, `"`)
	for _, f := range []struct{ fn, payload string }{
		{"send_message", `{"message":"a reply","reply_to":"` + firstID + `"}`},
		{"add_reaction", `{"message_id":"` + firstID + `","emoji":"👍"}`},
	} {
		if _, err := m.Function(ctx, "text", "General", "general", f.fn, json.RawMessage(f.payload)); err != nil {
			t.Fatal(err)
		}
	}
	o, err := client.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.LoginCommunity(ctx, userID, priv, firstInvites(t, data)[0], nil); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Function(ctx, "text", "General", "general", "pin_message", map[string]string{"message_id": firstID}); err != nil {
		t.Fatal(err)
	}
	// A read marker and a timeout, acknowledged (PROTOCOL §9 "Mentions
	// and unread", "Slow mode and timeouts").
	other, err := client.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, opriv, _ := icrypto.GenerateKey(randReader)
	if _, err := other.LoginCommunity(ctx, "other", opriv, invite, nil); err != nil {
		t.Fatal(err)
	}
	sent, err = other.Function(ctx, "text", "General", "general", "send_message", map[string]string{"message": "read"})
	if err != nil {
		t.Fatal(err)
	}
	var sentID struct {
		Payload struct {
			MessageID string `json:"message_id"`
		} `json:"payload"`
	}
	json.Unmarshal(sent.Data, &sentID)
	if _, err := m.Function(ctx, "text", "General", "general", "mark_read", map[string]string{"message_id": sentID.Payload.MessageID}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Function(ctx, "community", "", "", "timeout", map[string]any{"user_id": "other", "duration": 3600}); err != nil {
		t.Fatal(err)
	}
	// Slow mode and a private channel, acknowledged (§9 "Slow mode and
	// timeouts", "Private channels").
	for _, f := range []struct {
		fn      string
		payload any
	}{
		{"set_slow_mode", map[string]any{"path": "General", "name": "general", "seconds": 60}},
		{"create_channel", map[string]any{"path": "", "name": "secret", "codec": "text"}},
		{"set_channel_permissions", map[string]any{"path": "", "name": "secret", "overrides": map[string]any{"member": map[string]bool{"view": false}}}},
	} {
		if _, err := o.Function(ctx, "community", "", "", f.fn, f.payload); err != nil {
			t.Fatalf("%s: %v", f.fn, err)
		}
	}
	// An acknowledged upload, a message with it attached and a profile.
	fileID := uploadForKill9(ctx, t, m, addr, []byte("kept bytes"))
	if _, err := m.Function(ctx, "text", "General", "general", "send_message", map[string]any{"attachments": []string{fileID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Function(ctx, "community", "", "", "set_profile", map[string]any{"display_name": "Kept Name"}); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()

	cmd, _ = start()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c, err = client.Dial(ctx, "ws://"+addr+"/ws/iota", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, priv, map[string]any{"user_id": userID}); err != nil {
		t.Fatal(err)
	}
	list, version, err := c.Communities(ctx, priv)
	if err != nil || len(list) != 5 || version != 5 || list[4].EntryID != ids[4] {
		t.Fatalf("after kill -9: %d entries, version %d, %v", len(list), version, err)
	}
	m, err = client.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	login, err := m.LoginCommunity(ctx, "friend", mpriv, "", nil)
	if err != nil {
		t.Fatalf("the member did not survive: %v", err)
	}
	if !strings.Contains(string(login.Interactables), `"general":{"codec":"text","data":{"slow_mode":60,"unread":0,"mentions":0}}`) {
		t.Fatalf("the read marker or slow mode did not survive: %s", login.Interactables)
	}
	if strings.Contains(string(login.Interactables), "secret") {
		t.Fatalf("the private channel's override did not survive: %s", login.Interactables)
	}
	// Indexed for search after the commit: what was pending at the kill
	// is found after the restart.
	if r, err := m.Function(ctx, "community", "", "", "search", map[string]string{"query": "survives"}); err != nil ||
		!strings.Contains(string(r.Data), `"message":"survives"`) {
		t.Fatalf("search after kill -9: %s %v", r.Data, err)
	}
	other, err = client.Dial(ctx, "ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.LoginCommunity(ctx, "other", opriv, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Function(ctx, "text", "General", "general", "send_message", map[string]string{"message": "x"}); err == nil ||
		!strings.Contains(err.Error(), "timed out") {
		t.Fatalf("the timeout did not survive: %v", err)
	}
	r, err := m.Function(ctx, "text", "General", "general", "get_messages", map[string]int{"amount": 10})
	if err != nil || !strings.Contains(string(r.Data), "survives") || !strings.Contains(string(r.Data), fileID) {
		t.Fatalf("the message did not survive: %s %v", r.Data, err)
	}
	for _, want := range []string{`"reply_to":"` + firstID + `"`, `"emoji":"👍","count":1`} {
		if !strings.Contains(string(r.Data), want) {
			t.Fatalf("%s did not survive: %s", want, r.Data)
		}
	}
	resp, err := http.Get("http://" + addr + "/files/" + fileID + "/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "kept bytes" {
		t.Fatalf("the upload did not survive: %d %q", resp.StatusCode, body)
	}
	r, err = m.Function(ctx, "community", "", "", "list_members", nil)
	if err != nil || !strings.Contains(string(r.Data), "Kept Name") {
		t.Fatalf("the profile did not survive: %s %v", r.Data, err)
	}
	if r, err = m.Function(ctx, "text", "General", "general", "list_pins", map[string]string{}); err != nil || !strings.Contains(string(r.Data), `"pinned_by"`) {
		t.Fatalf("the pin did not survive: %s %v", r.Data, err)
	}
}

// uploadForKill9 asks for a ticket and PUTs body with it.
func uploadForKill9(ctx context.Context, t *testing.T, m *client.Client, addr string, body []byte) string {
	t.Helper()
	r, err := m.Function(ctx, "text", "General", "general", "upload", map[string]any{"name": "f.txt", "size": len(body)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Result()
	if err != nil {
		t.Fatal(err)
	}
	var tk struct {
		URL string `json:"url"`
	}
	json.Unmarshal(res.Payload, &tk)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+addr+tk.URL, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var up struct {
		FileID string `json:"file_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil || resp.StatusCode != 200 {
		t.Fatalf("upload: %d %v", resp.StatusCode, err)
	}
	return up.FileID

}

// between is the text of s after the first before and up to the next after.
func between(s, before, after string) string {
	_, rest, _ := strings.Cut(s, before)
	v, _, _ := strings.Cut(rest, after)
	return v
}

func goroot() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err == nil {
		return strings.TrimSpace(string(out))
	}
	return os.Getenv("GOROOT")
}

// TestSeveralCommunities: every community after the first gets a port of
// its own (the seed's address has no path), the CLI prints invites that
// name it, and each port serves its own community.
func TestSeveralCommunities(t *testing.T) {
	data := t.TempDir()
	mainAddr, gamesAddr, laterAddr := freePort(t), freePort(t), freePort(t)
	create := func(args ...string) string {
		t.Helper()
		out, _, err := runCmd(t, append([]string{"community", "create", "--data", data}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	homeID := create("--name", "Home")
	gamesID := create("--name", "Games", "--addr", gamesAddr)
	laterID := create("--name", "Later")
	list, _, _ := runCmd(t, "community", "list", "--data", data)
	for _, want := range []string{homeID + "\t", "\tmain\tHome", gamesAddr + "\tGames", "\t:1985\tLater"} {
		if !strings.Contains(list, want) {
			t.Fatalf("community list lacks %q:\n%s", want, list)
		}
	}
	for _, bad := range [][]string{
		{"--community", homeID, "--addr", laterAddr},   // the first shares the main listener
		{"--community", laterID, "--addr", ""},         // the others may not
		{"--community", laterID, "--addr", gamesAddr},  // taken
		{"--community", laterID, "--addr", "nonsense"}, // not host:port
		{"--community", "no-such-id", "--addr", laterAddr},
	} {
		if _, _, err := runCmd(t, append([]string{"community", "addr", "--data", data}, bad...)...); err == nil {
			t.Errorf("community addr %v: no error", bad)
		}
	}
	if _, _, err := runCmd(t, "community", "addr", "--data", data, "--community", laterID, "--addr", laterAddr); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	out := lineWriter{lines: make(chan string, 100)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--addr", mainAddr, "--media-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "warn"}, out, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	var announced []string
	for len(announced) < 2 {
		select {
		case l := <-out.lines:
			if strings.HasPrefix(l, "community ") {
				announced = append(announced, l)
			}
		case err := <-done:
			t.Fatalf("serve ended: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not start")
		}
	}

	inviteFor := func(id string) string {
		t.Helper()
		inv, _, err := runCmd(t, "invite", "create", "--data", data, "--community", id)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(inv)
	}
	gamesInvite := inviteFor(gamesID)
	if !strings.HasPrefix(gamesInvite, "tensamin://"+gamesAddr+"/") {
		t.Fatalf("the Games invite names the wrong address: %s (serves on %s)", gamesInvite, gamesAddr)
	}
	if homeInvite := inviteFor(homeID); !strings.HasPrefix(homeInvite, "tensamin://"+mainAddr+"/") {
		t.Fatalf("the Home invite names the wrong address: %s (serves on %s)", homeInvite, mainAddr)
	}
	gamesKey := ""
	for _, l := range strings.Split(list, "\n") {
		if f := strings.Split(l, "\t"); len(f) == 4 && f[0] == gamesID {
			gamesKey = f[1]
		}
	}

	_, priv, _ := icrypto.GenerateKey(rand.Reader)
	join := func(addr, invite string, header http.Header) (client.Login, error) {
		c, err := client.Dial(ctx, "ws://"+addr+"/", &client.Options{Header: header})
		if err != nil {
			return client.Login{}, err
		}
		defer c.Close()
		return c.LoginCommunity(ctx, "a-player", priv, invite, nil)
	}
	if _, err := join(mainAddr, gamesInvite, nil); err == nil {
		t.Fatal("the main port let a Games invite into Home")
	}
	// The page served on the main port may open the Games socket.
	l, err := join(gamesAddr, gamesInvite, http.Header{"Origin": {"http://" + mainAddr}})
	if err != nil {
		t.Fatal(err)
	}
	if l.CommunityPublicKey != gamesKey || l.Role != "member" {
		t.Fatalf("joined %s as %s, want Games (%s) as member", l.CommunityPublicKey, l.Role, gamesKey)
	}
	if _, err := join(gamesAddr, "", http.Header{"Origin": {"http://elsewhere.example"}}); err == nil {
		t.Fatal("a foreign origin opened a community socket")
	}
	// The same host on a port that is not iotad's is another site.
	if _, err := join(gamesAddr, "", http.Header{"Origin": {"http://" + freePort(t)}}); err == nil {
		t.Fatal("a page from another port of the host opened a community socket")
	}
	for _, addr := range []string{gamesAddr, laterAddr} {
		res, err := http.Get("http://" + addr + "/")
		if err != nil || res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("the page on %s: %v %v", addr, res, err)
		}
		res.Body.Close()
	}
}

// TestServeRefusesATakenCommunityPort: a community whose port is taken
// stops serve with an error that names it, and nothing stays bound.
func TestServeRefusesATakenCommunityPort(t *testing.T) {
	data := t.TempDir()
	mainAddr := freePort(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, args := range [][]string{{"--name", "Home"}, {"--name", "Games", "--addr", taken.Addr().String()}} {
		if _, _, err := runCmd(t, append([]string{"community", "create", "--data", data}, args...)...); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = runCmd(t, "serve", "--data", data, "--addr", mainAddr, "--media-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "error")
	if err == nil || !strings.Contains(err.Error(), `"Games"`) {
		t.Fatalf("serve with a taken community port: %v", err)
	}
	ln, err := net.Listen("tcp", mainAddr)
	if err != nil {
		t.Fatalf("the main address stayed bound: %v", err)
	}
	ln.Close()
}

// firstInvites reads the invites of the first start from the file they go
// to when stdout is not a terminal: the owner's, then the friends'.
func firstInvites(t *testing.T, data string) []string {
	t.Helper()
	path := filepath.Join(data, firstInvitesFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, info.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	var invites []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "tensamin://") {
			invites = append(invites, l)
		}
	}
	if len(invites) != 2 {
		t.Fatalf("%s holds %d invites, want 2:\n%s", path, len(invites), raw)
	}
	return invites
}

// TestFirstInvitesAtATerminal: a person at a terminal sees the invites;
// nothing is written to the data directory.
func TestFirstInvitesAtATerminal(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := showFirstInvites(&out, true, dir, "tensamin://x\n"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "tensamin://x\n" {
		t.Fatalf("printed %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, firstInvitesFile)); !os.IsNotExist(err) {
		t.Fatalf("wrote the invites to a file too: %v", err)
	}
	out.Reset()
	if err := showFirstInvites(&out, false, dir, "tensamin://x\n"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "tensamin://") || !strings.Contains(out.String(), filepath.Join(dir, firstInvitesFile)) {
		t.Fatalf("printed %q, want the file's path only", out.String())
	}
}

// TestIsTerminal: a buffer, a file and /dev/null are not terminals.
func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for name, w := range map[string]io.Writer{"buffer": &bytes.Buffer{}, "file": f, "/dev/null": null} {
		if isTerminal(w) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
}

// startServeWith runs serve in process with args (after defaults that keep
// it on loopback and off the admin port; later flags win) until the test
// ends, and waits for its "listening" line.
func startServeWith(t *testing.T, stderr io.Writer, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := lineWriter{lines: make(chan string, 100)}
	done := make(chan error, 1)
	base := []string{"serve", "--media-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "info"}
	go func() { done <- run(ctx, append(base, args...), out, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("shutdown: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	for {
		select {
		case l := <-out.lines:
			if strings.HasPrefix(l, "iotad is listening") {
				go func() {
					for range out.lines {
					}
				}()
				return
			}
		case err := <-done:
			t.Fatalf("serve ended: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not start")
		}
	}
}
