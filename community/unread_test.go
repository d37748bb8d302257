package community

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db"
	"github.com/iotad/iotad/internal/db/dbtest"
)

// fuzzText sends arbitrary payloads of one text function, as a member:
// nothing panics, and every failure is one of the package's errors.
func fuzzText(f *testing.F, function string, seeds ...string) {
	_, c, _ := openTest(f, db.SyncNormal)
	ctx := context.Background()
	if err := c.CreateDefaultChannels(ctx); err != nil {
		f.Fatal(err)
	}
	secret, _, err := c.CreateOperatorInvite(ctx, InviteOptions{})
	if err != nil {
		f.Fatal(err)
	}
	m, err := c.Join(ctx, secret, "member-1", icrypto.PublicKey{1})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	known := []error{ErrInvalidData, ErrNotFound, ErrPermission, ErrRateLimited}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if !json.Valid(payload) || len(payload) == 0 || payload[0] != '{' {
			return // the envelope refuses these before any codec sees them
		}
		_, _, err := c.Call(ctx, m, "General", "general", "", function, payload, nil)
		if err == nil {
			return
		}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("%s %s: error of no wire type: %v", function, payload, err)
	})
}

func FuzzSendMentions(f *testing.F) {
	fuzzText(f, "send_message",
		`{"message":"hi","mentions":["member-1"]}`,
		`{"message":"hi","mentions":["member-1","member-1"],"mention_everyone":false}`,
		`{"message":"hi","mentions":"x"}`,
		`{"message":"hi","mentions":[1,2]}`,
		`{"message":"hi","mentions":[""]}`,
		`{"message":"hi","mention_everyone":true}`,
		`{"message":"hi","mention_everyone":"yes"}`)
}

func FuzzMarkRead(f *testing.F) {
	fuzzText(f, "mark_read",
		`{"message_id":"0190e4a2-0000-7000-8000-000000000000"}`,
		`{"message_id":5}`,
		`{"message_id":null}`,
		`{}`)
}

func TestCheckMentions(t *testing.T) {
	got, err := checkMentions([]string{"a", "b", "a"})
	if err != nil || len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("%v %v", got, err)
	}
	many := make([]string, MaxMentions+1)
	for i := range many {
		many[i] = string(rune('a' + i))
	}
	if _, err := checkMentions(many); !errors.Is(err, ErrInvalidData) {
		t.Fatalf("%d ids: %v", len(many), err)
	}
	if _, err := checkMentions(append(many[:MaxMentions], many[0])); err != nil {
		t.Fatalf("20 ids and a duplicate: %v", err)
	}
}

// TestUnreadStore: markers start at the newest message on joining, counts
// leave out own messages and stop at MaxUnreadCount, a deleted message
// takes its mentions with it, and a channel made later is all unread.
func TestUnreadStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		_, c, _ := openOn(t, b)
		ctx := context.Background()
		if err := c.CreateDefaultChannels(ctx); err != nil {
			t.Fatal(err)
		}
		join := func(id string) Member {
			secret, _, err := c.CreateOperatorInvite(ctx, InviteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			m, err := c.Join(ctx, secret, id, icrypto.PublicKey{byte(len(id))})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		send := func(m Member, channel, payload string) string {
			t.Helper()
			_, res, err := c.Call(ctx, m, "General", channel, "", "send_message", json.RawMessage(payload), nil)
			if err != nil {
				t.Fatal(err)
			}
			return res.Payload.(map[string]any)["message_id"].(string)
		}
		alice := join("alice")
		send(alice, "general", `{"message":"before bob"}`)
		bob := join("bob")
		ch, _ := c.Find("General", "general")
		counts := func() UnreadCounts {
			t.Helper()
			all, err := c.Unread(ctx, bob.UserID)
			if err != nil {
				t.Fatal(err)
			}
			return all[ch.ID]
		}
		if n := counts(); n != (UnreadCounts{}) {
			t.Fatalf("a new member: %+v", n)
		}
		mention := send(alice, "general", `{"message":"@bob","mentions":["bob"]}`)
		send(bob, "general", `{"message":"own","mentions":["bob"]}`)
		if n := counts(); n != (UnreadCounts{Unread: 1, Mentions: 1}) {
			t.Fatalf("after a mention: %+v", n)
		}
		if _, _, err := c.Call(ctx, alice, "General", "general", "", "delete_message", json.RawMessage(`{"message_id":"`+mention+`"}`), nil); err != nil {
			t.Fatal(err)
		}
		if n := counts(); n != (UnreadCounts{}) {
			t.Fatalf("after the deletion: %+v", n)
		}
		for range MaxUnreadCount + 5 {
			send(alice, "general", `{"message":"x"}`)
		}
		if n := counts(); n.Unread != MaxUnreadCount {
			t.Fatalf("capped: %+v", n)
		}
		if err := c.CreateChannel(ctx, OperatorMember(), "General", "later", CodecText, nil); err != nil {
			t.Fatal(err)
		}
		send(alice, "later", `{"message":"in a new channel"}`)
		later, _ := c.Find("General", "later")
		all, err := c.Unread(ctx, bob.UserID)
		if err != nil || all[later.ID] != (UnreadCounts{Unread: 1}) {
			t.Fatalf("a channel made later: %+v %v", all[later.ID], err)
		}
	})
}

// TestUnreadFromMemory: a member who has read everything, a new member
// included, gets zero counts without the database; a message by anyone
// else, a channel made later and a channel whose id a deleted one had all
// send the count back to the database, and the counts are always what the
// database says.
func TestUnreadFromMemory(t *testing.T) {
	dbtest.Each(t, testUnreadFromMemory)
}

func testUnreadFromMemory(t *testing.T, backend dbtest.Backend) {
	_, c, _ := openOn(t, backend)
	ctx := context.Background()
	owner := addMember(t, c, RoleOwner)
	if err := c.CreateChannel(ctx, owner, "", "a", CodecText, nil); err != nil {
		t.Fatal(err)
	}
	alice, bob := addMember(t, c, RoleMember), addMember(t, c, RoleMember)
	a, _ := c.Find("", "a")
	want := func(step string, m Member, ch *Channel, unread int, fromMemory bool) {
		t.Helper()
		c.mu.Lock()
		text := c.textChannelsLocked()
		c.mu.Unlock()
		_, cached := c.unread.allRead(m.UserID, text)
		counts, err := c.Unread(ctx, m.UserID)
		if err != nil {
			t.Fatal(err)
		}
		if got := counts[ch.ID].Unread; got != unread || cached != fromMemory {
			t.Fatalf("%s: unread %d (from memory %v), want %d (%v)", step, got, cached, unread, fromMemory)
		}
	}
	want("joined", alice, a, 0, true) // the join told the cache its markers
	want("again", alice, a, 0, true)
	id := send(t, c, bob, "", "a", "one")
	want("bob sent", alice, a, 1, false)
	// One who joins after it has it read from the start, also in memory.
	carol := addMember(t, c, RoleMember)
	want("carol joined after it", carol, a, 0, true)
	call(t, c, alice, "a", "mark_read", map[string]string{"message_id": id})
	want("read", alice, a, 0, true)
	send(t, c, alice, "", "a", "mine")
	want("her own message", alice, a, 0, false)
	want("her own message, again", alice, a, 0, true)

	// A channel whose id was a deleted one's: the old marker must not
	// hide the new channel's messages.
	if err := c.CreateChannel(ctx, owner, "", "b", CodecText, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := c.Find("", "b")
	for range 3 {
		id = send(t, c, bob, "", "b", "old")
	}
	call(t, c, alice, "b", "mark_read", map[string]string{"message_id": id})
	want("b read", alice, b, 0, false)
	want("b read, again", alice, b, 0, true)
	if err := c.DeleteChannel(ctx, owner, "", "b"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateChannel(ctx, owner, "", "b2", CodecText, nil); err != nil {
		t.Fatal(err)
	}
	b2, _ := c.Find("", "b2")
	send(t, c, bob, "", "b2", "new")
	want("a new channel", alice, b2, 1, false)
	if b2.ID == b.ID {
		t.Logf("the new channel has the deleted one's id %d", b.ID)
	}
}
