package community

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db"
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
