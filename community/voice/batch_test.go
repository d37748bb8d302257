package voice

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

func listenUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("no %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func batchConnOn(t *testing.T, c *net.UDPConn) *batchConn {
	t.Helper()
	b, err := newBatchConn(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, c *net.UDPConn, n int) []string {
	t.Helper()
	var got []string
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range n {
		k, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		got = append(got, string(buf[:k]))
	}
	return got
}

// TestBatchConnQueuesBetweenHoldAndRelease: what a forwarder writes while
// it holds the conn waits, copied, and leaves in order at the release;
// what is written outside a hold goes at once.
func TestBatchConnQueuesBetweenHoldAndRelease(t *testing.T) {
	sfu := batchConnOn(t, listenUDP(t, "127.0.0.1:0"))
	peer := listenUDP(t, "127.0.0.1:0")
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()

	if _, err := sfu.WriteToAddrPort([]byte("alone"), to); err != nil {
		t.Fatal(err)
	}
	if sfu.queued != 0 {
		t.Fatal("a write outside a hold was queued")
	}
	if got := readAll(t, peer, 1); got[0] != "alone" {
		t.Fatalf("got %q", got)
	}

	sfu.hold()
	buf := []byte("packet 0")
	for i := range 9 {
		copy(buf, fmt.Sprintf("packet %d", i))
		if n, err := sfu.WriteToAddrPort(buf, to); n != len(buf) || err != nil {
			t.Fatalf("queued write: %d, %v", n, err)
		}
	}
	if sfu.queued != 9 {
		t.Fatalf("%d datagrams queued during the hold, want 9", sfu.queued)
	}
	sfu.release()
	if sfu.queued != 0 {
		t.Fatal("the queue was not sent at the release")
	}
	got := readAll(t, peer, 9)
	for i, g := range got {
		// The caller's buffer was reused for every write: each datagram
		// must be the copy taken when it was written.
		if want := fmt.Sprintf("packet %d", i); g != want {
			t.Fatalf("datagram %d is %q, want %q", i, g, want)
		}
	}
}

// TestBatchConnNestedHolds: two forwarders hold at once; the queue goes
// when the last one lets go.
func TestBatchConnNestedHolds(t *testing.T) {
	sfu := batchConnOn(t, listenUDP(t, "127.0.0.1:0"))
	peer := listenUDP(t, "127.0.0.1:0")
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	sfu.hold()
	sfu.hold()
	sfu.WriteToAddrPort([]byte("a"), to)
	sfu.release()
	if sfu.queued != 1 {
		t.Fatal("released while another forwarder still held the conn")
	}
	// net.PacketConn's WriteTo queues the same way.
	sfu.WriteTo([]byte("b"), net.UDPAddrFromAddrPort(to))
	if sfu.queued != 2 {
		t.Fatal("WriteTo during a hold went out at once")
	}
	sfu.release()
	if got := readAll(t, peer, 2); got[0] != "a" || got[1] != "b" {
		t.Fatalf("got %q", got)
	}
}

// TestBatchConnFamilies: a dual-stack IPv6 socket queues IPv6 peers and
// IPv4 ones (as mapped addresses) alike; an IPv4 socket refuses an IPv6
// peer with an error rather than queueing what it cannot address.
func TestBatchConnFamilies(t *testing.T) {
	v6 := batchConnOn(t, listenUDP(t, "[::]:0"))
	v6peer := listenUDP(t, "[::1]:0")
	v4peer := listenUDP(t, "127.0.0.1:0")
	v6.hold()
	v6.WriteToAddrPort([]byte("six"), v6peer.LocalAddr().(*net.UDPAddr).AddrPort())
	if _, err := v6.WriteToAddrPort([]byte("four"), v4peer.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatalf("IPv4 peer from a dual-stack socket: %v", err)
	}
	if v6.queued != 2 {
		t.Fatalf("%d queued, want both", v6.queued)
	}
	v6.release()
	if got := readAll(t, v6peer, 1); got[0] != "six" {
		t.Fatalf("got %q", got)
	}
	if got := readAll(t, v4peer, 1); got[0] != "four" {
		t.Fatalf("got %q", got)
	}

	// A wildcard IPv4 listener is a dual-stack socket too.
	any4 := batchConnOn(t, listenUDP(t, "0.0.0.0:0"))
	any4.hold()
	any4.WriteToAddrPort([]byte("four again"), v4peer.LocalAddr().(*net.UDPAddr).AddrPort())
	any4.release()
	if got := readAll(t, v4peer, 1); got[0] != "four again" {
		t.Fatalf("got %q", got)
	}

	v4 := batchConnOn(t, listenUDP(t, "127.0.0.1:0"))
	v4.hold()
	if _, err := v4.WriteToAddrPort([]byte("six"), v6peer.LocalAddr().(*net.UDPAddr).AddrPort()); err == nil {
		t.Fatal("an IPv4 socket wrote to an IPv6 peer")
	}
	if v4.queued != 0 {
		t.Fatal("an IPv4 socket queued an IPv6 peer")
	}
	v4.release()
}

// TestBatchConnReads: what a peer sends is read with the peer's address,
// an IPv4 peer of a dual-stack socket as a mapped address, as the net
// package gives it; a closed socket ends the read with net.ErrClosed,
// which stops pion's mux.
func TestBatchConnReads(t *testing.T) {
	for _, tc := range []struct{ listen, peer string }{
		{"127.0.0.1:0", "127.0.0.1:0"},
		{"[::]:0", "[::1]:0"},
		{"[::]:0", "127.0.0.1:0"},
	} {
		t.Run(tc.listen+" from "+tc.peer, func(t *testing.T) {
			sock := listenUDP(t, tc.listen)
			sfu := batchConnOn(t, sock)
			peer := listenUDP(t, tc.peer)
			port := sock.LocalAddr().(*net.UDPAddr).Port
			to := netip.AddrPortFrom(peer.LocalAddr().(*net.UDPAddr).AddrPort().Addr(), uint16(port))
			if _, err := peer.WriteToUDPAddrPort([]byte("hello"), to); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			n, from, err := sfu.ReadFromAddrPort(buf)
			if err != nil || string(buf[:n]) != "hello" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
			if want := peer.LocalAddr().(*net.UDPAddr).AddrPort(); from.Addr().Unmap() != want.Addr().Unmap() || from.Port() != want.Port() {
				t.Fatalf("from %v, want %v", from, want)
			}
			// A read that waits is woken by the close.
			done := make(chan error)
			go func() {
				_, _, err := sfu.ReadFromAddrPort(buf)
				done <- err
			}()
			sock.Close()
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read on a closed socket: %v", err)
			}
		})
	}
}

// TestBatchConnSkipsARefusedDatagram: a datagram the kernel refuses in
// the middle of a batch (port 0 is EINVAL) is dropped, and the ones before
// and after it still go, in order.
func TestBatchConnSkipsARefusedDatagram(t *testing.T) {
	sfu := batchConnOn(t, listenUDP(t, "127.0.0.1:0"))
	peer := listenUDP(t, "127.0.0.1:0")
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	sfu.hold()
	sfu.WriteToAddrPort([]byte("before"), to)
	sfu.WriteToAddrPort([]byte("refused"), netip.MustParseAddrPort("127.0.0.1:0"))
	sfu.WriteToAddrPort([]byte("after"), to)
	sfu.release()
	if got := readAll(t, peer, 2); got[0] != "before" || got[1] != "after" {
		t.Fatalf("got %q", got)
	}
}

// TestBatchConnBoundsItsQueue: past maxBatch datagrams in one hold, the
// rest go out at once rather than growing the queue.
func TestBatchConnBoundsItsQueue(t *testing.T) {
	sfu := batchConnOn(t, listenUDP(t, "127.0.0.1:0"))
	peer := listenUDP(t, "127.0.0.1:0")
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	sfu.hold()
	for range maxBatch + 5 {
		sfu.WriteToAddrPort([]byte("x"), to)
	}
	if sfu.queued != maxBatch {
		t.Fatalf("%d queued, want %d", sfu.queued, maxBatch)
	}
	sfu.release()
	readAll(t, peer, maxBatch+5)
}
