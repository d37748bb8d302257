package voice

import (
	"net/netip"
	"testing"
)

// TestRelayRefusesPrivateAndHostAddresses: every address space the issue
// names, in each form an attacker could write it, is refused as a peer.
func TestRelayRefusesPrivateAndHostAddresses(t *testing.T) {
	denied := []string{
		"127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1",
		"10.0.0.1", "::ffff:10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "::ffff:192.168.0.1",
		"100.64.0.1", "100.127.255.254",
		"fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0", "169.254.169.254", "::ffff:169.254.169.254",
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff05::2", "255.255.255.255",
		"0.0.0.0", "::", "0.1.2.3", "::ffff:0.0.0.0",
		"::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a00:1", "2002:7f00:1::1", "2002:c0a8:101::1", "fec0::1",
	}
	for _, s := range denied {
		if !deniedIP(netip.MustParseAddr(s)) {
			t.Errorf("%s is relayed to", s)
		}
	}
	public := []string{"8.8.8.8", "203.0.113.7", "1.1.1.1", "2001:4860:4860::8888", "64:ff9b::808:808", "2002:808:808::1", "172.32.0.1", "100.128.0.1"}
	for _, s := range public {
		if deniedIP(netip.MustParseAddr(s)) {
			t.Errorf("public %s is refused", s)
		}
	}
}

// TestRelayReachesOnlyTheSFUPortOnDeniedAddresses: the SFU's own address
// is the one exception, port included; its IP is permitted, the host's
// other services on that IP and its other addresses are not.
func TestRelayReachesOnlyTheSFUPortOnDeniedAddresses(t *testing.T) {
	sfu := netip.MustParseAddrPort("127.0.0.1:1984")
	p := &relayPolicy{
		media: func() []netip.AddrPort { return []netip.AddrPort{sfu} },
		ours:  []netip.Addr{netip.MustParseAddr("198.51.100.9")},
	}
	cases := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:1984", true},
		{"[::ffff:127.0.0.1]:1984", true},
		{"127.0.0.1:1985", false},
		{"127.0.0.1:53", false},
		{"127.0.0.2:1984", false},
		{"10.0.0.1:1984", false},
		// A public address of this host (NAT 1:1) is the host too.
		{"198.51.100.9:22", false},
		{"203.0.113.7:3478", true},
	}
	for _, c := range cases {
		if got := p.allows(netip.MustParseAddrPort(c.addr)); got != c.ok {
			t.Errorf("datagram to %s allowed=%v, want %v", c.addr, got, c.ok)
		}
	}
	for ip, ok := range map[string]bool{"127.0.0.1": true, "127.0.0.2": false, "192.168.0.1": false, "198.51.100.9": false, "203.0.113.7": true} {
		if got := p.allowsIP(netip.MustParseAddr(ip)); got != ok {
			t.Errorf("permission for %s = %v, want %v", ip, got, ok)
		}
	}
	for _, own := range interfaceAddrs(false) {
		if p.allowsIP(own) {
			t.Errorf("permission for this host's own %s", own)
		}
	}
}
