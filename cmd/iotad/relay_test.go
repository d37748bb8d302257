package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db"
)

// TestCLIRefusesAFakeIotaRelayingACommunity: `iotad client communities
// list` is pointed at a fake Iota, which relays the challenge of a
// community the user belongs to (so that it could log in there as them).
// With the Iota key pinned in the key file, or on first use in
// known_iotas, the CLI refuses before answering.
func TestCLIRefusesAFakeIotaRelayingACommunity(t *testing.T) {
	data := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "alice.tu")
	if _, _, err := runCmd(t, "user", "add", "--data", data, "--name", "alice", "--out", keyFile); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(keyFile)
	kf, err := icrypto.ReadKeyFile(raw)
	if err != nil || kf.IotaKey == nil {
		t.Fatalf("the key file names no Iota key: %v\n%s", err, raw)
	}
	realURL, com := serveInProcess(t, data)
	// Alice joins community A with her Iota key, as the page would.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	secret, _, err := com.CreateOperatorInvite(ctx, community.InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, realURL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	pin := com.Public
	if _, err := c.LoginCommunity(ctx, kf.UserID, kf.Private, secret, &pin); err != nil {
		t.Fatal(err)
	}
	c.Close()

	fake := startCommunityRelay(t, realURL+"/")
	// Pinned by the key file's iota_key line.
	_, stderr, err := runCmd(t, "client", "communities", "list", "--key", keyFile, "--server", fake.url)
	if err == nil || !strings.Contains(err.Error(), "login refused") || fake.answered.Load() {
		t.Fatalf("pinned in the key file: err %v, answered %v, stderr %q", err, fake.answered.Load(), stderr)
	}
	// Pinned on first use: a key file without the line logs in to the
	// real Iota once, which pins its key in known_iotas. The pin is per
	// URL, so the test then files it under the fake's URL too, as if the
	// fake had taken over the real one's address (DNS, a hostile network).
	bare := filepath.Join(t.TempDir(), "bare.tu")
	if err := os.WriteFile(bare, icrypto.FormatKeyFile(kf.UserID, kf.Private), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runCmd(t, "client", "communities", "list", "--key", bare, "--server", realURL); err != nil || !strings.Contains(stderr, "pinned") {
		t.Fatalf("first honest login: %v %q", err, stderr)
	}
	known, err := readKnownIotas(filepath.Join(filepath.Dir(bare), knownIotasFile))
	if err != nil || known[realURL+"/ws/iota"] != *kf.IotaKey {
		t.Fatalf("known_iotas after the first login: %v %v", known, err)
	}
	known[fake.url+"/ws/iota"] = *kf.IotaKey
	if err := writeKnownIotas(filepath.Join(filepath.Dir(bare), knownIotasFile), known); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmd(t, "client", "communities", "list", "--key", bare, "--server", fake.url); err == nil || fake.answered.Load() {
		t.Fatalf("pinned in known_iotas: err %v, answered %v", err, fake.answered.Load())
	}
	// Even unpinned, a community's challenge does not open as an Iota's:
	// the role is bound too.
	fresh := filepath.Join(t.TempDir(), "fresh.tu")
	os.WriteFile(fresh, icrypto.FormatKeyFile(kf.UserID, kf.Private), 0o600)
	if _, _, err := runCmd(t, "client", "communities", "list", "--key", fresh, "--server", fake.url); err == nil || fake.answered.Load() {
		t.Fatalf("unpinned: err %v, answered %v", err, fake.answered.Load())
	}
	if fake.accepted.Load() {
		t.Fatal("community A accepted the fake Iota as alice")
	}
}

// serveInProcess serves the data directory as `iotad serve` would and
// returns its ws:// URL and first community.
func serveInProcess(t *testing.T, data string) (string, *community.Community) {
	t.Helper()
	ctx := context.Background()
	a, err := openApp(ctx, dataDir{dir: data}, db.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	com, err := a.communities.Create(ctx, "A")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)),
		api.Services{Iota: a.iota, Communities: a.communities, IotaKey: a.iotaKey})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	return "ws://" + ln.Addr().String(), com
}

type communityRelay struct {
	url                string
	answered, accepted atomic.Bool
}

// startCommunityRelay is a fake Iota: it replays the visitor's
// identification to upstream and passes the challenge back as its own.
func startCommunityRelay(t *testing.T, upstream string) *communityRelay {
	r := &communityRelay{}
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		victim, err := up.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		defer victim.Close()
		real, _, err := websocket.DefaultDialer.Dial(upstream, nil)
		if err != nil {
			return
		}
		defer real.Close()
		victim.SetReadDeadline(time.Now().Add(5 * time.Second))
		real.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			var f map[string]json.RawMessage
			if victim.ReadJSON(&f) != nil {
				return
			}
			if string(f["type"]) == `"challenge_response"` {
				r.answered.Store(true)
			}
			real.WriteJSON(f)
			if real.ReadJSON(&f) != nil {
				return
			}
			if string(f["type"]) == `"identification_response"` {
				r.accepted.Store(true)
			}
			victim.WriteJSON(f)
		}
	}))
	t.Cleanup(srv.Close)
	r.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return r
}

// TestKnownIotasFile: what the CLI pins reads back; a line that is not
// "<url> <key>", or names a low-order key, is an error naming the file and
// line, never a silent unpinning.
func TestKnownIotasFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, knownIotasFile)
	pub, _, _ := icrypto.GenerateKey(randReader)
	want := map[string]icrypto.PublicKey{"ws://a:1984/ws/iota": pub, "wss://b/ws/iota": pub}
	if err := writeKnownIotas(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readKnownIotas(path)
	if err != nil || len(got) != 2 || got["wss://b/ws/iota"] != pub {
		t.Fatalf("read back %v, %v", got, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	if got, err := readKnownIotas(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Fatalf("a missing file: %v, %v", got, err)
	}
	for _, bad := range []string{"ws://a/ws/iota\n", "ws://a/ws/iota AAAA\n", "ws://a/ws/iota " + (icrypto.PublicKey{}).String() + "\n"} {
		os.WriteFile(path, []byte("# ok\n"+bad), 0o600)
		if _, err := readKnownIotas(path); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: %v, want an error naming line 2", bad, err)
		}
	}
}
