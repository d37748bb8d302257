package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

// logWatch collects serve's log and tells a waiting test when a line
// with every wanted substring has been written.
type logWatch struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wake  chan struct{}
	lines []string
}

func newLogWatch() *logWatch { return &logWatch{wake: make(chan struct{}, 1)} }

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.lines = append(w.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *logWatch) has(want ...string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
next:
	for _, l := range w.lines {
		for _, s := range want {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		return true
	}
	return false
}

func (w *logWatch) waitFor(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !w.has(want...) {
		select {
		case <-w.wake:
		case <-deadline:
			w.mu.Lock()
			defer w.mu.Unlock()
			t.Fatalf("no log line with %q:\n%s", want, w.buf.String())
		}
	}
}

// startProxy runs scripts/proxy.sh (Caddy, installed if missing) on a
// free loopback port in front of upstream until the test ends, and
// returns its address once Caddy serves.
func startProxy(t *testing.T, upstream string) string {
	t.Helper()
	if _, err := exec.LookPath("caddy"); err != nil && os.Getenv("CI") == "" && os.Geteuid() != 0 {
		// Only root can install it; in CI (root) a missing caddy fails.
		t.Skip("caddy is not installed and only root can install it: apt-get install caddy")
	}
	listen := freePort(t)
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "proxy.sh"), listen, upstream, t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// proxy.sh execs caddy, so this is Caddy's own pid.
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan struct{})
	var out bytes.Buffer
	var outMu sync.Mutex
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			outMu.Lock()
			out.WriteString(sc.Text() + "\n")
			outMu.Unlock()
			if strings.Contains(sc.Text(), "serving initial configuration") {
				close(ready)
				io.Copy(io.Discard, stderr)
				return
			}
		}
	}()
	select {
	case <-ready:
		return listen
	case <-ended:
	case <-time.After(10 * time.Minute): // installing caddy may take this long
	}
	outMu.Lock()
	defer outMu.Unlock()
	t.Fatalf("scripts/proxy.sh did not start Caddy:\n%s", out.String())
	return ""
}

// fromAddr dials from a loopback address of its own, so that the proxy
// sees a client that is not itself.
func fromAddr(ip string) *client.Options {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &client.Options{NetDialContext: d.DialContext}
}

// TestBehindCaddyTheForwardedAddressIsLimited: iotad behind Caddy, run
// by scripts/proxy.sh, with --trusted-proxies 127.0.0.1/32. Clients reach
// Caddy from 127.0.0.2 and 127.0.0.3, Caddy reaches iotad from
// 127.0.0.1. A client logs in to the Iota and to the community through
// Caddy; the login limit (a burst of two) and the log count the address
// Caddy forwarded, so the client at 127.0.0.2 is limited and the one at
// 127.0.0.3 is not, whatever address the latter forges in its headers.
func TestBehindCaddyTheForwardedAddressIsLimited(t *testing.T) {
	data := t.TempDir()
	addr := freePort(t)
	logs := newLogWatch()
	startServeWith(t, logs, "--data", data, "--addr", addr, "--admin-addr", "",
		"--trusted-proxies", "127.0.0.1/32", "--login-rate", "0.000001", "--login-burst", "2")
	logs.waitFor(t, "trusting forwarded client addresses", "127.0.0.1/32")
	proxy := startProxy(t, addr)

	// The page comes through the proxy.
	resp, err := http.Get("http://" + proxy + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page through the proxy: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	raw, err := os.ReadFile(filepath.Join(data, "owner.tu"))
	if err != nil {
		t.Fatal(err)
	}
	ownerID, ownerKey, err := icrypto.ParseKeyFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	invite := firstInvites(t, data)[1]
	lctx, lcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer lcancel()
	dial := func(ip, path string, h http.Header) *client.Client {
		t.Helper()
		opts := fromAddr(ip)
		opts.Header = h
		c, err := client.Dial(lctx, "ws://"+proxy+path, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	_, friendKey, err := icrypto.GenerateKey(randReader)
	if err != nil {
		t.Fatal(err)
	}

	// 127.0.0.2: the Iota, then the community; that is its burst.
	if _, err := dial("127.0.0.2", "/ws/iota", nil).Login(lctx, ownerKey, map[string]any{"user_id": ownerID}); err != nil {
		t.Fatalf("Iota login through the proxy: %v", err)
	}
	logs.waitFor(t, "iota login", "remote=127.0.0.2", "via=127.0.0.1")
	if _, err := dial("127.0.0.2", "/", nil).LoginCommunity(lctx, "friend", friendKey, invite, nil); err != nil {
		t.Fatalf("community login through the proxy: %v", err)
	}
	var er *client.ErrorReply
	if _, err := dial("127.0.0.2", "/", nil).LoginCommunity(lctx, "friend", friendKey, "", nil); !errors.As(err, &er) || er.Type != api.ErrTypeRateLimited {
		t.Fatalf("third login from 127.0.0.2: %v, want %s", err, api.ErrTypeRateLimited)
	}

	// 127.0.0.3 has a bucket of its own, and cannot name another address:
	// Caddy replaces X-Forwarded-For and drops Forwarded.
	forged := http.Header{"X-Forwarded-For": {"198.51.100.9"}, "Forwarded": {"for=198.51.100.9"}}
	if _, err := dial("127.0.0.3", "/ws/iota", forged).Login(lctx, ownerKey, map[string]any{"user_id": ownerID}); err != nil {
		t.Fatalf("Iota login from 127.0.0.3: %v", err)
	}
	logs.waitFor(t, "iota login", "remote=127.0.0.3", "via=127.0.0.1")
	if _, err := dial("127.0.0.3", "/", forged).LoginCommunity(lctx, "friend", friendKey, "", nil); err != nil {
		t.Fatalf("community login from 127.0.0.3: %v", err)
	}
	if logs.has("198.51.100.9") {
		t.Fatal("an address the client forged reached iotad")
	}
}

// TestBadTrustedProxiesAreRefused: a typo in --trusted-proxies stops
// serve with an error naming the flag, rather than trusting nothing (or
// too much) in silence.
func TestBadTrustedProxiesAreRefused(t *testing.T) {
	for _, v := range []string{"127.0.0.1/33", "proxy.example.org", "10.0.0.0/8,,::1"} {
		_, _, err := runCmd(t, "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--admin-addr", "", "--trusted-proxies", v)
		if err == nil || !strings.Contains(err.Error(), "--trusted-proxies") {
			t.Errorf("--trusted-proxies %q: %v", v, err)
		}
	}
}
