package community

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotad/iotad/internal/db"
)

// TestSlowFanOutCannotHoldTheWriter: the fan-out of a message (here a
// listener that stalls, as a slow encode or a blocked socket queue would)
// must not hold the writer: sends keep committing and returning while it
// stalls, and once it moves on every message_live arrives, in commit
// order.
func TestSlowFanOutCannotHoldTheWriter(t *testing.T) {
	_, c, _ := openTest(t, db.SyncNormal)
	ctx := context.Background()
	if err := c.CreateDefaultChannels(ctx); err != nil {
		t.Fatal(err)
	}
	alice := joinedMember(t, c, "alice")

	stalled, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	live := make(chan string, 100)
	c.Subscribe(func(e Event) {
		if e.Result != ResultMessageLive {
			return
		}
		once.Do(func() { close(stalled); <-release })
		live <- e.Payload.(*Message).ID
	})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	defer free()

	const senders, each = 4, 5
	sent := make(chan string, senders*each)
	errs := make(chan error, senders)
	for range senders {
		go func() {
			for range each {
				_, res, err := c.Call(ctx, alice, "General", "general", "", "send_message", json.RawMessage(`{"message":"hi"}`), nil)
				if err != nil {
					errs <- err
					return
				}
				sent <- res.Payload.(map[string]any)["message_id"].(string)
			}
			errs <- nil
		}()
	}
	deadline := time.After(10 * time.Second)
	for range senders {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			free()
			t.Fatal("sends waited for the stalled fan-out: the writer was held")
		}
	}
	select {
	case <-stalled:
	case <-deadline:
		t.Fatal("the listener never heard of a message")
	}
	free()

	var got []string
	for range senders * each {
		select {
		case id := <-live:
			got = append(got, id)
		case <-deadline:
			t.Fatalf("%d of %d message_live events delivered", len(got), senders*each)
		}
	}
	if !slices.IsSortedFunc(got, strings.Compare) {
		t.Fatalf("message_live out of commit order: %v", got)
	}
	close(sent)
	var want []string
	for id := range sent {
		want = append(want, id)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v, sent %v", got, want)
	}
}

// TestDispatcherStopsOnClose: Close delivers what was published, stops the
// delivery goroutine (the bus's; Close waits for it), and a publish after it (a voice event racing
// shutdown) is dropped rather than sent on a closed channel.
func TestDispatcherStopsOnClose(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	d, err := db.Open(ctx, dir+"/iotad.db", db.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, err := Open(ctx, d, Options{KeyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Create(ctx, "Test")
	if err != nil {
		t.Fatal(err)
	}
	var heard []string
	c.Subscribe(func(e Event) { heard = append(heard, e.Result) })
	c.publish(Event{Result: "before"})
	s.Close() // waits for the delivery goroutine to end
	c.publish(Event{Result: "after"})
	if !slices.Equal(heard, []string{"before"}) {
		t.Fatalf("heard %v", heard)
	}
}
