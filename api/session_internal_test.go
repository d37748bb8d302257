package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// pipeSession is a session over one end of a net.Pipe, without HTTP.
func pipeSession(t *testing.T, queue int) (*Session, net.Conn) {
	t.Helper()
	server, peer := net.Pipe()
	t.Cleanup(func() { peer.Close() })
	return connSession(t, server, queue), peer
}

// connSession is a session over nc with a send queue of queue frames and
// a write timeout of a second; no writer runs until the test starts one.
func connSession(t *testing.T, nc net.Conn, queue int) *Session {
	t.Helper()
	cfg := DefaultSocketConfig()
	cfg.SendQueue = queue
	cfg.WriteTimeout = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		nc: nc, cfg: &cfg, baseLog: slog.New(slog.NewTextHandler(io.Discard, nil)), ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), writerDone: make(chan struct{}), now: time.Now,
		limiter: rate.NewLimiter(rate.Inf, 1),
	}
	t.Cleanup(func() { cancel(); nc.Close() })
	return s
}

// TestSlowConsumerIsDropped: a peer that never reads cannot block Send;
// once the queue is full the session closes with 1008 and the metric counts it.
func TestSlowConsumerIsDropped(t *testing.T) {
	s, _ := pipeSession(t, 8)
	go s.writeLoop()
	before := metrics.slowConsumers.Load()
	done := make(chan int)
	go func() {
		accepted := 0
		for i := 0; i < 100; i++ {
			if s.Send(textFrame([]byte(`{"type":"update"}`))) {
				accepted++
			}
		}
		done <- accepted
	}()
	select {
	case accepted := <-done:
		// The writer may have taken one batch off the queue before the
		// pipe blocked it.
		if accepted < 8 || accepted > 2*8+1 {
			t.Fatalf("%d frames accepted with a queue of 8", accepted)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked on a reader that does not read")
	}
	if got := metrics.slowConsumers.Load() - before; got != 1 {
		t.Fatalf("slow consumer counted %d times", got)
	}
	s.mu.Lock()
	code := s.closeCode
	s.mu.Unlock()
	if code != ClosePolicy {
		t.Fatalf("close code %d", code)
	}
	if s.Send(textFrame([]byte("{}"))) {
		t.Fatal("a closed session accepted a frame")
	}
}

// readFrame reads one server frame (unmasked) from r.
func readFrame(t *testing.T, r *bufio.Reader) (op byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatal(err)
	}
	if h[0]&finBit == 0 || h[1]&0x80 != 0 {
		t.Fatalf("header %x: want FIN set and no mask", h)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatal(err)
	}
	return h[0] & 0x0f, payload
}

// TestFramesInOrder: frames of every length class arrive byte-exact and in
// order, then the close frame.
func TestFramesInOrder(t *testing.T) {
	s, peer := pipeSession(t, 64)
	go s.writeLoop()
	lengths := []int{0, 1, 125, 126, 65535, 65536, 70000}
	go func() {
		for i, n := range lengths {
			p := make([]byte, n)
			for j := range p {
				p[j] = byte(i)
			}
			s.Send(textFrame(p))
		}
		s.Close(CloseNormal, "bye")
	}()
	r := bufio.NewReader(peer)
	for i, n := range lengths {
		op, p := readFrame(t, r)
		if op != opText || len(p) != n {
			t.Fatalf("frame %d: op %d len %d, want text len %d", i, op, len(p), n)
		}
		for _, b := range p {
			if b != byte(i) {
				t.Fatalf("frame %d carries bytes of another frame", i)
			}
		}
	}
	op, p := readFrame(t, r)
	if op != opClose || binary.BigEndian.Uint16(p) != CloseNormal || string(p[2:]) != "bye" {
		t.Fatalf("close frame %d %q", op, p)
	}
}

// TestSlowConsumerIsDroppedByBytes: few frames, but big ones: the byte
// bound closes the socket with 1008 before the frame bound is near, and
// what is queued never passes it.
func TestSlowConsumerIsDroppedByBytes(t *testing.T) {
	s, _ := pipeSession(t, 1000)
	s.cfg.SendQueueBytes = 10 << 10
	// No writer runs: nothing leaves the queue, as with a peer that stopped
	// reading once the kernel's buffers are full.
	before := metrics.slowConsumers.Load()
	frame := textFrame(make([]byte, 3<<10))
	accepted := 0
	for range 10 {
		if s.Send(frame) {
			accepted++
		}
		s.mu.Lock()
		queued := s.queued
		s.mu.Unlock()
		if queued > s.cfg.SendQueueBytes {
			t.Fatalf("%d bytes queued, bound %d", queued, s.cfg.SendQueueBytes)
		}
	}
	if accepted != 3 {
		t.Fatalf("%d frames of %d bytes accepted under a bound of %d", accepted, len(frame), s.cfg.SendQueueBytes)
	}
	if got := metrics.slowConsumers.Load() - before; got != 1 {
		t.Fatalf("slow consumer counted %d times", got)
	}
	if s.closeCode != ClosePolicy {
		t.Fatalf("close code %d", s.closeCode)
	}

	// One reply larger than the bound goes out when nothing is queued.
	s, _ = pipeSession(t, 1000)
	s.cfg.SendQueueBytes = 10 << 10
	if !s.Send(textFrame(make([]byte, 20<<10))) {
		t.Fatal("a lone frame over the bound was refused")
	}
	if s.Send(textFrame([]byte("{}"))) {
		t.Fatal("a frame was queued behind more than the bound")
	}
}

// TestOneSlash64SharesACap: two addresses of one IPv6 /64 count as one
// address; another /64, or an IPv4 address, has a cap of its own.
func TestOneSlash64SharesACap(t *testing.T) {
	r := newRegistry(socketLimits{perAddr: 2})
	for _, tc := range []struct {
		ip   string
		want error
	}{
		{"2001:db8:0:1::a", nil},
		{"2001:db8:0:1:ffff::b", nil},
		{"2001:db8:0:1::c", errAddrFull},
		{"2001:db8:0:2::a", nil},
		{"192.0.2.1", nil},
		{"192.0.2.1", nil},
		{"::ffff:192.0.2.1", errAddrFull},
		{"192.0.2.2", nil},
	} {
		if err := r.reserve(addrKey(tc.ip)); err != tc.want {
			t.Fatalf("%s: %v, want %v", tc.ip, err, tc.want)
		}
	}
	r.release(addrKey("2001:db8:0:1::a"))
	if err := r.reserve(addrKey("2001:db8:0:1::d")); err != nil {
		t.Fatalf("after a release: %v", err)
	}
}

// TestIdleWriterParks: a socket with nothing but pings to send for an
// interval parks its writer, and the next frame, ping or close starts
// another that sends it, in order, and the close still ends the session.
func TestIdleWriterParks(t *testing.T) {
	s, peer := pipeSession(t, 64)
	s.cfg.PingInterval = 20 * time.Millisecond
	parks := make(chan struct{}, 16)
	s.onPark = func() { parks <- struct{}{} }
	go s.writeLoop()
	frames := make(chan byte, 64)
	go func() {
		r := bufio.NewReader(peer)
		for {
			var h [2]byte
			if _, err := io.ReadFull(r, h[:]); err != nil {
				close(frames)
				return
			}
			io.CopyN(io.Discard, r, int64(h[1]&0x7f))
			frames <- h[0] & 0x0f
		}
	}()
	waitFor := func(op byte) {
		t.Helper()
		for got := range frames {
			if got == op {
				return
			}
			if got != opPing {
				t.Fatalf("frame op %d while waiting for %d", got, op)
			}
		}
		t.Fatalf("connection ended while waiting for op %d", op)
	}
	for round := range 3 {
		<-parks // a ping alone went out: the writer is gone
		if !s.Send(textFrame([]byte(`{"round":` + string(rune('0'+round)) + `}`))) {
			t.Fatal("Send refused on a parked writer")
		}
		waitFor(opText)
	}
	<-parks
	s.Close(CloseNormal, "bye")
	waitFor(opClose)
	select {
	case <-s.writerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer started for the close did not end the session")
	}
}

// TestLongRunWakesWriters: the frames of a run of events wait for its end
// (drained), but never more than runLimit events' worth: a run longer than
// that, as in a busy room, still reaches the socket while it goes on, and
// sooner when the socket's send queue is short.
func TestLongRunWakesWriters(t *testing.T) {
	for _, queue := range []int{4 * maxRun, 8} {
		t.Run(fmt.Sprint(queue), func(t *testing.T) {
			s, peer := pipeSession(t, queue)
			go s.writeLoop()
			a := &communityAPI{log: slog.New(slog.NewTextHandler(io.Discard, nil)), runLimit: runLimit(SocketConfig{SendQueue: queue})}
			ms := []*memberSession{{s: s, userID: "u"}}
			for i := range a.runLimit {
				a.broadcast(ms, "", functionOut{Codec: "text", Name: "c", Result: "message_live", Payload: i})
			}
			// drained is never called: the runLimit-th event woke the writer.
			got := make(chan struct{})
			go func() {
				r := bufio.NewReader(peer)
				for range a.runLimit {
					if op, _ := readFrame(t, r); op != opText {
						t.Errorf("op %d, want text", op)
					}
				}
				close(got)
			}()
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				t.Fatalf("%d events held without a wake", a.runLimit)
			}
		})
	}
}

func TestRunLimit(t *testing.T) {
	for _, tc := range []struct{ queue, want int }{
		{0, maxRun}, // no bound
		{256, maxRun},
		{4096, maxRun},
		{4 * maxRun, maxRun},
		{32, 8},
		{3, 1},
		{1, 1},
	} {
		if got := runLimit(SocketConfig{SendQueue: tc.queue}); got != tc.want {
			t.Errorf("runLimit(send queue %d) = %d, want %d", tc.queue, got, tc.want)
		}
	}
}
