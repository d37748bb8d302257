package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/community/notes"
	"github.com/iotad/iotad/community/voice"
	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db"
	"github.com/iotad/iotad/internal/db/dbtest"
	iotasvc "github.com/iotad/iotad/iota"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// fakeClock is moved by tests instead of sleeping.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// testEnv is a real iotad server on a random loopback port.
type testEnv struct {
	t     testing.TB
	url   string // ws://127.0.0.1:port
	http  string // http://127.0.0.1:port
	admin string // http://127.0.0.1:port of the admin listener (/metrics)
	store *iotasvc.Store
	db    *db.DB
	dir   string
	// target is the database (db.Open's): the SQLite file in dir, or
	// with IOTAD_TEST_DB=postgres a fresh PostgreSQL schema.
	target string
	logs   *syncBuffer
	clock  *fakeClock
	// communities holds com, the community served at "/".
	communities *community.Service
	com         *community.Community
	sfu         *voice.SFU
	// shutdown stops the server as SIGTERM would (also run at cleanup);
	// stop then closes the stores too, in iotad serve's order.
	shutdown func()
	srv      *api.Server
	stop     func()
	// side, with newEnvSide only, is a second community served on a port
	// of its own, at sideHTTP (http://127.0.0.1:port).
	side     *community.Community
	sideHTTP string
}

// newEnv starts a server; tune adjusts its config, media adjusts the SFU's.
func newEnv(t testing.TB, tune func(*api.Config), media ...func(*voice.Config)) *testEnv {
	t.Helper()
	return startEnv(t, tune, false, media...)
}

// newEnvSide is newEnv plus a second community, with the default
// channels, on a listener of its own.
func newEnvSide(t testing.TB) *testEnv {
	t.Helper()
	return startEnv(t, nil, true)
}

func startEnv(t testing.TB, tune func(*api.Config), side bool, media ...func(*voice.Config)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	target := filepath.Join(dir, "iotad.db")
	if b := dbtest.FromEnv(); b.Name != dbtest.SQLite.Name {
		target = b.New(t)
	}
	d, err := db.Open(ctx, target, db.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	store, err := iotasvc.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	communities, err := community.Open(ctx, d, community.Options{KeyDir: dir, Now: clock.Now, Codecs: testCodecs()})
	if err != nil {
		t.Fatal(err)
	}
	com, err := communities.Create(ctx, "Test")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := api.DefaultConfig()
	cfg.Clock = clock.Now
	// Tests send faster than a person; TestBurstIsRateLimited restores the
	// protocol's limits.
	cfg.LoginRate, cfg.LoginBurst = 1e6, 1e6
	cfg.Socket.RequestRate, cfg.Socket.RequestBurst = 1e6, 1e6
	cfg.UserRequestRate, cfg.UserRequestBurst = 1e6, 1e6
	// Every test socket comes from 127.0.0.1, and benchmarks open a
	// thousand; the tests of the caps set them.
	cfg.MaxConnectionsPerAddr, cfg.MaxUnauthenticatedPerAddr, cfg.MaxConnectionsPerUser = 0, 0, 0
	if tune != nil {
		tune(&cfg)
	}
	vcfg := voice.Config{UDPAddr: "127.0.0.1:0", IncludeLoopback: true, Log: logger}
	for _, m := range media {
		m(&vcfg)
	}
	sfu, err := voice.New(vcfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(cfg, logger, api.Services{Iota: store, Communities: communities, SFU: sfu})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var own []api.CommunityListener
	var sideCom *community.Community
	sideHTTP := ""
	if side {
		if sideCom, err = communities.Create(ctx, "Side"); err == nil {
			err = sideCom.CreateDefaultChannels(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		sideLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		own = append(own, api.CommunityListener{Community: sideCom, Listener: sideLn, PublicAddr: sideLn.Addr().String()})
		sideHTTP = "http://" + sideLn.Addr().String()
	}
	sctx, cancel := context.WithCancel(ctx)
	done, adminDone := make(chan error, 1), make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln, own...) }()
	go func() { adminDone <- srv.ServeAdmin(sctx, adminLn) }()
	var once, stopOnce sync.Once
	shutdown := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			if err := <-adminDone; err != nil {
				t.Errorf("serve admin: %v", err)
			}
		})
	}
	stop := func() {
		stopOnce.Do(func() {
			shutdown()
			sfu.Close()
			communities.Close()
			d.Close()
		})
	}
	t.Cleanup(stop)
	addr := ln.Addr().String()
	return &testEnv{t: t, url: "ws://" + addr, http: "http://" + addr, admin: "http://" + adminLn.Addr().String(),
		store: store, db: d, dir: dir, target: target, logs: logs, clock: clock,
		communities: communities, com: com, sfu: sfu, shutdown: shutdown, stop: stop, srv: srv, side: sideCom, sideHTTP: sideHTTP}
}

type testUser struct {
	ID   string
	Priv icrypto.PrivateKey
	Pub  icrypto.PublicKey
}

func (e *testEnv) newUser() testUser {
	e.t.Helper()
	pub, priv, err := icrypto.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.store.CreateUser(context.Background(), "test", pub)
	if err != nil {
		e.t.Fatal(err)
	}
	return testUser{ID: u.ID, Priv: priv, Pub: pub}
}

func (e *testEnv) dial(path string) *client.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// iota returns a socket logged in to the Iota as u.
func (e *testEnv) iota(u testUser) *client.Client {
	e.t.Helper()
	c := e.dial("/ws/iota")
	if _, err := c.Login(ctxT(e.t), u.Priv, map[string]any{"user_id": u.ID}); err != nil {
		e.t.Fatalf("login: %v", err)
	}
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next waits for the next pushed message.
func next(t testing.TB, c *client.Client) client.Message {
	t.Helper()
	select {
	case m, ok := <-c.Pushes():
		if !ok {
			t.Fatalf("connection closed while waiting for a message: %v", c.Err())
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
	}
	return client.Message{}
}

// waitClosed waits for the server to close c and returns the close code.
func waitClosed(t testing.TB, c *client.Client) int {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-c.Pushes():
			if !ok {
				<-c.Done()
				return c.CloseCode()
			}
		case <-deadline:
			t.Fatal("socket not closed within 10s")
			return 0
		}
	}
}

// errType returns the wire error type of a failed request ("" if it succeeded).
func errType(err error) string {
	var er *client.ErrorReply
	if errors.As(err, &er) {
		return er.Type
	}
	if err != nil {
		return "go error: " + err.Error()
	}
	return ""
}

func decode[T any](t testing.TB, m client.Message) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("decode %s: %v (%s)", m.Type, err, m.Data)
	}
	return v
}

func testCodecs() *community.Registry {
	r := community.NewRegistry()
	notes.Register(r)
	return r
}
