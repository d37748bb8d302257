//go:build !linux

package voice

import (
	"net"
	"net/netip"
)

// udpIO elsewhere is the net package's, one datagram per call.
type udpIO struct{ c *net.UDPConn }

func newUDPIO(c *net.UDPConn) (udpIO, error) { return udpIO{c: c}, nil }

func (u *udpIO) reaches(netip.AddrPort) bool { return true }

func (u *udpIO) readFrom(p []byte) (int, netip.AddrPort, error) {
	return u.c.ReadFromUDPAddrPort(p)
}

func (u *udpIO) writeTo(p []byte, to netip.AddrPort) (int, error) {
	return u.c.WriteToUDPAddrPort(p, to)
}

func (u *udpIO) writeBatch(bufs [][]byte, to []netip.AddrPort) {
	for i, b := range bufs {
		u.c.WriteToUDPAddrPort(b, to[i])
	}
}
