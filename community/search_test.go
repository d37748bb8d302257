package community

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db"
	"github.com/iotad/iotad/internal/db/dbtest"
)

func send(t testing.TB, c *Community, m Member, path, name, body string) string {
	t.Helper()
	raw, _ := json.Marshal(map[string]string{"message": body})
	_, res, err := c.Call(context.Background(), m, path, name, "text", "send_message", raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Payload.(map[string]any)["message_id"].(string)
}

func search(t testing.TB, c *Community, m Member, payload map[string]any) ([]SearchHit, bool) {
	t.Helper()
	raw, _ := json.Marshal(payload)
	hits, more, err := c.Search(context.Background(), m, raw)
	if err != nil {
		t.Fatalf("search %s: %v", raw, err)
	}
	return hits, more
}

func bodies(hits []SearchHit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.Body
	}
	return out
}

// TestSearch: words found in any text channel, newest last, with the
// channel named; author, channel and before narrow it; an edited message
// is found by its new words only and a deleted one not at all.
func TestSearch(t *testing.T) {
	dbtest.Each(t, testSearch)
}

func testSearch(t *testing.T, b dbtest.Backend) {
	_, c, _ := openOn(t, b)
	ctx := context.Background()
	if err := c.CreateDefaultChannels(ctx); err != nil {
		t.Fatal(err)
	}
	owner := addMember(t, c, RoleOwner)
	if err := c.CreateChannel(ctx, owner, "", "lounge", CodecText, nil); err != nil {
		t.Fatal(err)
	}
	alice, bob := addMember(t, c, RoleMember), addMember(t, c, RoleMember)
	send(t, c, alice, "General", "general", "The Quick brown fox")
	send(t, c, bob, "", "lounge", "a quick question about foxes")
	send(t, c, bob, "General", "general", "nothing to see")
	edited := send(t, c, alice, "", "lounge", "old words, quick")
	deleted := send(t, c, bob, "General", "general", "quick and gone")
	last := send(t, c, alice, "General", "general", "QUICK! Café au lait")

	raw, _ := json.Marshal(map[string]string{"message_id": edited, "message": "new words entirely"})
	if _, _, err := c.Call(ctx, alice, "", "lounge", "text", "edit_message", raw, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ = json.Marshal(map[string]string{"message_id": deleted})
	if _, _, err := c.Call(ctx, bob, "General", "general", "text", "delete_message", raw, nil); err != nil {
		t.Fatal(err)
	}

	hits, more := search(t, c, bob, map[string]any{"query": "quick"})
	if got, want := bodies(hits), []string{"The Quick brown fox", "a quick question about foxes", "QUICK! Café au lait"}; !slices.Equal(got, want) || more {
		t.Fatalf("quick: %q more=%v, want %q", got, more, want)
	}
	if h := hits[2]; h.ID != last || h.Path != "General" || h.Name != "general" || h.SenderID != alice.UserID || h.SendTime == 0 {
		t.Fatalf("hit %+v", h)
	}
	if h := hits[1]; h.Path != "" || h.Name != "lounge" {
		t.Fatalf("hit %+v", h)
	}
	cases := []struct {
		name    string
		payload map[string]any
		want    []string
	}{
		{"two words", map[string]any{"query": "brown quick"}, []string{"The Quick brown fox"}},
		{"words in any order and case", map[string]any{"query": "FOX the"}, []string{"The Quick brown fox"}},
		{"punctuation around words", map[string]any{"query": `"quick" -brown* (fox)`}, []string{"The Quick brown fox"}},
		{"whole words only", map[string]any{"query": "fo"}, []string{}},
		{"author", map[string]any{"query": "quick", "author_id": bob.UserID}, []string{"a quick question about foxes"}},
		{"unknown author", map[string]any{"query": "quick", "author_id": "nobody"}, []string{}},
		{"channel", map[string]any{"query": "quick", "path": "General", "name": "general"}, []string{"The Quick brown fox", "QUICK! Café au lait"}},
		{"before", map[string]any{"query": "quick", "before": last}, []string{"The Quick brown fox", "a quick question about foxes"}},
		{"before and amount", map[string]any{"query": "quick", "before": last, "amount": 1}, []string{"a quick question about foxes"}},
		{"edited: new words", map[string]any{"query": "entirely"}, []string{"new words entirely"}},
		{"edited: old words", map[string]any{"query": "old"}, []string{}},
		{"deleted", map[string]any{"query": "gone"}, []string{}},
		{"no match", map[string]any{"query": "zebra"}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hits, _ := search(t, c, bob, tc.payload)
			if got := bodies(hits); !slices.Equal(got, tc.want) {
				t.Fatalf("%v: %q, want %q", tc.payload, got, tc.want)
			}
		})
	}
	hits, more = search(t, c, bob, map[string]any{"query": "quick", "amount": 2})
	if got := bodies(hits); !slices.Equal(got, []string{"a quick question about foxes", "QUICK! Café au lait"}) || !more {
		t.Fatalf("amount 2: %q more=%v", got, more)
	}

	// Deleting a channel takes its messages out of search too.
	if err := c.DeleteChannel(ctx, owner, "", "lounge"); err != nil {
		t.Fatal(err)
	}
	hits, _ = search(t, c, bob, map[string]any{"query": "words"})
	if len(hits) != 0 {
		t.Fatalf("after deleting the channel: %q", bodies(hits))
	}
}

// TestSearchBadInput: every bad field gets its one error, and a member
// banned since login finds nothing.
func TestSearchBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		_, c, _ := openOn(t, b)
		ctx := context.Background()
		c.CreateDefaultChannels(ctx)
		m := addMember(t, c, RoleMember)
		id := send(t, c, m, "General", "general", "hello there")
		cases := []struct {
			payload string
			want    error
		}{
			{`{}`, ErrInvalidData},
			{`{"query": ""}`, ErrInvalidData},
			{`{"query": 5}`, ErrInvalidData},
			{`{"query": "` + strings.Repeat("a", MaxSearchQuery+1) + `"}`, ErrInvalidData},
			{`{"query": "` + strings.Repeat("é", MaxSearchQuery+1) + `"}`, ErrInvalidData},
			{`{"query": "?!* -- \"\" ()"}`, ErrInvalidData},
			{`{"query": "🙂🙂"}`, ErrInvalidData},
			{`{"query": "` + manyWords(MaxSearchTerms+1) + `"}`, ErrInvalidData},
			{`{"query": "hello", "amount": 0}`, ErrInvalidData},
			{`{"query": "hello", "amount": 51}`, ErrInvalidData},
			{`{"query": "hello", "amount": "x"}`, ErrInvalidData},
			{`{"query": "hello", "amount": 1.5}`, ErrInvalidData},
			{`{"query": "hello", "author_id": ""}`, ErrInvalidData},
			{`{"query": "hello", "author_id": 7}`, ErrInvalidData},
			{`{"query": "hello", "author_id": "` + strings.Repeat("u", 129) + `"}`, ErrInvalidData},
			{`{"query": "hello", "before": "not-a-uuid"}`, ErrNotFound},
			{`{"query": "hello", "before": "` + uuid.NewString() + `"}`, ErrNotFound},
			{`{"query": "hello", "before": 12}`, ErrInvalidData},
			{`{"query": "hello", "name": "nowhere"}`, ErrNotFound},
			{`{"query": "hello", "path": "General", "name": "voice"}`, ErrInvalidData},
			{`{"query": "hello", "path": "General"}`, ErrInvalidData},
			{`{"query": "hello", "name": 3}`, ErrInvalidData},
		}
		for _, tc := range cases {
			hits, _, err := c.Search(ctx, m, json.RawMessage(tc.payload))
			if !errors.Is(err, tc.want) {
				t.Errorf("%.80s: %v (hits %d), want %v", tc.payload, err, len(hits), tc.want)
			}
		}
		if hits, _ := search(t, c, m, map[string]any{"query": "hello", "before": id}); len(hits) != 0 {
			t.Fatalf("before the only message: %q", bodies(hits))
		}
		if err := c.Ban(ctx, OperatorMember(), m.UserID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Search(ctx, m, json.RawMessage(`{"query": "hello"}`)); !errors.Is(err, ErrPermission) {
			t.Fatalf("banned: %v", err)
		}
	})
}

// TestSearchMigrationIndexesStoredMessages: messages stored before
// migration 0006 are found after it, in the order they were sent.
func TestSearchMigrationIndexesStoredMessages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		ctx := context.Background()
		target := b.New(t)
		d, err := db.Open(ctx, target, db.SyncNormal)
		if err != nil {
			t.Fatal(err)
		}
		sub, _ := fs.Sub(migrations, "migrations")
		if err := d.Migrate(ctx, "community", before0006{sub}); err != nil {
			t.Fatal(err)
		}
		keyDir := t.TempDir()
		pub, priv, err := icrypto.GenerateKey(crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(keyDir, "community-c.key"), icrypto.FormatKeyFile("c", priv), 0o600); err != nil {
			t.Fatal(err)
		}
		err = d.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO communities(id, name, public_key, created_at) VALUES('c', 'C', $1, 0)`, pub[:]); err != nil {
				return err
			}
			for _, q := range []string{
				`INSERT INTO channels(id, community_id, name, codec, sort_key, last_seq) VALUES(1, 'c', 'a', 'text', 0, 2), (2, 'c', 'b', 'text', 1, 2)`,
			} {
				if _, err := tx.ExecContext(ctx, d.Schema(q)); err != nil {
					return err
				}
			}
			for i, row := range []struct {
				ch   int
				seq  int
				at   int64
				body string
			}{{2, 1, 100, "old apple"}, {1, 1, 200, "old apple pie"}, {1, 2, 300, "pear"}, {2, 2, 400, "apple late"}} {
				id := uuid.New()
				if _, err := tx.ExecContext(ctx, `INSERT INTO messages(channel_id, seq, id, sender_id, body, send_time) VALUES($1, $2, $3, 'u', $4, $5)`,
					row.ch, row.seq, id[:], row.body, row.at); err != nil {
					return fmt.Errorf("row %d: %w", i, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		d, err = db.Open(ctx, target, db.SyncNormal)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(ctx, d, Options{KeyDir: keyDir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(); d.Close() })
		c := s.All()[0]
		hits, _ := search(t, c, OperatorMember(), map[string]any{"query": "apple"})
		if got, want := bodies(hits), []string{"old apple", "old apple pie", "apple late"}; !slices.Equal(got, want) {
			t.Fatalf("after migration: %q, want %q", got, want)
		}
		// A message sent after the migration sorts after those before it.
		m := addMember(t, c, RoleMember)
		send(t, c, m, "", "a", "apple now")
		hits, _ = search(t, c, m, map[string]any{"query": "apple", "amount": 2})
		if got, want := bodies(hits), []string{"apple late", "apple now"}; !slices.Equal(got, want) {
			t.Fatalf("after a send: %q, want %q", got, want)
		}
	})
}

// before0006 is the community migrations up to 0005.
type before0006 struct{ fs.FS }

func (f before0006) Open(name string) (fs.File, error) {
	if name >= "0006" && name != "." {
		return nil, fs.ErrNotExist
	}
	return f.FS.Open(name)
}

func (f before0006) Glob(pattern string) ([]string, error) {
	all, err := fs.Glob(f.FS, pattern)
	return slices.DeleteFunc(all, func(n string) bool { return n >= "0006" }), err
}

func manyWords(n int) string {
	var words []string
	for i := range n {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	return strings.Join(words, " ")
}

func benchEnvInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

// FuzzSearchQuery: whatever a member types, the query built from it is
// valid FTS5 (SQLite never reports a syntax error) or refused as invalid
// data before it reaches the database.
func FuzzSearchQuery(f *testing.F) {
	for _, s := range []string{"hello", `"`, `""`, "a AND b", "NEAR(a b)", "a*", "^a", "-a", "a:b", "body:x", "{a b}", "(", "a OR", "NOT", "é́", "\u0301", "x\u200by", "日本語の文", "don't", "😀 a", "a\x00b"} {
		f.Add(s)
	}
	d, err := db.Open(context.Background(), f.TempDir()+"/fuzz.db", db.SyncNormal)
	if err != nil {
		f.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	_, err = d.Write.ExecContext(ctx, `CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 2', columnsize=0);
		INSERT INTO t(rowid, body) VALUES(1, 'hello world'), (2, 'don''t stop');`)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query string) {
		terms, err := searchTerms(query)
		if err != nil {
			if !errors.Is(err, ErrInvalidData) {
				t.Fatalf("%q: %v", query, err)
			}
			return
		}
		if len(terms) == 0 || len(terms) > MaxSearchTerms {
			t.Fatalf("%q: %d terms", query, len(terms))
		}
		var n int
		if err := d.Write.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE t MATCH ?`, ftsQuery(terms)).Scan(&n); err != nil {
			t.Fatalf("%q → %s: %v", query, ftsQuery(terms), err)
		}
	})
}

// benchWords is a vocabulary whose use follows Zipf's law, as words in
// chat do: a few very common, a long tail of rare ones.
func benchWords(n int) []string {
	common := strings.Fields("the a to and i you it is that of in for on we this be have not with so but what are at just do")
	words := slices.Clone(common)
	for i := len(words); i < n; i++ {
		words = append(words, fmt.Sprintf("w%dx", i))
	}
	return words
}

// BenchmarkSearch fills a database with 1,000,000 messages over 8 text
// channels and 200 authors, straight into the store in big transactions
// (through the triggers a send runs), then measures search latency over
// many different queries. Set IOTAD_BENCH_SEARCH_MESSAGES to change the
// count.
func BenchmarkSearch(b *testing.B) {
	benchmarkSearch(b, func(b *testing.B) (*Service, *Community) {
		s, c, _ := openTest(b, db.SyncNormal)
		return s, c
	})
}

// BenchmarkSearchPostgres is BenchmarkSearch on the IOTAD_TEST_PG server.
func BenchmarkSearchPostgres(b *testing.B) {
	benchmarkSearch(b, func(b *testing.B) (*Service, *Community) {
		s, c, _ := openOn(b, dbtest.Postgres)
		return s, c
	})
}

func benchmarkSearch(b *testing.B, open func(b *testing.B) (*Service, *Community)) {
	total := 1_000_000
	if v := benchEnvInt("IOTAD_BENCH_SEARCH_MESSAGES"); v > 0 {
		total = v
	}
	const channels, authors = 8, 200
	s, c := open(b)
	ctx := context.Background()
	owner := OperatorMember()
	var chans []*Channel
	for i := range channels {
		name := fmt.Sprintf("text%d", i)
		if err := c.CreateChannel(ctx, owner, "", name, CodecText, nil); err != nil {
			b.Fatal(err)
		}
		ch, _ := c.Find("", name)
		chans = append(chans, ch)
	}
	words := benchWords(20000)
	zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, uint64(len(words)-1))
	authorOf := rand.NewZipf(rand.New(rand.NewPCG(3, 4)), 1.2, 1, authors-1)
	start := time.Now()
	base := time.Now().Add(-time.Duration(total) * time.Second)
	var ids []uuid.UUID
	const batch = 50_000
	for done := 0; done < total; done += batch {
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			stmt, err := tx.PrepareContext(ctx, insertMessage)
			if err != nil {
				return err
			}
			defer stmt.Close()
			for i := done; i < min(done+batch, total); i++ {
				ch := chans[i%channels]
				seq := int64(i/channels + 1)
				at := base.Add(time.Duration(i) * time.Second)
				id := s.ids.next(at, seq)
				if i%1000 == 0 {
					ids = append(ids, id)
				}
				var body strings.Builder
				for w := range 3 + i%12 {
					if w > 0 {
						body.WriteByte(' ')
					}
					body.WriteString(words[zipf.Uint64()])
				}
				author := fmt.Sprintf("author%d", authorOf.Uint64())
				if _, err := stmt.ExecContext(ctx, ch.ID, seq, id[:], author, body.String(), at.UnixMilli()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, ch := range chans {
		if _, err := s.db.Write.ExecContext(ctx, `UPDATE channels SET last_seq = $1 WHERE id = $2`, total/channels+1, ch.ID); err != nil {
			b.Fatal(err)
		}
	}
	if s.db.Dialect == db.Postgres {
		s.db.Write.ExecContext(ctx, `ANALYZE messages`)
	}
	b.Logf("filled %d messages in %s", total, time.Since(start).Round(time.Second))
	rng := rand.New(rand.NewPCG(5, 6))
	kinds := []struct {
		name    string
		payload func() map[string]any
	}{
		{"common", func() map[string]any { return map[string]any{"query": words[rng.IntN(10)]} }},
		{"rare", func() map[string]any { return map[string]any{"query": words[1000+rng.IntN(19000)]} }},
		{"two-words", func() map[string]any {
			return map[string]any{"query": words[rng.IntN(100)] + " " + words[rng.IntN(2000)]}
		}},
		{"author", func() map[string]any {
			return map[string]any{"query": words[rng.IntN(50)], "author_id": fmt.Sprintf("author%d", rng.IntN(20))}
		}},
		{"before", func() map[string]any {
			return map[string]any{"query": words[rng.IntN(50)], "before": ids[rng.IntN(len(ids))].String()}
		}},
		{"channel", func() map[string]any {
			return map[string]any{"query": words[rng.IntN(200)], "name": chans[rng.IntN(channels)].Name}
		}},
	}
	for _, kind := range kinds {
		b.Run(kind.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				raw, _ := json.Marshal(kind.payload())
				t0 := time.Now()
				_, _, err := c.Search(ctx, owner, raw)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatalf("%s: %v", raw, err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
