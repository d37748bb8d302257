package voice

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// maxBatch bounds how many datagrams one sendmmsg carries: one packet
// forwarded to a full room of subscribers, with room to spare.
const maxBatch = 64

// batchConn is the SFU's UDP socket as pion's ICE mux sees it. A packet
// forwarded to n subscribers is n datagrams written one after the other
// by the same goroutine; between hold and release they are queued and
// leave in one sendmmsg instead of n sendto calls, which were most of a
// forwarded packet's cost. Writes outside a hold (STUN, RTCP, another
// forwarder's when none holds) go straight out, so nothing waits longer
// than one forwarding loop.
//
// Reads and writes go through udpIO, which on Linux makes them without
// telling the Go scheduler (docs/BENCHMARKS.md, "Voice without waking the
// runtime's monitor").
type batchConn struct {
	*net.UDPConn
	udp udpIO

	mu    sync.Mutex
	holds int
	// queued datagrams are bufs[:queued], bound for to[:queued]. bufs are
	// copies (pion reuses its buffer once WriteTo returns), kept for the
	// next batch.
	queued int
	bufs   [][]byte
	to     []netip.AddrPort
}

func newBatchConn(c *net.UDPConn) (*batchConn, error) {
	udp, err := newUDPIO(c)
	if err != nil {
		return nil, fmt.Errorf("voice: media socket: %w", err)
	}
	return &batchConn{UDPConn: c, udp: udp}, nil
}

// hold starts queueing; every hold is followed by a release.
func (b *batchConn) hold() {
	b.mu.Lock()
	b.holds++
	b.mu.Unlock()
}

// release sends what is queued once no forwarder holds the queue.
func (b *batchConn) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holds--
	if b.holds > 0 || b.queued == 0 {
		return
	}
	b.udp.writeBatch(b.bufs[:b.queued], b.to[:b.queued])
	b.queued = 0
}

// WriteToAddrPort is the write pion's mux makes (ice.AddrPortReaderWriter).
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	b.mu.Lock()
	if b.holds > 0 && b.queued < maxBatch && b.udp.reaches(addr) {
		if b.queued == len(b.bufs) {
			b.bufs = append(b.bufs, make([]byte, 0, 1500))
			b.to = append(b.to, netip.AddrPort{})
		}
		b.bufs[b.queued] = append(b.bufs[b.queued][:0], p...)
		b.to[b.queued] = addr
		b.queued++
		b.mu.Unlock()
		return len(p), nil
	}
	b.mu.Unlock()
	return b.udp.writeTo(p, addr)
}

// ReadFromAddrPort completes ice.AddrPortReaderWriter.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.udp.readFrom(p)
}

// WriteTo is net.PacketConn's write, for any caller that does not use
// WriteToAddrPort.
func (b *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return b.UDPConn.WriteTo(p, addr)
	}
	return b.WriteToAddrPort(p, ua.AddrPort())
}
