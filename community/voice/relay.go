package voice

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
)

// The embedded TURN server relays for members, towards the Internet and the
// SFU only. A relay that reached this host's other services, or the private
// network behind it, would give every member a way in from outside (issue
// 10: a member's credentials carried a datagram to a UDP service on
// 127.0.0.1 and back).

// Errors of the relay; pion turns them into TURN error responses.
var (
	ErrPeerDenied  = errors.New("voice: TURN does not relay to that address")
	ErrTURNQuota   = errors.New("voice: TURN allocation quota reached")
	ErrTCPRelay    = errors.New("voice: TURN relays UDP only")
	errNoRelayUser = errors.New("voice: TURN allocation without a user")
)

// deniedPrefixes are the ranges netip has no predicate for. Loopback,
// RFC 1918, ULA (fc00::/7), link-local, multicast and unspecified are
// checked with netip's own predicates in deniedIP.
var deniedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"; Linux delivers 0.x to the host itself
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT: a provider's or a tailnet's inside
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking, used as inside space
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (and ::, ::1)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("fec0::/10"),       // site-local: deprecated, still routed by some
}

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixToFo = netip.MustParsePrefix("2002::/16")
)

// deniedIP reports whether ip belongs to this host's or a private
// network's address space rather than the Internet's. IPv6 forms that
// carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
func deniedIP(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range deniedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	if b := ip.As16(); nat64.Contains(ip) {
		return deniedIP(netip.AddrFrom4([4]byte(b[12:16])))
	} else if sixToFo.Contains(ip) {
		return deniedIP(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return false
}

// ownAddrsEvery is how long a snapshot of the host's addresses is trusted:
// interfaces change (DHCP, a VPN coming up), but not per packet.
const ownAddrsEvery = 30 * time.Second

// relayPolicy says where relays may send and whom they may hear: anywhere
// on the Internet except this host, and among the denied addresses only
// the SFU's media address itself, which is what TURN is for here.
type relayPolicy struct {
	// media lists the SFU's media addresses (nil: there are none).
	media func() []netip.AddrPort
	// ours are addresses of this host no interface shows: the public IPs
	// a NAT 1:1 router forwards to it.
	ours []netip.Addr

	mu   sync.Mutex
	snap atomic.Pointer[relaySnapshot]
}

type relaySnapshot struct {
	at      time.Time
	own     map[netip.Addr]bool
	media   map[netip.AddrPort]bool
	mediaIP map[netip.Addr]bool
}

func (p *relayPolicy) current() *relaySnapshot {
	if s := p.snap.Load(); s != nil && time.Since(s.at) < ownAddrsEvery {
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.snap.Load(); s != nil && time.Since(s.at) < ownAddrsEvery {
		return s
	}
	s := &relaySnapshot{at: time.Now(), own: map[netip.Addr]bool{}, media: map[netip.AddrPort]bool{}, mediaIP: map[netip.Addr]bool{}}
	for _, ip := range interfaceAddrs(true) {
		s.own[ip] = true
	}
	for _, ip := range p.ours {
		s.own[ip.Unmap()] = true
	}
	if p.media != nil {
		for _, ap := range p.media() {
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			s.media[ap] = true
			s.mediaIP[ap.Addr()] = true
		}
	}
	p.snap.Store(s)
	return s
}

// allowsIP decides a permission (TURN permissions name an IP, no port):
// the SFU's IPs pass here, and allows then holds each datagram to its port.
func (p *relayPolicy) allowsIP(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	s := p.current()
	return s.mediaIP[ip] || (!deniedIP(ip) && !s.own[ip])
}

// allows decides one datagram to or from ap.
func (p *relayPolicy) allows(ap netip.AddrPort) bool {
	ip := ap.Addr().WithZone("").Unmap()
	s := p.current()
	return s.media[netip.AddrPortFrom(ip, ap.Port())] || (!deniedIP(ip) && !s.own[ip])
}

// interfaceAddrs lists this host's addresses, loopback ones only when asked.
func interfaceAddrs(loopback bool) []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || (!loopback && ip.Unmap().IsLoopback()) {
			continue
		}
		out = append(out, ip.Unmap())
	}
	return out
}

// MediaAddrs are the addresses the SFU's ICE candidates carry: its UDP
// mux's port on the IP it is bound to (every interface's when it is bound
// to all), and on the public IPs it announces. TURN relays may reach these
// even where they are private.
func (s *SFU) MediaAddrs() []netip.AddrPort {
	ua, ok := s.conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil
	}
	bound := ua.AddrPort()
	port := bound.Port()
	var ips []netip.Addr
	if ip := bound.Addr().Unmap(); !ip.IsUnspecified() {
		ips = append(ips, ip)
	} else {
		ips = interfaceAddrs(s.cfg.IncludeLoopback)
	}
	for _, p := range s.cfg.PublicIPs {
		if ip, err := netip.ParseAddr(p); err == nil {
			ips = append(ips, ip.Unmap())
		}
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip, port))
	}
	return out
}

// relayGenerator opens relay sockets that obey the policy and counts them
// per user against the quota. Only UDP relays: WebRTC needs no other, and
// a TCP relay (RFC 6062) would dial out to any port.
type relayGenerator struct {
	static *turn.RelayAddressGeneratorStatic
	policy *relayPolicy
	quota  int
	// dropped counts datagrams the policy refused, either way.
	dropped *atomic.Int64

	mu     sync.Mutex
	byUser map[string]map[*relayConn]bool
}

func (g *relayGenerator) Validate() error { return g.static.Validate() }

func (g *relayGenerator) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	// pion allocates without a user only to probe for an EVEN-PORT, which
	// WebRTC never asks for; refusing keeps a request from opening 128
	// sockets before the quota is looked at.
	if c.UserID == "" {
		return nil, nil, errNoRelayUser
	}
	// Held while the socket opens, so that two allocations racing in on
	// two TCP connections cannot both take the last place.
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.byUser[c.UserID]) >= g.quota {
		return nil, nil, ErrTURNQuota
	}
	conn, addr, err := g.static.AllocatePacketConn(c)
	if err != nil {
		return nil, nil, err
	}
	rc := &relayConn{PacketConn: conn, policy: g.policy, dropped: g.dropped}
	rc.release = func() { g.forget(c.UserID, rc) }
	if g.byUser[c.UserID] == nil {
		g.byUser[c.UserID] = map[*relayConn]bool{}
	}
	g.byUser[c.UserID][rc] = true
	return rc, addr, nil
}

func (g *relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, ErrTCPRelay
}

func (g *relayGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, ErrTCPRelay
}

func (g *relayGenerator) forget(user string, rc *relayConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.byUser[user], rc)
	if len(g.byUser[user]) == 0 {
		delete(g.byUser, user)
	}
}

// count is how many relays user holds.
func (g *relayGenerator) count(user string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.byUser[user])
}

// users lists who holds relays.
func (g *relayGenerator) users() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.byUser))
	for u := range g.byUser {
		out = append(out, u)
	}
	return out
}

// closeUser closes user's relays; pion then drops their allocations.
func (g *relayGenerator) closeUser(user string) int {
	g.mu.Lock()
	conns := make([]*relayConn, 0, len(g.byUser[user]))
	for rc := range g.byUser[user] {
		conns = append(conns, rc)
	}
	g.mu.Unlock()
	for _, rc := range conns {
		rc.Close()
	}
	return len(conns)
}

// relayConn is one allocation's relay socket. pion checks permissions by
// IP only, so the port of the SFU's address is held here, per datagram.
type relayConn struct {
	net.PacketConn
	policy  *relayPolicy
	dropped *atomic.Int64
	once    sync.Once
	release func()
}

func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || !c.policy.allows(ua.AddrPort()) {
		c.dropped.Add(1)
		return 0, ErrPeerDenied
	}
	return c.PacketConn.WriteTo(p, addr)
}

// ReadFrom passes on datagrams from allowed addresses only: a permission
// for the SFU's IP must not let the host's other services talk back.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if ua, ok := addr.(*net.UDPAddr); ok && c.policy.allows(ua.AddrPort()) {
			return n, addr, nil
		}
		c.dropped.Add(1)
	}
}

func (c *relayConn) Close() error {
	c.once.Do(c.release)
	return c.PacketConn.Close()
}
