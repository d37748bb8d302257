package api

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpSession is a session over one end of a loopback TCP connection,
// without HTTP, so that Wake can write inline as on a served socket. No
// writer runs until the test starts one.
func tcpSession(t *testing.T, queue int) (*Session, *net.TCPConn) {
	t.Helper()
	if !inlineWrites {
		t.Skip("inline writes are not built on this system")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	server := c.(*net.TCPConn)
	raw, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	s := connSession(t, server, queue)
	s.raw = raw
	s.cfg.WriteTimeout = 5 * time.Second
	return s, peer
}

// numbered is a text frame of n bytes whose payload starts with i.
func numbered(i, n int) []byte {
	p := make([]byte, max(n, 8))
	binary.BigEndian.PutUint64(p, uint64(i))
	for j := 8; j < len(p); j++ {
		p[j] = byte(i + j)
	}
	return textFrame(p)
}

// readNumbered reads one frame and checks it is numbered(i, n), byte for byte.
func readNumbered(t *testing.T, r *bufio.Reader, i, n int) {
	t.Helper()
	op, p := readFrame(t, r)
	if op != opText || len(p) != max(n, 8) {
		t.Fatalf("frame %d: op %d, %d bytes, want text of %d", i, op, len(p), max(n, 8))
	}
	if got := int(binary.BigEndian.Uint64(p)); got != i {
		t.Fatalf("frame %d arrived where %d was due", got, i)
	}
	for j := 8; j < len(p); j++ {
		if p[j] != byte(i+j) {
			t.Fatalf("frame %d: byte %d is another frame's", i, j)
		}
	}
}

// TestWakeWritesInline: a run's frames reach the peer from the waker
// itself, with no writer goroutine at all, parked or never started, and
// none is started or woken for them.
func TestWakeWritesInline(t *testing.T) {
	for _, parked := range []bool{false, true} {
		t.Run(fmt.Sprintf("parked=%v", parked), func(t *testing.T) {
			s, peer := tcpSession(t, 64)
			s.parked = parked // no writer runs: one started would find no ping timer and panic
			a := &communityAPI{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			ms := []*memberSession{{s: s, userID: "u"}}
			for i := range 3 {
				a.broadcast(ms, "", functionOut{Codec: "text", Name: "c", Result: "message_live", Payload: i})
			}
			a.drained()
			r := bufio.NewReader(peer)
			for range 3 {
				if op, _ := readFrame(t, r); op != opText {
					t.Fatalf("op %d, want text", op)
				}
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.wake) != 0 || s.parked != parked || s.writing || s.queued != 0 || len(s.queue) != 0 {
				t.Fatalf("after an inline write: wake %d, parked %v, writing %v, %d bytes and %d frames queued",
					len(s.wake), s.parked, s.writing, s.queued, len(s.queue))
			}
		})
	}
}

// TestInlineRemainderIsFinishedInOrder: frames larger than the kernel
// takes at once leave a tail that the writer finishes, and every frame,
// those queued after it too, arrives whole and in order.
func TestInlineRemainderIsFinishedInOrder(t *testing.T) {
	s, peer := tcpSession(t, 64)
	s.nc.(*net.TCPConn).SetWriteBuffer(64 << 10)
	peer.SetReadBuffer(64 << 10)
	var mu sync.Mutex
	partial := 0
	s.onInline = func(sent, offered int) {
		mu.Lock()
		defer mu.Unlock()
		if sent < offered {
			partial++
		}
	}
	go s.writeLoop()
	const frames, size = 6, 1 << 20
	for i := range frames {
		s.SendLater(numbered(i, size))
		s.Wake()
	}
	mu.Lock()
	if partial == 0 {
		t.Fatalf("no inline write stopped short with %d frames of %d bytes unread: the test tests nothing", frames, size)
	}
	mu.Unlock()
	r := bufio.NewReader(peer)
	for i := range frames {
		readNumbered(t, r, i, size)
	}
	s.Close(CloseNormal, "bye")
	op, p := readFrame(t, r)
	if op != opClose || binary.BigEndian.Uint16(p) != CloseNormal {
		t.Fatalf("after the frames: op %d %q, want the close", op, p)
	}
}

// TestInlineAndWriterShareTheSocket: replies through the writer and runs
// written inline, from two goroutines at once, never interleave their
// bytes, and each keeps its own order.
func TestInlineAndWriterShareTheSocket(t *testing.T) {
	s, peer := tcpSession(t, 0)
	go s.writeLoop()
	const each = 2000
	frame := func(src byte, i int) []byte {
		return textFrame(fmt.Appendf(nil, "%c%06d%s", src, i, make([]byte, i%700)))
	}
	go func() {
		for i := range each {
			s.Send(frame('w', i))
		}
	}()
	go func() {
		for i := range each {
			if s.SendLater(frame('i', i)) || i%3 == 0 {
				s.Wake()
			}
		}
		s.Wake()
	}()
	r := bufio.NewReader(peer)
	next := map[byte]int{}
	for range 2 * each {
		op, p := readFrame(t, r)
		if op != opText || len(p) < 7 {
			t.Fatalf("op %d payload %q", op, p)
		}
		src, i := p[0], 0
		fmt.Sscanf(string(p[1:7]), "%d", &i)
		if (src != 'w' && src != 'i') || i != next[src] || len(p) != 7+i%700 {
			t.Fatalf("frame %q (%d bytes) where %c%06d was due", p[:7], len(p), src, next[src])
		}
		next[src]++
	}
}

// TestInlineStalledReaderIsClosed: a peer that reads nothing cannot block
// the waker, and its queue cap still closes it with 1008.
func TestInlineStalledReaderIsClosed(t *testing.T) {
	s, _ := tcpSession(t, 8)
	go s.writeLoop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		frame := textFrame(make([]byte, 64<<10))
		for range 1000 {
			if !s.SendLater(frame) && s.isClosing() {
				return
			}
			s.Wake()
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the waker blocked on a peer that does not read")
	}
	s.mu.Lock()
	code := s.closeCode
	s.mu.Unlock()
	if code != ClosePolicy {
		t.Fatalf("close code %d, want %d", code, ClosePolicy)
	}
}

// TestInlineWriteAfterTheDeadline: a socket whose write deadline passed
// while it was quiet still writes inline (the deadline is moved first),
// rather than failing and being closed.
func TestInlineWriteAfterTheDeadline(t *testing.T) {
	s, peer := tcpSession(t, 8)
	s.writeDeadline = time.Now().Add(-time.Second)
	s.nc.SetWriteDeadline(s.writeDeadline)
	s.SendLater(numbered(7, 100))
	s.Wake()
	readNumbered(t, bufio.NewReader(peer), 7, 100)
	if s.isClosing() {
		t.Fatal("an inline write after the deadline closed the socket")
	}
}

// TestInlineWriteToAResetPeerEndsTheSession: the kernel's refusal of an
// inline write closes the session through its writer.
func TestInlineWriteToAResetPeerEndsTheSession(t *testing.T) {
	s, peer := tcpSession(t, 8)
	go s.writeLoop()
	peer.SetLinger(0) // close with a reset
	peer.Close()
	for i := 0; !s.isClosing(); i++ {
		if i == 1000 {
			t.Fatal("1,000 inline writes to a reset peer and the session is still open")
		}
		s.SendLater(numbered(i, 100))
		s.Wake()
	}
	select {
	case <-s.writerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer did not end the session")
	}
}

// TestWakeAllSplits: a run split among goroutines still wakes every
// socket once.
func TestWakeAllSplits(t *testing.T) {
	var ss []*Session
	var peers []net.Conn
	for range 10 {
		s, peer := pipeSession(t, 8)
		go s.writeLoop()
		s.SendLater(numbered(1, 10))
		ss, peers = append(ss, s), append(peers, peer)
	}
	wakeAll(ss, 3)
	for _, peer := range peers {
		readNumbered(t, bufio.NewReader(peer), 1, 10)
	}
}

// TestInlineWriteDoesNotAllocate: a delivery written inline allocates
// nothing (the callback and its iovecs are pooled, the queue's array
// reused).
func TestInlineWriteDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's pool drops items")
	}
	s, peer := tcpSession(t, 64)
	frame := numbered(1, 100)
	go func() {
		buf := make([]byte, len(frame))
		for {
			if _, err := io.ReadFull(peer, buf); err != nil {
				return
			}
		}
	}()
	s.SendLater(frame)
	s.Wake() // the first fills the pool
	if n := testing.AllocsPerRun(1000, func() {
		s.SendLater(frame)
		s.Wake()
	}); n != 0 {
		t.Fatalf("%.1f allocations per inline write", n)
	}
}
