package community

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/iotad/iotad/internal/db/dbtest"
)

// TestDeepPageCannotStallTheWriter: one member asks for a deep page of a
// long channel, which builds the offset index by reading every seq; while
// that read is in, another member sends a message. The send must commit
// and return without waiting for the build, and the index, once built,
// must hold the new message.
func TestDeepPageCannotStallTheWriter(t *testing.T) {
	dbtest.Each(t, testDeepPageCannotStallTheWriter)
}

func testDeepPageCannotStallTheWriter(t *testing.T, b dbtest.Backend) {
	s, c, _ := openOn(t, b)
	ctx := context.Background()
	if err := c.CreateDefaultChannels(ctx); err != nil {
		t.Fatal(err)
	}
	ch, _ := c.Find("General", "general")
	seedMessages(t, s, c, ch, deepOffset+500)
	alice := joinedMember(t, c, "alice")

	reading, release := make(chan struct{}), make(chan struct{})
	testHookIndexRead = func() { close(reading); <-release }
	defer func() { testHookIndexRead = nil }()
	released := false
	free := func() {
		if !released {
			released = true
			close(release)
		}
	}
	defer free()

	paged := make(chan error, 1)
	go func() {
		_, _, err := c.messagesAt(ctx, ch, deepOffset, 50)
		paged <- err
	}()
	select {
	case <-reading:
	case err := <-paged:
		t.Fatalf("the deep page did not build the index: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the index build never started")
	}

	sent := make(chan error, 1)
	go func() {
		_, _, err := c.Call(ctx, alice, "General", "general", "", "send_message", json.RawMessage(`{"message":"during the build"}`), nil)
		sent <- err
	}()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		free()
		<-sent
		t.Fatal("the send waited for the index build: the writer was held")
	}
	free()
	if err := <-paged; err != nil {
		t.Fatal(err)
	}

	idx, err := c.offsetIndex(ctx, ch.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := storedSeqs(t, s, ch.ID)
	idx.mu.Lock()
	got := slices.Clone(idx.seqs)
	idx.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("the index holds %d seqs, the channel %d messages", len(got), len(want))
	}
}
