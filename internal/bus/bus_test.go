package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/iotad/iotad/internal/bus"
	"github.com/iotad/iotad/internal/bustest"
)

type note struct {
	N    int    `json:"n"`
	From string `json:"from"`
}

func (n *note) Encode() ([]byte, error) { return json.Marshal(n) }

func decodeNote(b []byte) (bus.Message, error) {
	var n note
	err := json.Unmarshal(b, &n)
	return &n, err
}

func dial(t *testing.T, url, name string) *bus.NATS {
	t.Helper()
	b, err := bus.DialNATS(url, bus.NATSOptions{Name: name, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), ReconnectWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		var none T
		return none
	}
}

// TestBusContract runs the same contract on both buses: a subscriber
// hears every publish of its node once, in publish order, as the value
// itself (no encoding on Memory, and NATS hands its own node the value
// too), and nothing after Unsubscribe.
func TestBusContract(t *testing.T) {
	eachBus(t, func(t *testing.T, tc namedBus) {
		got := make(chan *note, 100)
		sub, err := tc.b.Subscribe("t.contract", decodeNote, into(got))
		if err != nil {
			t.Fatal(err)
		}
		sent := make([]*note, 50)
		for i := range sent {
			sent[i] = &note{N: i}
			if err := tc.b.Publish("t.contract", sent[i]); err != nil {
				t.Fatal(err)
			}
		}
		for i := range sent {
			if n := recv(t, got); n != sent[i] {
				t.Fatalf("message %d: got %+v (%p), want the published value %p", i, n, n, sent[i])
			}
		}
		sub.Unsubscribe()
		tc.b.Publish("t.contract", &note{N: -1})
		tc.b.Publish("t.other", &note{N: -2})
		if err := tc.b.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-got:
			t.Fatalf("heard %+v after Unsubscribe", n)
		default:
		}
	})
}

// TestNATSJoinsNodes: three nodes on one NATS server; each publish reaches
// every other node's subscriber exactly once and in that node's publish
// order, never its own node twice (no echo), and a node that is not
// subscribed gets nothing.
func TestNATSJoinsNodes(t *testing.T) {
	srv := bustest.Start(t)
	nodes := []*bus.NATS{dial(t, srv.URL(), "a"), dial(t, srv.URL(), "b"), dial(t, srv.URL(), "c")}
	idle := dial(t, srv.URL(), "idle")
	heard := make([]chan *note, len(nodes))
	for i, b := range nodes {
		heard[i] = make(chan *note, 1000)
		if _, err := b.Subscribe("iotad.community.x", decodeNote, into(heard[i])); err != nil {
			t.Fatal(err)
		}
	}
	stray := make(chan *note, 10)
	idle.Subscribe("iotad.community.y", decodeNote, into(stray))
	const each = 100
	for n := range each {
		for i, b := range nodes {
			b.Publish("iotad.community.x", &note{N: n, From: fmt.Sprint(i)})
		}
	}
	for i := range nodes {
		next := map[string]int{}
		for range each * len(nodes) {
			n := recv(t, heard[i])
			if n.N != next[n.From] {
				t.Fatalf("node %d: from %s got %d, want %d (lost, repeated or reordered)", i, n.From, n.N, next[n.From])
			}
			next[n.From]++
		}
		select {
		case n := <-heard[i]:
			t.Fatalf("node %d heard an extra %+v", i, n)
		default:
		}
	}
	select {
	case n := <-stray:
		t.Fatalf("an unsubscribed node heard %+v", n)
	default:
	}
}

// TestNATSRestart: the server goes away and comes back on the same port;
// the nodes reconnect by themselves, Reconnected runs (so they can
// resynchronise), and publishes flow again.
func TestNATSRestart(t *testing.T) {
	srv := bustest.Start(t)
	a, b := dial(t, srv.URL(), "a"), dial(t, srv.URL(), "b")
	back := make(chan struct{}, 2)
	b.Reconnected(func() { back <- struct{}{} })
	got := make(chan *note, 100)
	b.Subscribe("t.restart", decodeNote, into(got))
	a.Publish("t.restart", &note{N: 1})
	if n := recv(t, got); n.N != 1 {
		t.Fatalf("got %+v", n)
	}
	srv.Restart()
	select {
	case <-back:
	case <-time.After(10 * time.Second):
		t.Fatal("b did not reconnect")
	}
	// a may reconnect after b: publish until one arrives. Publishes while
	// a is still away are buffered by nats.go, so each arrives once.
	deadline := time.After(10 * time.Second)
	for i := 2; ; i++ {
		a.Publish("t.restart", &note{N: i})
		select {
		case n := <-got:
			if n.N < 2 {
				t.Fatalf("got %+v again", n)
			}
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("no message after the restart")
		}
	}
}

// TestClaims runs single-use and lease claims on both implementations:
// a ticket key is first only once, a lease has one holder until it lapses
// or is released, and its holder renews it.
func TestClaims(t *testing.T) {
	srv := bustest.Start(t)
	ctx := context.Background()
	a, b := dial(t, srv.URL(), "a"), dial(t, srv.URL(), "b")
	ca, err := bus.NewNATSClaims(a.Conn())
	if err != nil {
		t.Fatal(err)
	}
	cb, err := bus.NewNATSClaims(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	mem := bus.NewMemoryClaims(nil)
	for _, tc := range []struct {
		name   string
		c1, c2 bus.Claims
	}{
		{"memory", mem, mem},
		{"nats", ca, cb},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := tc.c1.Once(ctx, "ticket.1", time.Minute)
			if err != nil || !first {
				t.Fatalf("first Once = %v, %v", first, err)
			}
			if again, err := tc.c2.Once(ctx, "ticket.1", time.Minute); err != nil || again {
				t.Fatalf("second Once (other node) = %v, %v: a ticket spent twice", again, err)
			}
			if h, err := tc.c1.Lease(ctx, "call.1", "node-a", time.Second); err != nil || h != "node-a" {
				t.Fatalf("lease = %q, %v", h, err)
			}
			if h, err := tc.c2.Lease(ctx, "call.1", "node-b", time.Second); err != nil || h != "node-a" {
				t.Fatalf("lease by b = %q, %v; want the holder node-a", h, err)
			}
			if h, err := tc.c1.Lease(ctx, "call.1", "node-a", time.Second); err != nil || h != "node-a" {
				t.Fatalf("renew = %q, %v", h, err)
			}
			if err := tc.c1.Release(ctx, "call.1", "node-a"); err != nil {
				t.Fatal(err)
			}
			if h, err := tc.c2.Lease(ctx, "call.1", "node-b", time.Second); err != nil || h != "node-b" {
				t.Fatalf("lease after release = %q, %v", h, err)
			}
			// node-b stops renewing: within the lease (1s, the bucket's
			// max age) plus the server's expiry pass, a moves in.
			deadline := time.Now().Add(10 * time.Second)
			for {
				h, err := tc.c1.Lease(ctx, "call.1", "node-a", time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if h == "node-a" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the lapsed lease was never taken over")
				}
				time.Sleep(50 * time.Millisecond) // polling a clock-driven expiry, not waiting for an event
			}
		})
	}
}

// into is a subscriber that passes notes on and skips Drained.
func into(ch chan<- *note) func(bus.Message) {
	return func(m bus.Message) {
		if m != bus.Drained {
			ch <- m.(*note)
		}
	}
}

// TestDrainedEndsEveryRun: after the messages queued for a subscription
// are delivered, it hears Drained once, after the last of them, on both
// buses; and Drained cannot be sent to other nodes.
func TestDrainedEndsEveryRun(t *testing.T) {
	eachBus(t, func(t *testing.T, tc namedBus) {
		heard := make(chan bus.Message, 200)
		if _, err := tc.b.Subscribe("t.drained", decodeNote, func(m bus.Message) { heard <- m }); err != nil {
			t.Fatal(err)
		}
		for round := range 3 {
			const n = 20
			for i := range n {
				tc.b.Publish("t.drained", &note{N: round*n + i})
			}
			seen := 0
			for seen < n {
				if m := <-heard; m != bus.Drained {
					if got := m.(*note).N; got != round*n+seen {
						t.Fatalf("round %d: note %d, want %d", round, got, round*n+seen)
					}
					seen++
				}
			}
			// Every note is in; the run that delivered the last ends
			// with Drained, and nothing else is queued.
			if m := <-heard; m != bus.Drained {
				t.Fatalf("round %d: after the last note %v, want Drained", round, m)
			}
			select {
			case m := <-heard:
				t.Fatalf("round %d: %v after Drained with nothing published", round, m)
			default:
			}
		}
		if _, err := bus.Drained.Encode(); err == nil {
			t.Fatal("Drained encodes")
		}
	})
}

// TestHoldMakesOneRun: what is published between Hold and Release reaches
// a subscriber as one run, with no Drained inside it, on both buses.
func TestHoldMakesOneRun(t *testing.T) {
	eachBus(t, func(t *testing.T, tc namedBus) {
		heard := make(chan bus.Message, 200)
		if _, err := tc.b.Subscribe("t.hold", decodeNote, func(m bus.Message) { heard <- m }); err != nil {
			t.Fatal(err)
		}
		for round := range 20 {
			tc.b.Hold()
			tc.b.Hold() // holds nest
			for i := range 5 {
				tc.b.Publish("t.hold", &note{N: i})
			}
			tc.b.Release()
			tc.b.Publish("t.hold", &note{N: 5})
			tc.b.Release()
			for i := range 6 {
				m := <-heard
				if m == bus.Drained {
					t.Fatalf("round %d: Drained before note %d of a held run", round, i)
				}
				if n := m.(*note).N; n != i {
					t.Fatalf("round %d: note %d, want %d", round, n, i)
				}
			}
			if m := <-heard; m != bus.Drained {
				t.Fatalf("round %d: %v after the run, want Drained", round, m)
			}
		}
	})
}

// namedBus is one of the buses every contract test runs on.
type namedBus struct {
	name string
	b    interface {
		bus.Bus
		bus.Holder
	}
}

// eachBus runs fn on a Memory and on a NATS bus joined to a real server.
func eachBus(t *testing.T, fn func(t *testing.T, tc namedBus)) {
	srv := bustest.Start(t)
	for _, tc := range []namedBus{
		{"memory", bus.NewMemory()},
		{"nats", dial(t, srv.URL(), "a")},
	} {
		t.Run(tc.name, func(t *testing.T) { fn(t, tc) })
	}
}
