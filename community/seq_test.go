package community

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"

	"github.com/iotad/iotad/internal/db"
	"github.com/iotad/iotad/internal/db/dbtest"
)

// TestTwoWritersShareOneChannelOrder: two services on one database (two
// nodes) send into one channel at once. The database numbers the messages
// 1…n without a gap or a repeat, each node's live events carry their seqs
// in increasing order, and paging with before walks every message once, in
// seq order, whichever node's clock made its id.
func TestTwoWritersShareOneChannelOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		target, dir := b.New(t), t.TempDir()
		_, c1, _ := openTarget(t, target, db.SyncNormal, dir)
		if err := c1.CreateDefaultChannels(ctx); err != nil {
			t.Fatal(err)
		}
		alice := joinedMember(t, c1, "alice")
		// The second node's clock runs an hour behind: its ids sort
		// before the first's, and the order must not care.
		s2, err := Open(ctx, dbtest.OpenTarget(t, target), Options{KeyDir: dir, Now: func() time.Time { return time.Now().Add(-time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		c2, err := s2.Get(c1.ID)
		if err != nil {
			t.Fatal(err)
		}
		nodes := []*Community{c1, c2}
		const perNode = 40
		var lives [2][]int64
		var mu sync.Mutex
		got := make(chan struct{}, 2*perNode)
		for i, c := range nodes {
			c.Subscribe(func(e Event) {
				if m, ok := e.Payload.(*Message); ok && e.Result == ResultMessageLive {
					mu.Lock()
					lives[i] = append(lives[i], m.Seq)
					mu.Unlock()
					got <- struct{}{}
				}
			})
		}
		var wg sync.WaitGroup
		for i, c := range nodes {
			for j := range perNode {
				wg.Go(func() {
					body := json.RawMessage(fmt.Sprintf(`{"message":"node %d message %d"}`, i, j))
					if _, _, err := c.Call(ctx, alice, "General", "general", "", "send_message", body, nil); err != nil {
						t.Error(err)
					}
				})
			}
		}
		wg.Wait()
		for range 2 * perNode {
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("not every message_live arrived")
			}
		}
		mu.Lock()
		for i, seqs := range lives {
			if !slices.IsSorted(seqs) || len(seqs) != perNode {
				t.Errorf("node %d published seqs %v: want %d, increasing", i, seqs, perNode)
			}
		}
		all := slices.Concat(lives[0], lives[1])
		mu.Unlock()
		slices.Sort(all)
		for i, seq := range all {
			if seq != int64(i+1) {
				t.Fatalf("seqs %v: want 1…%d, each once", all, 2*perNode)
			}
		}

		// Page back from the newest with before, as a client does.
		ch, _ := c1.Find("General", "general")
		newest, more := getPage(t, c2, ch, map[string]any{"amount": 7})
		paged := slices.Clone(newest)
		for more {
			var older []Message
			older, more = getPage(t, c1, ch, map[string]any{"amount": 7, "before": paged[0].ID})
			paged = append(older, paged...)
		}
		if len(paged) != 2*perNode {
			t.Fatalf("paged %d messages, want %d", len(paged), 2*perNode)
		}
		for i, m := range paged {
			if m.Seq != int64(i+1) {
				t.Fatalf("page position %d holds seq %d", i, m.Seq)
			}
			// PROTOCOL §9: ids only ever increase within a channel, also
			// when one writer's clock is an hour behind the other's.
			if i > 0 && m.ID <= paged[i-1].ID {
				t.Fatalf("message %d's id %s does not sort after %s", i, m.ID, paged[i-1].ID)
			}
		}
	})
}

// TestMigrationNumbersStoredMessagesByID: a database from before seqs
// (schema version 3) gets its messages numbered in id order, which was
// their order until then, and the channel's next message follows them.
func TestMigrationNumbersStoredMessagesByID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		target := b.New(t)
		d := dbtest.OpenTarget(t, target)
		old := fstest.MapFS{}
		for _, name := range []string{"0001_init.sql", "0002_addresses.sql", "0003_server_mutes.sql"} {
			body, err := fs.ReadFile(migrations, "migrations/"+name)
			if err != nil {
				t.Fatal(err)
			}
			old[name] = &fstest.MapFile{Data: body}
		}
		if err := d.Migrate(ctx, "community", old); err != nil {
			t.Fatal(err)
		}
		// Ids from before 0004 carry no seq: random bytes where it goes.
		ids := []uuid.UUID{uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())}
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			stmts := []string{
				`INSERT INTO communities(id, name, public_key, created_at) VALUES('c', 'Old', $1, 0)`,
				`INSERT INTO channels(id, community_id, parent_id, name, codec, sort_key) VALUES(1, 'c', NULL, 'text', 'text', 0)`,
			}
			for i, q := range stmts {
				args := []any{}
				if i == 0 {
					args = append(args, make([]byte, 56))
				}
				if _, err := tx.ExecContext(ctx, q, args...); err != nil {
					return err
				}
			}
			// Stored out of id order: the id, not the insertion, was the order.
			for _, i := range []int{2, 0, 1} {
				_, err := tx.ExecContext(ctx, `INSERT INTO messages(channel_id, id, sender_id, body, send_time) VALUES(1, $1, 'u', $2, 0)`,
					ids[i][:], fmt.Sprint(i))
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		d.Close()

		d = dbtest.OpenTarget(t, target)
		if err := d.Migrate(ctx, "community", mustSub(t)); err != nil {
			t.Fatal(err)
		}
		rows, err := d.Read.QueryContext(ctx, `SELECT seq, body FROM messages WHERE channel_id = 1 ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for rows.Next() {
			var seq int64
			var body string
			if err := rows.Scan(&seq, &body); err != nil {
				t.Fatal(err)
			}
			order = append(order, fmt.Sprintf("%d:%s", seq, body))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(order, " "); got != "1:0 2:1 3:2" {
			t.Fatalf("after the migration: %s, want 1:0 2:1 3:2", got)
		}
		var last int64
		if err := d.Read.QueryRowContext(ctx, `SELECT last_seq FROM channels WHERE id = 1`).Scan(&last); err != nil || last != 3 {
			t.Fatalf("last_seq %d, %v", last, err)
		}
		// The old ids still name their messages.
		ch := &Channel{ID: 1}
		for i, id := range ids {
			if seq, err := seqOf(ctx, d.Read, ch, id); err != nil || seq != int64(i+1) {
				t.Fatalf("old id %d: seq %d, %v", i, seq, err)
			}
		}
		if _, err := seqOf(ctx, d.Read, ch, uuid.Must(uuid.NewV7())); !errors.Is(err, ErrNotFound) {
			t.Fatalf("an id nobody stored: %v", err)
		}
	})
}

func mustSub(t *testing.T) fs.FS {
	t.Helper()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestDeletedNewestSeqIsNotReused: the newest message is deleted and
// another sent; the new one gets a seq of its own, never the deleted one's
// (a node that saw the deleted message must not mistake the new one for it).
func TestDeletedNewestSeqIsNotReused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		_, c, _ := openOn(t, b)
		if err := c.CreateDefaultChannels(ctx); err != nil {
			t.Fatal(err)
		}
		alice := joinedMember(t, c, "alice")
		ch, _ := c.Find("General", "general")
		send := func() (string, int64) {
			t.Helper()
			if _, _, err := c.Call(ctx, alice, "General", "general", "", "send_message", json.RawMessage(`{"message":"hi"}`), nil); err != nil {
				t.Fatal(err)
			}
			page, _ := getPage(t, c, ch, map[string]any{"amount": 1})
			return page[0].ID, page[0].Seq
		}
		send()
		id, seq := send()
		raw, _ := json.Marshal(map[string]string{"message_id": id})
		if _, _, err := c.Call(ctx, alice, "General", "general", "", "delete_message", raw, nil); err != nil {
			t.Fatal(err)
		}
		if _, next := send(); next != seq+1 {
			t.Fatalf("after deleting seq %d the next message got %d, want %d", seq, next, seq+1)
		}
	})
}
