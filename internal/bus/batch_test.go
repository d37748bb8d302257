package bus_test

import (
	"testing"
	"time"

	"github.com/iotad/iotad/internal/bus"
	"github.com/iotad/iotad/internal/bustest"
	"github.com/nats-io/nats.go"
)

// TestHeldPublishesCrossAsOneMessage: what one node publishes under a Hold
// leaves it as one NATS message per subject, and the other node delivers
// it as one run, in order, with no Drained inside; a malformed batch is
// dropped without stopping the subscription.
func TestHeldPublishesCrossAsOneMessage(t *testing.T) {
	srv := bustest.Start(t)
	a, b := dial(t, srv.URL(), "a"), dial(t, srv.URL(), "b")
	raw, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	onWire := make(chan *nats.Msg, 100)
	if _, err := raw.ChanSubscribe("t.batch.>", onWire); err != nil {
		t.Fatal(err)
	}
	raw.Flush()
	heard := make(chan bus.Message, 100)
	if _, err := b.Subscribe("t.batch.x", decodeNote, func(m bus.Message) { heard <- m }); err != nil {
		t.Fatal(err)
	}
	next := func() bus.Message { t.Helper(); return recv(t, heard) }

	a.Hold()
	for i := range 5 {
		a.Publish("t.batch.x", &note{N: i})
	}
	a.Publish("t.batch.y", &note{N: 100})
	a.Release()
	for i := range 5 {
		m := next()
		if m == bus.Drained {
			t.Fatalf("Drained before note %d of a held run", i)
		}
		if n := m.(*note).N; n != i {
			t.Fatalf("note %d, want %d", n, i)
		}
	}
	if m := next(); m != bus.Drained {
		t.Fatalf("%v after the run, want Drained", m)
	}
	subjects := map[string]int{}
	for range 2 {
		select {
		case m := <-onWire:
			subjects[m.Subject]++
		case <-time.After(10 * time.Second):
			t.Fatal("the held publishes never reached NATS")
		}
	}
	raw.Flush()
	select {
	case m := <-onWire:
		t.Fatalf("a third NATS message on %s: the held run was not sent as one", m.Subject)
	default:
	}
	if subjects["t.batch.x"] != 1 || subjects["t.batch.y"] != 1 {
		t.Fatalf("NATS messages per subject %v, want one each", subjects)
	}

	// Another node's garbage: a batch whose length runs past its end is
	// dropped whole; in a well-formed batch, an item that does not decode
	// is dropped alone.
	raw.Publish("t.batch.x", []byte{0xFF, 40, '{', '}'})
	good := []byte(`{"n":8}`)
	mixed := append([]byte{0xFF, 3, 'n', 'o', '{', byte(len(good))}, good...)
	raw.Publish("t.batch.x", mixed)
	raw.Flush()
	a.Publish("t.batch.x", &note{N: 9})
	var got []int
	for len(got) < 2 {
		if m := next(); m != bus.Drained {
			got = append(got, m.(*note).N)
		}
	}
	if got[0] != 8 || got[1] != 9 {
		t.Fatalf("after a malformed batch and a batch with a bad item heard %v, want [8 9]", got)
	}
}

// TestCloseSendsWhatIsHeld: a node that closes inside a Hold still sends
// what it published in it.
func TestCloseSendsWhatIsHeld(t *testing.T) {
	srv := bustest.Start(t)
	a, b := dial(t, srv.URL(), "a"), dial(t, srv.URL(), "b")
	got := make(chan *note, 10)
	if _, err := b.Subscribe("t.close", decodeNote, into(got)); err != nil {
		t.Fatal(err)
	}
	a.Hold()
	a.Publish("t.close", &note{N: 1})
	a.Publish("t.close", &note{N: 2})
	a.Close()
	a.Release() // the writer's deferred Release, after Close
	if n := recv(t, got); n.N != 1 {
		t.Fatalf("got %d, want 1", n.N)
	}
	if n := recv(t, got); n.N != 2 {
		t.Fatalf("got %d, want 2", n.N)
	}
}
