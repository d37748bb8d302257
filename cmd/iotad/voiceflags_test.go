package main

import (
	"net/netip"
	"testing"
)

// TestTURNNeverAnnouncesLoopbackByDefault: with no --public-ip, TURN used
// to tell every caller to relay through 127.0.0.1. Loopback now comes
// only from a flag that names it.
func TestTURNNeverAnnouncesLoopbackByDefault(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	cases := []struct {
		name      string
		publicIPs []string
		turnAddr  string
		own       []netip.Addr
		want      string // "" means an error
	}{
		{"public IP given", []string{"203.0.113.7"}, ":3478", addrs("127.0.0.1", "10.0.0.5"), "203.0.113.7"},
		{"loopback asked for", []string{"127.0.0.1"}, ":3478", addrs("10.0.0.5"), "127.0.0.1"},
		{"bound to loopback", nil, "127.0.0.1:3478", addrs("10.0.0.5"), "127.0.0.1"},
		{"bound to an address", nil, "192.168.1.5:3478", addrs("10.0.0.5"), "192.168.1.5"},
		{"public interface first", nil, ":3478", addrs("127.0.0.1", "fe80::1", "10.0.0.5", "198.51.100.2"), "198.51.100.2"},
		{"private interface", nil, "0.0.0.0:3478", addrs("127.0.0.1", "169.254.3.4", "10.0.0.5"), "10.0.0.5"},
		{"only loopback", nil, ":3478", addrs("127.0.0.1", "::1"), ""},
	}
	for _, c := range cases {
		got, err := relayIP(c.publicIPs, c.turnAddr, c.own)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: announced %s, want an error", c.name, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %s", c.name, got, err, c.want)
		}
	}
}
