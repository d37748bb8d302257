package community

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/iotad/iotad/internal/db"
)

// FuzzFunctionPayload sends arbitrary payloads to every channel function:
// nothing panics, and every failure is one of the package's errors, which
// the api layer maps to a wire error type.
func FuzzFunctionPayload(f *testing.F) {
	_, c, _ := openTest(f, db.SyncNormal)
	ctx := context.Background()
	if err := c.CreateDefaultChannels(ctx); err != nil {
		f.Fatal(err)
	}
	owner := OperatorMember()
	for _, seed := range []struct {
		channel, function, payload string
	}{
		{"general", "send_message", `{"message":"hello"}`},
		{"general", "get_messages", `{"loaded_messages":0,"amount":50}`},
		{"general", "get_messages", `{"before":"0190e4a2-0000-7000-8000-000000000000","amount":5}`},
		{"general", "edit_message", `{"message_id":"x","message":"y"}`},
		{"general", "delete_message", `{"message_id":5}`},
		{"general", "typing", `{}`},
		{"voice", "join", `{}`},
		{"voice", "set_state", `{"state":"muted","streaming":true}`},
		{"voice", "mute_user", `{"user_id":"owner"}`},
		{"general", "get_messages", `{"amount":"5"}`},
		{"general", "send_message", `[]`},
	} {
		f.Add(seed.channel, seed.function, []byte(seed.payload))
	}
	known := []error{ErrInvalidData, ErrNotFound, ErrPermission, ErrNotInCall, ErrConflict}
	f.Fuzz(func(t *testing.T, channel, function string, payload []byte) {
		if !json.Valid(payload) || len(payload) == 0 || payload[0] != '{' {
			return // the envelope refuses these before any codec sees them
		}
		_, _, err := c.Call(ctx, owner, "General", channel, "", function, payload, nil)
		if err == nil {
			return
		}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("%s/%s %s: error of no wire type: %v", channel, function, payload, err)
	})
}
