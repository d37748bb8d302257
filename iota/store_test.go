package iota

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db/dbtest"
)

func openStore(t *testing.T, b dbtest.Backend) *Store {
	t.Helper()
	s, err := Open(context.Background(), b.Open(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStoreOnEveryBackend walks the Iota's store through accounts, tokens,
// the versioned list and settings, on SQLite and on PostgreSQL alike.
func TestStoreOnEveryBackend(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		s := openStore(t, b)
		pub := icrypto.PublicKey{7, 0, 9}
		u, err := s.CreateUser(ctx, "ann", pub)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.User(ctx, u.ID)
		if err != nil || got.Name != "ann" || got.PublicKey != pub || got.CreatedAt.UnixMilli() != u.CreatedAt.UnixMilli() {
			t.Fatalf("user read back: %+v, %v", got, err)
		}
		if _, err := s.User(ctx, "nobody"); !errors.Is(err, ErrUnknownUser) {
			t.Fatalf("unknown user: %v", err)
		}

		steps := []struct {
			name string
			run  func() error
			want error
		}{
			{"first entry", func() error {
				_, v, err := s.AddEntry(ctx, u.ID, Entry{Address: "a1", Title: "t", Position: "p"}, ptr(0))
				return wantVersion(v, 1, err)
			}, nil},
			{"stale version", func() error {
				_, _, err := s.AddEntry(ctx, u.ID, Entry{Address: "a2", Title: "t", Position: "p"}, ptr(0))
				var ce *ConflictError
				if errors.As(err, &ce) && ce.Current != 1 {
					return errors.New("conflict names the wrong version")
				}
				return err
			}, ErrConflict},
			{"second entry, no version", func() error {
				_, v, err := s.AddEntry(ctx, u.ID, Entry{Address: "a2", Title: "t", Position: "p"}, nil)
				return wantVersion(v, 2, err)
			}, nil},
			{"replace a missing entry", func() error {
				_, _, err := s.AddEntry(ctx, u.ID, Entry{ID: "missing", Address: "a", Title: "t", Position: "p"}, nil)
				return err
			}, ErrNotFound},
			{"NUL in a field", func() error {
				_, _, err := s.AddEntry(ctx, u.ID, Entry{Address: "a\x00b", Title: "t", Position: "p"}, nil)
				return err
			}, ErrInvalidData},
			{"remove by address", func() error {
				v, err := s.RemoveEntry(ctx, u.ID, "", "a1", ptr(2))
				return wantVersion(v, 3, err)
			}, nil},
			{"settings are versioned with the list", func() error {
				v, err := s.SaveSetting(ctx, u.ID, "theme", "sealed€", ptr(3))
				return wantVersion(v, 4, err)
			}, nil},
			{"settings of an unknown user", func() error {
				_, err := s.SaveSetting(ctx, "nobody", "theme", "x", nil)
				return err
			}, ErrUnknownUser},
		}
		for _, st := range steps {
			if err := st.run(); !errors.Is(err, st.want) || (st.want == nil && err != nil) {
				t.Fatalf("%s: %v, want %v", st.name, err, st.want)
			}
		}
		entries, v, err := s.Entries(ctx, u.ID)
		if err != nil || v != 4 || len(entries) != 1 || entries[0].Address != "a2" {
			t.Fatalf("entries: %+v at %d, %v", entries, v, err)
		}
		if p, err := s.LoadSetting(ctx, u.ID, "theme"); err != nil || p != "sealed€" {
			t.Fatalf("setting: %q %v", p, err)
		}
		if names, err := s.SettingNames(ctx, u.ID); err != nil || len(names) != 1 {
			t.Fatalf("names: %v %v", names, err)
		}
		if err := s.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Entries(ctx, u.ID); !errors.Is(err, ErrUnknownUser) {
			t.Fatalf("entries of a deleted user: %v", err)
		}
	})
}

func ptr(v int64) *int64 { return &v }

func wantVersion(got, want int64, err error) error {
	if err == nil && got != want {
		return errors.New("wrong version")
	}
	return err
}

// TestRacingRegistrationsCannotOverspendAToken: a token of 3 uses, 12
// registrations at once through two stores on one database: exactly 3
// accounts, and the token shows 3 uses.
func TestRacingRegistrationsCannotOverspendAToken(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		target := b.New(t)
		var stores [2]*Store
		for i := range stores {
			s, err := Open(ctx, dbtest.OpenTarget(t, target))
			if err != nil {
				t.Fatal(err)
			}
			stores[i] = s
		}
		secret, tok, err := stores[0].CreateToken(ctx, 3, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				switch _, err := stores[i%2].Register(ctx, icrypto.PublicKey{byte(i)}, secret); {
				case err == nil:
					won.Add(1)
				case !errors.Is(err, ErrBadToken):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if won.Load() != 3 {
			t.Fatalf("%d registrations with a 3-use token", won.Load())
		}
		tokens, err := stores[1].Tokens(ctx)
		if err != nil || len(tokens) != 1 || tokens[0].ID != tok.ID || tokens[0].Uses != 3 || tokens[0].Revoked {
			t.Fatalf("tokens: %+v %v", tokens, err)
		}
		if err := stores[1].RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if tokens, _ := stores[0].Tokens(ctx); !tokens[0].Revoked {
			t.Fatal("revoked token not shown revoked")
		}
		if users, err := stores[0].Users(ctx); err != nil || len(users) != 3 {
			t.Fatalf("%d users, %v", len(users), err)
		}
	})
}
