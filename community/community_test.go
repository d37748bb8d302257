package community

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db"
	"github.com/iotad/iotad/internal/db/dbtest"
)

func openTest(t testing.TB, sync db.Sync) (*Service, *Community, string) {
	t.Helper()
	dir := t.TempDir()
	return openTarget(t, filepath.Join(dir, "iotad.db"), sync, dir)
}

// openOn is openTest on backend b; the string is the key directory.
func openOn(t testing.TB, b dbtest.Backend) (*Service, *Community, string) {
	t.Helper()
	return openTarget(t, b.New(t), db.SyncNormal, t.TempDir())
}

func openTarget(t testing.TB, target string, sync db.Sync, dir string) (*Service, *Community, string) {
	t.Helper()
	d, err := db.Open(context.Background(), target, sync)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), d, Options{KeyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Create(context.Background(), "Test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); d.Close() })
	return s, c, dir
}

func key(t testing.TB) icrypto.PublicKey {
	pub, _, err := icrypto.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestKeyFileAndReload(t *testing.T) {
	dbtest.Each(t, testKeyFileAndReload)
}

func testKeyFileAndReload(t *testing.T, b dbtest.Backend) {
	dir := t.TempDir()
	ctx := context.Background()
	d := b.Open(t)
	s, _ := Open(ctx, d, Options{KeyDir: dir})
	c, err := s.Create(ctx, "Home")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDefaultChannels(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(s.keyFile(c.ID))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}
	tree := string(c.TreeJSON())
	games, err := s.Create(ctx, "Games")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetAddresses(ctx, games, ":1990", "games.example:1990"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetServedAddr(ctx, games, "games.example:1990"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(ctx, d, Options{KeyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c2, err := s2.Get(c.ID)
	if err != nil || c2.Public != c.Public || string(c2.TreeJSON()) != tree {
		t.Fatalf("reloaded: %v %s", err, c2.TreeJSON())
	}
	g, err := s2.Get(games.ID)
	if err != nil || g.ListenAddr != ":1990" || g.PublicAddr != "games.example:1990" || g.ServedAddr != "games.example:1990" {
		t.Fatalf("reloaded addresses: %v", err)
	}
	// The newest migration's number, whichever engine's half it is.
	names, _ := fs.Glob(migrations, "migrations/*.sql")
	slices.Sort(names)
	newest, _ := strconv.Atoi(path.Base(names[len(names)-1])[:4])
	if v, _ := d.Version(ctx, "community"); v != newest {
		t.Fatalf("schema version %d", v)
	}
	// A key file that does not match refuses to start.
	os.WriteFile(s.keyFile(c.ID), icrypto.FormatKeyFile(c.ID, icrypto.PrivateKey{1}), 0o600)
	if _, err := Open(ctx, d, Options{KeyDir: dir}); err == nil {
		t.Fatal("a mismatched key file was accepted")
	}
}

// TestJoinRace: many joins race for the uses of an invite, through two
// services on one database (two nodes, on PostgreSQL); exactly the allowed
// number win.
func TestJoinRace(t *testing.T) {
	dbtest.Each(t, testJoinRace)
}

func testJoinRace(t *testing.T, b dbtest.Backend) {
	target, dir := b.New(t), t.TempDir()
	s, c, _ := openTarget(t, target, db.SyncNormal, dir)
	ctx := context.Background()
	s2, err := Open(ctx, dbtest.OpenTarget(t, target), Options{KeyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c2, err := s2.Get(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []*Community{c, c2}
	_ = s
	for _, uses := range []int{1, 3} {
		secret, _, err := c.CreateOperatorInvite(ctx, InviteOptions{MaxUses: uses})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := nodes[i%2].Join(ctx, secret, uuid.NewString(), key(t))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case !errors.Is(err, ErrBadInvite):
					t.Errorf("join: %v", err)
				}
			}()
		}
		wg.Wait()
		if won != uses {
			t.Fatalf("%d joins won an invite of %d uses", won, uses)
		}
	}
}

func TestMessageIDsIncrease(t *testing.T) {
	var g idGen
	now := time.Now()
	prev := g.next(now, 1)
	for i := 0; i < 10000; i++ {
		// The same millisecond, and a clock that steps back.
		at := now
		if i%100 == 0 {
			at = now.Add(-time.Second)
		}
		seq := int64(i)*104729 + 2 // from small to past 32 bits
		if i == 9999 {
			seq = maxIDSeq
		}
		id := g.next(at, seq)
		if strings.Compare(id.String(), prev.String()) <= 0 || id.Version() != 7 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("id %s after %s", id, prev)
		}
		if got := idSeq(id); got != seq {
			t.Fatalf("id %s carries seq %d, want %d", id, got, seq)
		}
		prev = id
	}
}

// seedMessages writes n messages straight into a channel, in one
// transaction, the way a long-lived channel would have them.
func seedMessages(t testing.TB, s *Service, c *Community, ch *Channel, n int) []uuid.UUID {
	t.Helper()
	ctx := context.Background()
	ids := make([]uuid.UUID, n)
	base := time.Now().Add(-time.Duration(n) * time.Millisecond)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(ctx, `UPDATE channels SET last_seq = last_seq + $1 WHERE id = $2 RETURNING last_seq`, n, ch.ID).Scan(&last); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, insertMessage)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range n {
			at := base.Add(time.Duration(i) * time.Millisecond)
			seq := last - int64(n) + int64(i) + 1
			ids[i] = s.ids.next(at, seq)
			if _, err := stmt.ExecContext(ctx, ch.ID, seq, ids[i][:], "seed", fmt.Sprintf("message %d", i), at.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func getPage(t testing.TB, c *Community, ch *Channel, payload map[string]any) ([]Message, bool) {
	t.Helper()
	raw, _ := json.Marshal(payload)
	res, err := getMessages(context.Background(), &Call{Community: c, Channel: ch, Member: Member{UserID: "x", Role: RoleMember}, Payload: raw})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Payload.(map[string]any)
	return p["messages"].([]Message), p["has_more"].(bool)
}

// TestDeepOffsets checks the in-memory offset index against SQL's OFFSET,
// also across writes and deletions after it was built.
func TestDeepOffsets(t *testing.T) {
	dbtest.Each(t, testDeepOffsets)
}

func testDeepOffsets(t *testing.T, b dbtest.Backend) {
	s, c, _ := openOn(t, b)
	ctx := context.Background()
	if err := c.CreateDefaultChannels(ctx); err != nil {
		t.Fatal(err)
	}
	ch, _ := c.Find("General", "general")
	seedMessages(t, s, c, ch, 5000)
	owner := OperatorMember()
	check := func() {
		t.Helper()
		for _, offset := range []int{1000, 1001, 2500, 4949, 4990, 5000, 9000} {
			got, more := getPage(t, c, ch, map[string]any{"loaded_messages": offset, "amount": 50})
			rows, err := s.db.Read.Query(`SELECT `+messageColumns+` FROM `+messageSource+` WHERE m.channel_id = $1 ORDER BY m.seq DESC LIMIT 51 OFFSET $2`, ch.ID, offset)
			if err != nil {
				t.Fatal(err)
			}
			want, wantMore, _ := scanMessages(rows, 50)
			if !slices.EqualFunc(got, want, func(a, b Message) bool { return a.ID == b.ID }) || more != wantMore {
				t.Fatalf("offset %d: got %d messages (more %v), want %d (more %v)", offset, len(got), more, len(want), wantMore)
			}
		}
	}
	check()
	for i := 0; i < 30; i++ {
		if _, _, err := c.Call(ctx, owner, "General", "general", "", "send_message", json.RawMessage(`{"message":"new"}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	page, _ := getPage(t, c, ch, map[string]any{"loaded_messages": 1500, "amount": 3})
	for _, m := range page {
		raw, _ := json.Marshal(map[string]string{"message_id": m.ID})
		if _, _, err := c.Call(ctx, owner, "General", "general", "", "delete_message", raw, nil); err != nil {
			t.Fatal(err)
		}
	}
	check()
}

func TestPermissionsDoc(t *testing.T) {
	raw, err := os.ReadFile("../docs/PERMISSIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for p, role := range DefaultPermissions() {
		row := fmt.Sprintf("| `%s` | %s |", p, role)
		if !strings.Contains(doc, row) {
			t.Errorf("docs/PERMISSIONS.md lacks the row %q", row)
		}
	}
}
