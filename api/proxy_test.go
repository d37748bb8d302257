package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
)

// loginFrom opens an Iota socket with the given headers and logs u in;
// it returns the error type ("" when logged in).
func (e *testEnv) loginFrom(u testUser, h http.Header) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, e.url+"/ws/iota", &client.Options{Header: h})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Login(ctx, u.Priv, map[string]any{"user_id": u.ID})
	return errType(err)
}

func forwardedHeader(xff, fwd string) http.Header {
	h := http.Header{}
	if xff != "" {
		h.Set("X-Forwarded-For", xff)
	}
	if fwd != "" {
		h.Set("Forwarded", fwd)
	}
	return h
}

// TestForgedForwardedForDoesNotDodgeTheLoginLimit: a client that is not a
// trusted proxy names a new address in X-Forwarded-For and Forwarded on
// every login, hoping each gets a fresh bucket; it stays one address.
func TestForgedForwardedForDoesNotDodgeTheLoginLimit(t *testing.T) {
	for _, name := range []string{"no proxies configured", "another proxy configured"} {
		t.Run(name, func(t *testing.T) {
			env := newEnv(t, func(c *api.Config) {
				c.LoginRate, c.LoginBurst = 1e-6, 3
				if name != "no proxies configured" {
					c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
				}
			})
			u := env.newUser()
			for i := range 8 {
				got := env.loginFrom(u, forwardedHeader(fmt.Sprintf("1.2.3.%d", i), fmt.Sprintf("for=5.6.7.%d", i)))
				want := ""
				if i >= 3 {
					want = api.ErrTypeRateLimited
				}
				if got != want {
					t.Fatalf("login %d with a forged address: %q, want %q", i, got, want)
				}
			}
			if strings.Contains(string(env.logs.Bytes()), "1.2.3.") {
				t.Fatal("a forged address reached the log")
			}
		})
	}
}

// TestTrustedProxyNamesTheLimitedAddress: behind a trusted proxy
// (127.0.0.1/32, where the test's sockets come from) the forwarded
// address is what the login limit, the per-address caps and the log see:
// clients behind one proxy do not share one bucket, and one client does
// not get more than its own.
func TestTrustedProxyNamesTheLimitedAddress(t *testing.T) {
	env := newEnv(t, func(c *api.Config) {
		c.LoginRate, c.LoginBurst = 1e-6, 2
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	u := env.newUser()
	// Eight clients behind the proxy log in once each: eight buckets.
	for i := range 8 {
		if got := env.loginFrom(u, forwardedHeader(fmt.Sprintf("198.51.100.%d", i), "")); got != "" {
			t.Fatalf("client %d behind the proxy: %q", i, got)
		}
	}
	// One of them uses its burst of two, then tries again, whatever it
	// puts left of the address the proxy appended.
	if got := env.loginFrom(u, forwardedHeader("198.51.100.1", "")); got != "" {
		t.Fatalf("second login of one client: %q", got)
	}
	for i, xff := range []string{"198.51.100.1", "9.9.9.9, 198.51.100.1"} {
		if got := env.loginFrom(u, forwardedHeader(xff, "")); got != api.ErrTypeRateLimited {
			t.Fatalf("login %d over the forwarded address's burst: %q, want %s", i+3, got, api.ErrTypeRateLimited)
		}
	}
	// Forwarded wins over X-Forwarded-For; an IPv6 client is counted by
	// its /64.
	for i, h := range []http.Header{
		forwardedHeader("198.51.100.50", `for="[2001:db8:1:2::1]:4711"`),
		forwardedHeader("", `for="[2001:db8:1:2::2]"`),
		forwardedHeader("2001:db8:1:2::3", ""),
	} {
		want := ""
		if i == 2 {
			want = api.ErrTypeRateLimited
		}
		if got := env.loginFrom(u, h); got != want {
			t.Fatalf("IPv6 login %d from one /64: %q, want %q", i, got, want)
		}
	}
	if got := env.loginFrom(u, forwardedHeader("198.51.100.50", "")); got != "" {
		t.Fatalf("the X-Forwarded-For that Forwarded overrode was counted: %q", got)
	}
	// A header the server cannot read leaves the proxy's own address.
	if got := env.loginFrom(u, forwardedHeader("", `for="198.51.100.60`)); got != "" {
		t.Fatalf("malformed Forwarded, first login from the proxy's address: %q", got)
	}
	logs := string(env.logs.Bytes())
	if !strings.Contains(logs, "remote=198.51.100.7 via=127.0.0.1") {
		t.Fatalf("the log does not name the forwarded client and its proxy:\n%s", logs)
	}
}

// TestTrustedProxyCapsSocketsPerForwardedAddress: the per-address socket
// caps count the forwarded address, so one client behind the proxy is
// capped and the next one is not.
func TestTrustedProxyCapsSocketsPerForwardedAddress(t *testing.T) {
	env := newEnv(t, func(c *api.Config) {
		c.MaxUnauthenticatedPerAddr = 2
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	dial := func(xff string) int {
		ws, resp, err := websocket.DefaultDialer.Dial(env.url+"/ws/iota", forwardedHeader(xff, ""))
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return resp.StatusCode
		}
		t.Cleanup(func() { ws.Close() })
		return http.StatusSwitchingProtocols
	}
	for i, tc := range []struct {
		xff  string
		want int
	}{
		{"198.51.100.1", http.StatusSwitchingProtocols},
		{"198.51.100.1", http.StatusSwitchingProtocols},
		{"198.51.100.1", http.StatusTooManyRequests},
		{"198.51.100.2", http.StatusSwitchingProtocols},
		{"", http.StatusSwitchingProtocols}, // the proxy's own address
	} {
		if got := dial(tc.xff); got != tc.want {
			t.Fatalf("socket %d from %q: %d, want %d", i, tc.xff, got, tc.want)
		}
	}
}
