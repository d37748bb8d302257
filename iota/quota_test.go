package iota

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db"
)

// TestRacingWritersCannotOvershootQuota: many writers of one user race at each limit; the check
// inside the write transaction lets exactly the limit's worth through.
func TestRacingWritersCannotOvershootQuota(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "iotad.db"), db.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, err := Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	s.SetLimits(Limits{MaxEntries: 25, MaxSettings: 25, MaxSettingsTotal: 10 << 10})
	race := func(write func(u string, i int) error) int {
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
					switch err := write(u.ID, g*5+i); {
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
	if n := race(func(u string, i int) error {
		_, _, err := s.AddEntry(ctx, u, Entry{Address: "a", Title: "t", Position: "p"}, nil)
		return err
	}); n != 25 {
		t.Fatalf("%d entries, limit 25", n)
	}
	if n := race(func(u string, i int) error {
		_, err := s.SaveSetting(ctx, u, fmt.Sprint(i), "x", nil)
		return err
	}); n != 25 {
		t.Fatalf("%d settings, limit 25", n)
	}
	if n := race(func(u string, i int) error {
		_, err := s.SaveSetting(ctx, u, fmt.Sprint(i), string(make([]byte, 1<<10)), nil)
		return err
	}); n != 10 {
		t.Fatalf("%d settings of 1 KiB, limit 10 KiB", n)
	}
}
