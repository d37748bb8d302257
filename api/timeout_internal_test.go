package api

import (
	"errors"
	"testing"
	"time"

	"github.com/iotad/iotad/community"
)

// FuzzTimeoutUntil: whatever until and duration say, timeoutUntil either
// refuses with ErrInvalidData or gives a time 1 second to 28 days ahead.
func FuzzTimeoutUntil(f *testing.F) {
	now := time.UnixMilli(1_800_000_000_000)
	f.Add(true, int64(0), false, int64(60))
	f.Add(false, now.Add(time.Hour).UnixMilli(), true, int64(0))
	f.Add(true, now.UnixMilli()+1, true, int64(1))
	f.Add(false, int64(-1), false, int64(28*86400+1))
	f.Fuzz(func(t *testing.T, hasUntil bool, until int64, hasDuration bool, duration int64) {
		var u, d *int64
		if hasUntil {
			u = &until
		}
		if hasDuration {
			d = &duration
		}
		got, err := timeoutUntil(now, u, d)
		if err != nil {
			if !errors.Is(err, ErrInvalidData) {
				t.Fatalf("error of no wire type: %v", err)
			}
			return
		}
		if !got.After(now) || got.Sub(now) > community.MaxTimeout {
			t.Fatalf("until %v, %v from now", got, got.Sub(now))
		}
	})
}
