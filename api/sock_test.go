package api_test

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
)

// metric reads one unlabelled series, or one with its labels as written
// (`iotad_sockets_refused_total{reason="address"}`), from the admin listener.
func (e *testEnv) metric(name string) int64 {
	e.t.Helper()
	resp, err := http.Get(e.admin + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			// Prometheus writes a million as 1e+06.
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				e.t.Fatalf("%s: %v", name, err)
			}
			return int64(n)
		}
	}
	e.t.Fatalf("no metric %s", name)
	return 0
}

// TestStalledReaderCannotHoardServerMemory: a member whose socket stops
// reading asks for page after page of the largest messages. The server
// holds at most SendQueueBytes for it, then closes it with 1008 and counts
// it; before the byte bound, 256 frames of 2.4 MB pages could queue.
func TestStalledReaderCannotHoardServerMemory(t *testing.T) {
	const bound = 4 << 20
	env := newEnv(t, func(c *api.Config) { c.Socket.SendQueueBytes = bound })
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	// '<' is escaped to \u003c: one 4,000-character message costs 24 KB
	// on the wire, a page of 100 of them 2.4 MB.
	body := strings.Repeat("<", community.MaxMessageLength)
	for range community.MaxPage {
		ok(t)(owner.call(t, "text", "General", "chat", "send_message", map[string]any{"message": body}))
	}

	// The attacker's client stops reading after its login: its reader
	// blocks on the first frame that follows, so the kernel's buffers fill
	// and the server's queue grows.
	var stalled atomic.Bool
	release := make(chan struct{})
	c, err := client.Dial(ctxT(t), env.url+"/", &client.Options{OnFrame: func([]byte) bool {
		if stalled.Load() {
			<-release
		}
		return false
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.LoginCommunity(ctxT(t), owner.ID, owner.Priv, "", nil); err != nil {
		t.Fatal(err)
	}
	api.ResetQueuePeak()
	slow := env.metric("iotad_slow_consumers_total")
	stalled.Store(true)
	// 16 pages are 38 MB: more than loopback's socket buffers (a few MB
	// each way) and the bound together.
	const pages = 16
	for i := range pages {
		err := c.Send("function", fmt.Sprint("page", i), map[string]any{"codec": "text", "path": "General", "name": "chat",
			"function": "get_messages", "payload": map[string]any{"loaded_messages": 0, "amount": community.MaxPage}})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	close(release)
	replies := 0
	deadline := time.After(10 * time.Second)
read:
	for replies < pages {
		select {
		case m, open := <-c.Pushes():
			if !open {
				break read
			}
			if strings.HasPrefix(m.ID, "page") {
				replies++
			}
		case <-deadline:
			t.Fatalf("%d pages within 10s and no close", replies)
		}
	}
	if replies == pages {
		t.Fatalf("all %d pages were queued for a reader that had stopped reading", pages)
	}
	<-c.Done()
	if code := c.CloseCode(); code != api.ClosePolicy {
		t.Fatalf("stalled reader got %d of %d pages and close code %d, want 1008", replies, pages, code)
	}
	if got := env.metric("iotad_slow_consumers_total") - slow; got != 1 {
		t.Fatalf("iotad_slow_consumers_total rose by %d", got)
	}
	if peak := env.metric("iotad_send_queue_peak_bytes"); peak > bound || peak == 0 {
		t.Fatalf("a socket queued %d bytes, bound %d", peak, bound)
	}
}

// TestHugeFrameGetsCloseTooBigNotReset: a client sending a 1 MiB frame
// (the limit is 64 KiB) reads the 1009 close frame. Before, the server
// closed the connection with the frame unread, the kernel answered with a
// reset, and the client saw 1006.
func TestHugeFrameGetsCloseTooBigNotReset(t *testing.T) {
	env := newEnv(t, nil)
	for i := range 5 {
		ws, _, err := websocket.DefaultDialer.Dial(env.url+"/ws/iota", nil)
		if err != nil {
			t.Fatal(err)
		}
		// A small send buffer keeps most of the frame in the client while
		// the server decides, as a slower link would.
		ws.NetConn().(*net.TCPConn).SetWriteBuffer(16 << 10)
		written := make(chan error, 1)
		go func() { _, err := ws.NetConn().Write(maskedTextFrame(1 << 20)); written <- err }()
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err = ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != api.CloseTooBig {
			t.Fatalf("round %d: read %v (write: %v), want close 1009", i, err, <-written)
		}
		if err := <-written; err != nil {
			t.Fatalf("round %d: the server cut the frame off: %v", i, err)
		}
		ws.Close()
	}
}

// maskedTextFrame is one client text frame (masked, as RFC 6455 requires)
// of n bytes: a single frame, not the fragments gorilla would write.
func maskedTextFrame(n int) []byte {
	b := make([]byte, 0, 14+n)
	b = append(b, 0x81, 0x80|127)
	b = binary.BigEndian.AppendUint64(b, uint64(n))
	var mask [4]byte
	rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i := range n {
		b = append(b, 'x'^mask[i%4])
	}
	return b
}

// dialStatus tries an upgrade and returns the HTTP status (101 on success).
func dialStatus(t *testing.T, url string) (*websocket.Conn, int) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		if resp == nil {
			t.Fatal(err)
		}
		return nil, resp.StatusCode
	}
	t.Cleanup(func() { ws.Close() })
	return ws, http.StatusSwitchingProtocols
}

// TestManySocketsFromOneAddressAreRefused: one address opens sockets that
// never log in, then logged-in ones; past each cap the upgrade gets 429
// and the refusal is counted.
func TestManySocketsFromOneAddressAreRefused(t *testing.T) {
	t.Run("not logged in", func(t *testing.T) {
		env := newEnv(t, func(c *api.Config) { c.MaxUnauthenticatedPerAddr = 3 })
		before := env.metric(`iotad_sockets_refused_total{reason="address_unauthenticated"}`)
		for range 3 {
			if _, code := dialStatus(t, env.url+"/ws/iota"); code != http.StatusSwitchingProtocols {
				t.Fatalf("socket under the cap: %d", code)
			}
		}
		if _, code := dialStatus(t, env.url+"/ws/iota"); code != http.StatusTooManyRequests {
			t.Fatalf("4th socket not logged in: %d, want 429", code)
		}
		if _, code := dialStatus(t, env.url+"/"); code != http.StatusTooManyRequests {
			t.Fatalf("the cap is per address, not per endpoint: %d, want 429", code)
		}
		if got := env.metric(`iotad_sockets_refused_total{reason="address_unauthenticated"}`) - before; got != 2 {
			t.Fatalf("%d refusals counted, want 2", got)
		}
	})
	t.Run("all sockets", func(t *testing.T) {
		env := newEnv(t, func(c *api.Config) { c.MaxUnauthenticatedPerAddr, c.MaxConnectionsPerAddr = 2, 3 })
		before := env.metric(`iotad_sockets_refused_total{reason="address"}`)
		// A login moves its socket out of the not-logged-in count, not out
		// of the address's total.
		env.iota(env.newUser())
		env.iota(env.newUser())
		if _, code := dialStatus(t, env.url+"/ws/iota"); code != http.StatusSwitchingProtocols {
			t.Fatalf("3rd socket: %d", code)
		}
		if _, code := dialStatus(t, env.url+"/ws/iota"); code != http.StatusTooManyRequests {
			t.Fatalf("4th socket: %d, want 429", code)
		}
		if got := env.metric(`iotad_sockets_refused_total{reason="address"}`) - before; got != 1 {
			t.Fatalf("%d refusals counted, want 1", got)
		}
	})
}

// TestIPv6AddressesShareTheirSlash64: the caps count an IPv6 host by its
// /64, since a host commonly has a whole /64 to pick addresses from.
func TestIPv6AddressesShareTheirSlash64(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"192.0.2.8", "192.0.2.8"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not an address", "not an address"},
	} {
		if got := api.AddrKey(tc.in); got != tc.want {
			t.Errorf("AddrKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestUserCannotOpenUnlimitedSockets: past the per-user cap a login is
// refused with error_rate_limited and the socket stays logged out.
func TestUserCannotOpenUnlimitedSockets(t *testing.T) {
	env := newEnv(t, func(c *api.Config) { c.MaxConnectionsPerUser = 3 })
	u := env.newUser()
	for range 3 {
		env.iota(u)
	}
	before := env.metric("iotad_logins_refused_user_sockets_total")
	c := env.dial("/ws/iota")
	if _, err := c.Login(ctxT(t), u.Priv, map[string]any{"user_id": u.ID}); errType(err) != api.ErrTypeRateLimited {
		t.Fatalf("4th login: %v, want %s", err, api.ErrTypeRateLimited)
	}
	if _, err := c.Request(ctxT(t), "get_communities", nil); errType(err) != api.ErrTypeNotAuthenticated {
		t.Fatalf("the refused socket is logged in: %v", err)
	}
	if got := env.metric("iotad_logins_refused_user_sockets_total") - before; got != 1 {
		t.Fatalf("%d refusals counted, want 1", got)
	}
	// Another user is not held to this one's cap.
	env.iota(env.newUser())
}

// TestOneUsersSocketsShareOneRequestBudget: opening more sockets does not
// buy more requests; the user's bucket is shared by all of them.
func TestOneUsersSocketsShareOneRequestBudget(t *testing.T) {
	const burst = 20
	env := newEnv(t, func(c *api.Config) { c.UserRequestRate, c.UserRequestBurst = 1, burst })
	u := env.newUser()
	before := env.metric(`iotad_requests_limited_total{scope="user"}`)
	start := time.Now()
	socks := make([]*client.Client, 4)
	for i := range socks {
		socks[i] = env.iota(u)
	}
	var pongs, limited atomic.Int64
	var wg sync.WaitGroup
	for _, c := range socks {
		wg.Go(func() {
			for range burst {
				_, err := c.Request(ctxT(t), "ping", map[string]any{"last_ping": 1})
				switch errType(err) {
				case "":
					pongs.Add(1)
				case api.ErrTypeRateLimited:
					limited.Add(1)
				default:
					t.Errorf("ping: %v", err)
				}
			}
		})
	}
	wg.Wait()
	// The bucket holds 20 and refills at one a second while this runs.
	most := int64(burst + time.Since(start).Seconds() + 1)
	if p := pongs.Load(); p < burst || p > most || p+limited.Load() != 4*burst {
		t.Fatalf("%d pongs and %d refusals for %d pings from one user, want at most %d pongs", p, limited.Load(), 4*burst, most)
	}
	if got := env.metric(`iotad_requests_limited_total{scope="user"}`) - before; got != limited.Load() {
		t.Fatalf("%d user refusals counted, want %d", got, limited.Load())
	}
	// Another user's budget is their own.
	if _, err := env.iota(env.newUser()).Request(ctxT(t), "ping", map[string]any{"last_ping": 1}); err != nil {
		t.Fatalf("another user: %v", err)
	}
}

// TestShutdownWithBusySocketsDoesNotPanic: members post as fast as they
// can while the server shuts down and its stores are closed, as iotad
// serve does on SIGTERM. Before, Serve returned while handlers still ran,
// and the next write went to the closed store's channel: a panic.
func TestShutdownWithBusySocketsDoesNotPanic(t *testing.T) {
	for round := range 3 {
		env := newEnv(t, nil)
		owner := env.join(community.RoleOwner)
		setupChannels(t, owner)
		members := []*member{owner}
		for range 15 {
			members = append(members, env.join(community.RoleMember))
		}
		var wg sync.WaitGroup
		started := make(chan struct{}, len(members))
		for _, m := range members {
			wg.Go(func() {
				for i := 0; ; i++ {
					_, err := m.c.Function(ctxT(t), "text", "General", "chat", "send_message", map[string]any{"message": "hi"})
					if i == 0 {
						started <- struct{}{}
					}
					if err != nil {
						return
					}
				}
			})
		}
		for range members {
			<-started
		}
		env.stop()
		wg.Wait()
		for _, m := range members {
			if code := waitClosed(t, m.c); code != api.CloseGoingAway {
				t.Fatalf("round %d: close code %d, want 1001", round, code)
			}
		}
	}
}

// TestControlFramesAreAnswered: pings and a peer's close are answered (by
// the session's writer, which alone writes to the connection).
func TestControlFramesAreAnswered(t *testing.T) {
	env := newEnv(t, nil)
	ws, _, err := websocket.DefaultDialer.Dial(env.url+"/ws/iota", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	pong := make(chan string, 1)
	ws.SetPongHandler(func(p string) error { pong <- p; return nil })
	if err := ws.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4321, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4321 {
		t.Fatalf("answer to close 4321: %v", err)
	}
	select {
	case p := <-pong:
		if p != "are you there" {
			t.Fatalf("pong %q", p)
		}
	default:
		t.Fatal("no pong before the close")
	}
}

// TestMetricsAreNotOnThePublicListener: /metrics and pprof are served on
// the admin listener only.
func TestMetricsAreNotOnThePublicListener(t *testing.T) {
	env := newEnv(t, func(c *api.Config) { c.Pprof = true })
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&b)
		return resp.StatusCode, b.String()
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap?debug=1"} {
		if _, body := get(env.http + path); strings.Contains(body, "iotad_sockets") || strings.Contains(body, "MemStats") || strings.Contains(body, "goroutine") {
			t.Errorf("public %s serves operator data", path)
		}
	}
	if code, body := get(env.admin + "/metrics"); code != 200 || !strings.Contains(body, "iotad_sockets ") {
		t.Errorf("admin /metrics: %d", code)
	}
	if code, body := get(env.admin + "/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "MemStats") {
		t.Errorf("admin pprof heap: %d", code)
	}
}

// TestProtocolErrorIsAnsweredWith1002: a frame RFC 6455 forbids from a
// client is a protocol error; gorilla's close frame for it is sent by the
// session's writer, and the client reads it. The pongs are here because
// the session takes well-formed pongs itself and must leave the rest to
// gorilla to refuse.
func TestProtocolErrorIsAnsweredWith1002(t *testing.T) {
	env := newEnv(t, nil)
	masked := func(header ...byte) []byte {
		return append(header, 1, 2, 3, 4)
	}
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"an unmasked text frame", []byte{0x81, 0x02, 'h', 'i'}},
		// Long enough to be whole were it masked.
		{"an unmasked pong", []byte{0x8A, 0x02, 'h', 'i', 0, 0, 0, 0}},
		{"a fragmented pong", append(masked(0x0A, 0x80|2), 'h', 'i')},
		{"a pong longer than a control frame may be", append(masked(0x8A, 0x80|126, 0, 126), make([]byte, 126)...)},
		{"a pong with reserved bits", append(masked(0xCA, 0x80|2), 'h', 'i')},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, _, err := websocket.DefaultDialer.Dial(env.url+"/ws/iota", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			if _, err := ws.NetConn().Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _, err = ws.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.CloseProtocolError {
				t.Fatalf("read %v, want close 1002", err)
			}
		})
	}
}

// TestPipelinedFramesAreAllAnswered: frames a client sends in one write
// are each answered, however they fall across the server's read buffer:
// one that ends exactly where the buffer's first fill ends (the server
// must look for the rest in the kernel rather than wait to be told of
// it), one larger than the buffer, small ones after, and pongs among
// them, one of which only starts in the buffer (the server takes whole
// pongs itself between messages and leaves a partial one to gorilla).
func TestPipelinedFramesAreAllAnswered(t *testing.T) {
	env := newEnv(t, nil)
	mask := func(b []byte, payload string) []byte {
		var key [4]byte
		rand.Read(key[:])
		b = append(b, key[:]...)
		for i := range len(payload) {
			b = append(b, payload[i]^key[i%4])
		}
		return b
	}
	request := func(id string, wire int) []byte {
		// A masked text frame of wire bytes in all: 8 bytes of header
		// (two, a 16-bit length, the mask) for 126..65535 bytes of payload.
		n := wire - 8
		body := fmt.Sprintf(`{"type":"no_such_type","id":%q,"data":{"pad":"`, id)
		body += strings.Repeat("x", n-len(body)-3) + `"}}`
		b := []byte{0x81, 0x80 | 126}
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		return mask(b, body)
	}
	pong := func(payload int) []byte {
		return mask([]byte{0x8A, 0x80 | byte(payload)}, strings.Repeat("p", payload))
	}
	// A frame is a request of n bytes on the wire, or a pong of n bytes
	// of payload.
	type frame struct {
		pong bool
		n    int
	}
	req := func(n int) frame { return frame{n: n} }
	pongOf := func(n int) frame { return frame{pong: true, n: n} }
	for _, tc := range []struct {
		name   string
		frames []frame
	}{
		{"the first frame fills the buffer exactly", []frame{req(1024), req(200), req(200)}},
		{"a frame larger than the buffer", []frame{req(300), req(5000), req(200)}},
		{"many small frames", []frame{req(200), req(200), req(200), req(200), req(200), req(200), req(200), req(200)}},
		{"pongs between requests", []frame{pongOf(10), req(200), pongOf(0), pongOf(125), req(200), pongOf(3), req(200), pongOf(1)}},
		{"a pong across the buffer's end", []frame{req(1024 - 3), pongOf(20), req(200)}},
		{"a request across the buffer's end after pongs", []frame{pongOf(125), pongOf(125), pongOf(125), req(600), req(200)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, _, err := websocket.DefaultDialer.Dial(env.url+"/ws/iota", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			var all []byte
			requests := 0
			for _, f := range tc.frames {
				if f.pong {
					all = append(all, pong(f.n)...)
					continue
				}
				all = append(all, request(strconv.Itoa(requests), f.n)...)
				requests++
			}
			if _, err := ws.NetConn().Write(all); err != nil {
				t.Fatal(err)
			}
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			for i := range requests {
				_, data, err := ws.ReadMessage()
				if err != nil {
					t.Fatalf("reply %d of %d: %v", i, requests, err)
				}
				if want := fmt.Sprintf(`"id":"%d"`, i); !strings.Contains(string(data), want) {
					t.Fatalf("reply %d: %.200s, want %s", i, data, want)
				}
			}
		})
	}
}
