package community

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/iotad/iotad/internal/db"
)

// storedSeqs are the seqs of ch's stored messages, in order.
func storedSeqs(t *testing.T, s *Service, ch int64) []int64 {
	t.Helper()
	rows, err := s.db.Read.Query(`SELECT seq FROM messages WHERE channel_id = $1 ORDER BY seq`, ch)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// TestNumberingSeesAnotherProcessesMessage: the writer numbers messages
// from what it handed out, and another process (a second iotad on the
// same file, say) stores a message in between. The next send must number
// after it, not repeat its seq.
func TestNumberingSeesAnotherProcessesMessage(t *testing.T) {
	s, c, dir := openTest(t, db.SyncNormal)
	ctx := context.Background()
	if err := c.CreateDefaultChannels(ctx); err != nil {
		t.Fatal(err)
	}
	alice := joinedMember(t, c, "alice")
	ch, _ := c.Find("General", "general")
	send(t, c, alice, "General", "general", "one")

	other, err := db.Open(ctx, filepath.Join(dir, "iotad.db"), db.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	id, _ := uuid.NewV7()
	if _, err := other.Write.ExecContext(ctx, insertMessage, ch.ID, 2, id[:], alice.UserID, "from elsewhere", time.Now().UnixMilli()); err != nil {
		t.Fatal(err)
	}

	send(t, c, alice, "General", "general", "three")
	if got := storedSeqs(t, s, ch.ID); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("seqs %v, want [1 2 3]", got)
	}
}

// TestDeletedChannelTakesNoNumber: a message that reaches the writer after
// its channel was deleted is ErrNotFound, even though the writer numbered
// that channel's messages before.
func TestDeletedChannelTakesNoNumber(t *testing.T) {
	s, c, _ := openTest(t, db.SyncNormal)
	ctx := context.Background()
	owner := addMember(t, c, RoleOwner)
	if err := c.CreateChannel(ctx, owner, "", "extra", CodecText, nil); err != nil {
		t.Fatal(err)
	}
	ch, _ := c.Find("", "extra")
	send(t, c, owner, "", "extra", "one")
	if err := c.DeleteChannel(ctx, owner, "", "extra"); err != nil {
		t.Fatal(err)
	}
	err := s.w.do(ctx, func(tx *sql.Tx) error {
		_, err := s.number(ctx, tx, ch.ID)
		return err
	}, nil)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("numbering a deleted channel: %v, want ErrNotFound", err)
	}
}
