package community

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/iotad/iotad/internal/db/dbtest"
)

// TestDeleteTakesReactionsAndPin: on both backends, deleting a message
// deletes its reactions and its pin, and a reply to it then says deleted.
func TestDeleteTakesReactionsAndPin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		s, c, _ := openOn(t, b)
		ctx := context.Background()
		if err := c.CreateDefaultChannels(ctx); err != nil {
			t.Fatal(err)
		}
		ch, _ := c.Find("General", "general")
		owner := OperatorMember()
		call := func(function, payload string) map[string]any {
			t.Helper()
			_, res, err := c.Call(ctx, owner, "General", "general", "", function, json.RawMessage(payload), nil)
			if err != nil {
				t.Fatalf("%s %s: %v", function, payload, err)
			}
			if p, ok := res.Payload.(map[string]any); ok {
				return p
			}
			return nil
		}
		first := call("send_message", `{"message":"first"}`)["message_id"].(string)
		call("send_message", fmt.Sprintf(`{"message":"reply","reply_to":%q}`, first))
		call("add_reaction", fmt.Sprintf(`{"message_id":%q,"emoji":"👍"}`, first))
		call("pin_message", fmt.Sprintf(`{"message_id":%q}`, first))
		msgs, _ := getPage(t, c, ch, map[string]any{"loaded_messages": 0, "amount": 10})
		if len(msgs) != 2 || len(msgs[0].Reactions) != 1 || msgs[1].Reply == nil || msgs[1].Reply.Message != "first" {
			t.Fatalf("before the delete: %+v", msgs)
		}
		call("delete_message", fmt.Sprintf(`{"message_id":%q}`, first))
		for _, table := range []string{"reactions", "pins"} {
			var n int
			if err := s.db.Read.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%s: %d rows left (%v)", table, n, err)
			}
		}
		msgs, _ = getPage(t, c, ch, map[string]any{"loaded_messages": 0, "amount": 10})
		if len(msgs) != 1 || msgs[0].Reply == nil || !msgs[0].Reply.Deleted || msgs[0].Reply.MessageID != first {
			t.Fatalf("after the delete: %+v", msgs)
		}
	})
}
