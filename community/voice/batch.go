package voice

import (
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/ipv4"
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
// Only datagrams of the socket's own family are queued: a dual-stack
// IPv6 socket reaches IPv4 peers through mapped addresses, which
// x/net's batch marshals as AF_INET; those go out one by one.
type batchConn struct {
	*net.UDPConn
	batch *ipv4.PacketConn
	v4    bool // the socket is AF_INET: every destination is IPv4

	mu    sync.Mutex
	holds int
	queue []ipv4.Message
	// bufs are the queued datagrams' copies (pion reuses its buffer once
	// WriteTo returns), kept for the next batch.
	bufs [][]byte
}

func newBatchConn(c *net.UDPConn) *batchConn {
	v4 := false
	if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
		v4 = ua.IP.To4() != nil
	}
	return &batchConn{UDPConn: c, batch: ipv4.NewPacketConn(c), v4: v4}
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
	if b.holds > 0 || len(b.queue) == 0 {
		return
	}
	for sent := 0; sent < len(b.queue); {
		n, err := b.batch.WriteBatch(b.queue[sent:], 0)
		if err != nil {
			// The datagram at sent+n was refused (a peer address gone
			// bad): UDP is best-effort, so it is dropped and the rest
			// still go.
			n++
		}
		sent += n
	}
	clear(b.queue)
	b.queue = b.queue[:0]
}

func (b *batchConn) queueable(addr netip.AddrPort) bool {
	return b.holds > 0 && len(b.queue) < maxBatch && addr.Addr().Is4() == b.v4 && !addr.Addr().Is4In6()
}

func (b *batchConn) enqueue(p []byte, addr net.Addr) {
	i := len(b.queue)
	if i == len(b.bufs) {
		b.bufs = append(b.bufs, make([]byte, 0, 1500))
	}
	b.bufs[i] = append(b.bufs[i][:0], p...)
	b.queue = append(b.queue, ipv4.Message{Buffers: [][]byte{b.bufs[i]}, Addr: addr})
}

// WriteToAddrPort is the write pion's mux makes (ice.AddrPortReaderWriter).
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	b.mu.Lock()
	if b.queueable(addr) {
		b.enqueue(p, net.UDPAddrFromAddrPort(addr))
		b.mu.Unlock()
		return len(p), nil
	}
	b.mu.Unlock()
	return b.UDPConn.WriteToUDPAddrPort(p, addr)
}

// ReadFromAddrPort completes ice.AddrPortReaderWriter.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.UDPConn.ReadFromUDPAddrPort(p)
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
