package iota

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db/dbtest"
)

// TestRacingWritersCannotOvershootQuota: many writers of one user race at each limit, through
// two stores on one database (two processes, or two nodes on PostgreSQL); the check inside the
// write transaction lets exactly the limit's worth through.
func TestRacingWritersCannotOvershootQuota(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		testRacingWriters(t, b)
	})
}

func testRacingWriters(t *testing.T, b dbtest.Backend) {
	ctx := context.Background()
	target := b.New(t)
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, dbtest.OpenTarget(t, target))
		if err != nil {
			t.Fatal(err)
		}
		s.SetLimits(Limits{MaxEntries: 25, MaxSettings: 25, MaxSettingsTotal: 10 << 10})
		stores[i] = s
	}
	s := stores[0]
	race := func(write func(s *Store, u string, i int) error) int {
		u, err := s.CreateUser(ctx, "racer", icrypto.PublicKey{1})
		if err != nil {
			t.Fatal(err)
		}
		var won atomic.Int32
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5 {
					switch err := write(stores[g%2], u.ID, g*5+i); {
					case err == nil:
						won.Add(1)
					case !errors.Is(err, ErrInvalidData):
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		return int(won.Load())
	}
	if n := race(func(s *Store, u string, i int) error {
		_, _, err := s.AddEntry(ctx, u, Entry{Address: "a", Title: "t", Position: "p"}, nil)
		return err
	}); n != 25 {
		t.Fatalf("%d entries, limit 25", n)
	}
	if n := race(func(s *Store, u string, i int) error {
		_, err := s.SaveSetting(ctx, u, fmt.Sprint(i), "x", nil)
		return err
	}); n != 25 {
		t.Fatalf("%d settings, limit 25", n)
	}
	if n := race(func(s *Store, u string, i int) error {
		_, err := s.SaveSetting(ctx, u, fmt.Sprint(i), strings.Repeat("x", 1<<10), nil)
		return err
	}); n != 10 {
		t.Fatalf("%d settings of 1 KiB, limit 10 KiB", n)
	}
}
