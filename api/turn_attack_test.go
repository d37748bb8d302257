package api_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/community/voice"
)

const turnSecret = "test secret"

// startTURN runs the embedded TURN server wired as serve wires it (the
// member check, the SFU's media address) on the env's clock, and makes
// voice joins hand out its credentials.
func startTURN(t *testing.T, env *testEnv, tune func(*voice.TURNConfig)) *voice.TURN {
	t.Helper()
	cfg := voice.TURNConfig{Addr: "127.0.0.1:0", PublicIP: "127.0.0.1", Secret: turnSecret,
		Members: env.communities, Media: env.sfu.MediaAddrs, Now: env.clock.Now}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := voice.StartTURN(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	env.communities.SetICEServers(func(userID string) []community.ICEServer {
		urls, user, pass, err := srv.Credentials(userID)
		if err != nil {
			t.Errorf("TURN credentials: %v", err)
			return nil
		}
		return []community.ICEServer{{URLs: urls, Username: user, Credential: pass}}
	})
	return srv
}

// turnCredentials are the TURN server and credentials m's voice join hands out.
func turnCredentials(t *testing.T, env *testEnv, m *member) (addr, user, pass string) {
	t.Helper()
	_, servers := env.callTicket(m, "General", "VC-1")
	for _, s := range servers {
		if s.Username == "" {
			continue
		}
		u := s.URLs[0]
		hostport, _, _ := strings.Cut(strings.TrimPrefix(u, "turn:"), "?")
		return hostport, s.Username, s.Credential.(string)
	}
	t.Fatalf("join handed out no TURN server: %+v", servers)
	return "", "", ""
}

// turnClient is a TURN client over UDP from a fresh loopback port.
func turnClient(t *testing.T, addr, user, pass string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Username: user, Password: pass,
		Realm: "iotad", Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		conn.Close()
	})
	return c
}

// turnCode is the TURN error code of err (0 if it has none).
func turnCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

// udpEcho is the attacker's target: a UDP service that answers whatever
// reaches it.
type udpEcho struct {
	conn net.PacketConn
	got  chan string
}

func startEcho(t *testing.T, addr string) *udpEcho {
	t.Helper()
	conn, err := net.ListenPacket("udp4", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	e := &udpEcho{conn: conn, got: make(chan string, 100)}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			e.got <- string(buf[:n])
			conn.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return e
}

// TestMemberCannotRelayToLoopback is the attack of issue 10: a member's
// credentials from join allocate a relay and aim it at UDP services of the
// server's own host. Where the target's IP is not the SFU's, permission is
// refused (403); on the SFU's own IP (127.0.0.1 here) permission must be
// granted for media, and the datagram to any other port is dropped. The
// echo never hears a thing, and nothing comes back.
func TestMemberCannotRelayToLoopback(t *testing.T) {
	env := newEnv(t, nil)
	srv := startTURN(t, env, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	m := env.join(community.RoleMember)
	addr, user, pass := turnCredentials(t, env, m)

	targets := map[string]string{"another loopback address": "127.0.0.2:0"}
	for _, ip := range hostIPs() {
		targets["this host's "+ip.String()] = netip.AddrPortFrom(ip, 0).String()
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			echo := startEcho(t, target)
			relay, err := turnClient(t, addr, user, pass).Allocate()
			if err != nil {
				t.Fatalf("a member cannot allocate: %v", err)
			}
			defer relay.Close()
			to := echo.conn.LocalAddr()
			if _, err := relay.WriteTo([]byte("ping"), to); turnCode(err) != int(stun.CodeForbidden) {
				t.Fatalf("permission to %s: %v, want 403", to, err)
			}
			assertUnreached(t, echo, relay)
		})
	}

	t.Run("another port of the SFU's address", func(t *testing.T) {
		echo := startEcho(t, "127.0.0.1:0")
		relay, err := turnClient(t, addr, user, pass).Allocate()
		if err != nil {
			t.Fatalf("a member cannot allocate: %v", err)
		}
		defer relay.Close()
		before := srv.Dropped.Load()
		// More than one, so that the channel the client binds after the
		// first Send indication carries some too.
		for range 5 {
			if _, err := relay.WriteTo([]byte("ping"), echo.conn.LocalAddr()); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
		waitFor(t, "the relay to drop the datagrams", func() bool { return srv.Dropped.Load() >= before+5 })
		assertUnreached(t, echo, relay)
	})
}

// assertUnreached: the echo heard nothing and no answer came back through
// the relay. Waiting for something not to happen needs a window; the
// datagrams, when they were relayed, crossed loopback long before it ends.
func assertUnreached(t *testing.T, echo *udpEcho, relay net.PacketConn) {
	t.Helper()
	relay.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 1500)
	if n, from, err := relay.ReadFrom(buf); err == nil {
		t.Fatalf("the relay carried %q back from %s", buf[:n], from)
	}
	select {
	case got := <-echo.got:
		t.Fatalf("the relay carried %q to the echo", got)
	default:
	}
}

// hostIPs are this host's IPv4 addresses but loopback, where a relay must
// not reach either.
func hostIPs() []netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() && !ip.Unmap().IsLoopback() {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// TestRemovedMemberCannotUseTURNCredentials: credentials from a join, still
// unexpired, stop working the moment their user is kicked or banned, and
// the relay they already hold is closed.
func TestRemovedMemberCannotUseTURNCredentials(t *testing.T) {
	for how, done := range map[string]string{"kick": "kicked", "ban": "banned"} {
		t.Run(how, func(t *testing.T) {
			env := newEnv(t, nil)
			srv := startTURN(t, env, nil)
			owner := env.join(community.RoleOwner)
			setupChannels(t, owner)
			m := env.join(community.RoleMember)
			addr, user, pass := turnCredentials(t, env, m)
			held := turnClient(t, addr, user, pass)
			if _, err := held.Allocate(); err != nil {
				t.Fatalf("a member cannot allocate: %v", err)
			}
			if n := srv.Allocations(m.ID); n != 1 {
				t.Fatalf("%d allocations, want 1", n)
			}

			ok(t)(owner.root(t, how, map[string]any{"user_id": m.ID}))
			if _, err := turnClient(t, addr, user, pass).Allocate(); turnCode(err) != int(stun.CodeUnauthorized) {
				t.Fatalf("the %s member's credentials allocate: %v", done, err)
			}
			public := &net.UDPAddr{IP: net.ParseIP("203.0.113.7"), Port: 9}
			if err := held.CreatePermission(public); err == nil {
				t.Fatalf("the %s member's allocation takes new permissions", done)
			}
			srv.Recheck()
			if n := srv.Allocations(m.ID); n != 0 {
				t.Fatalf("the %s member still holds %d allocations", done, n)
			}
		})
	}
}

// TestTURNQuotaRefusesOneAllocationMore: one user's credentials open
// Quota allocations and the next is refused with 486; a place freed is
// free again, and other users are not counted against it.
func TestTURNQuotaRefusesOneAllocationMore(t *testing.T) {
	env := newEnv(t, nil)
	srv := startTURN(t, env, func(c *voice.TURNConfig) { c.Quota = 2 })
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	m := env.join(community.RoleMember)
	addr, user, pass := turnCredentials(t, env, m)
	var relays []net.PacketConn
	for i := range 2 {
		r, err := turnClient(t, addr, user, pass).Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
		relays = append(relays, r)
	}
	if _, err := turnClient(t, addr, user, pass).Allocate(); turnCode(err) != int(stun.CodeAllocQuotaReached) {
		t.Fatalf("third allocation: %v, want 486", err)
	}

	other := env.join(community.RoleMember)
	oaddr, ouser, opass := turnCredentials(t, env, other)
	if _, err := turnClient(t, oaddr, ouser, opass).Allocate(); err != nil {
		t.Fatalf("another member is counted against the quota: %v", err)
	}

	relays[0].Close()
	waitFor(t, "the closed allocation to go", func() bool { return srv.Allocations(m.ID) == 1 })
	if _, err := turnClient(t, addr, user, pass).Allocate(); err != nil {
		t.Fatalf("a freed place is not free: %v", err)
	}
}

// TestExpiredTURNCredentialsAreRefused: credentials cannot open an
// allocation after their ten minutes, nor can credentials signed with the
// same secret for longer (an outside server's, an old iotad's).
func TestExpiredTURNCredentialsAreRefused(t *testing.T) {
	env := newEnv(t, nil)
	startTURN(t, env, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	m := env.join(community.RoleMember)
	addr, user, pass := turnCredentials(t, env, m)

	env.clock.Advance(voice.MaxCredentialTTL + time.Second)
	if _, err := turnClient(t, addr, user, pass).Allocate(); turnCode(err) != int(stun.CodeUnauthorized) {
		t.Fatalf("expired credentials allocate: %v", err)
	}
	long, longPass, err := turn.GenerateLongTermTURNRESTCredentials(turnSecret, m.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := turnClient(t, addr, long, longPass).Allocate(); turnCode(err) != int(stun.CodeUnauthorized) {
		t.Fatalf("credentials for an hour allocate: %v", err)
	}
	// A fresh join's credentials are good again.
	addr, user, pass = turnCredentials(t, env, m)
	if _, err := turnClient(t, addr, user, pass).Allocate(); err != nil {
		t.Fatalf("fresh credentials: %v", err)
	}
}

// TestTURNRelaysToTheSFU: what TURN is for still works end to end. A
// relay-only caller, with the ice_servers its join handed out, has media
// with a direct one through the SFU's own (loopback) address.
func TestTURNRelaysToTheSFU(t *testing.T) {
	env := newEnv(t, nil)
	srv := startTURN(t, env, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	relayedMember := env.join(community.RoleMember)
	relayed := env.joinCall(relayedMember, client.CallOptions{RelayOnly: true})
	direct := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go publish(ctx, relayed.rtc.Audio, 111)
	go publish(ctx, direct.rtc.Audio, 111)
	waitFor(t, "media through TURN", func() bool {
		return direct.got.count(relayed.ID, webrtc.RTPCodecTypeAudio) > 25 && relayed.got.count(direct.ID, webrtc.RTPCodecTypeAudio) > 25
	})
	if srv.Allocations(relayedMember.ID) == 0 {
		t.Fatal("the relay-only caller holds no allocation")
	}
}
