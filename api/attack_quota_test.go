package api_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	iotasvc "github.com/iotad/iotad/iota"
)

// refusedFor asserts err is error_invalid_data whose detail names limit.
func refusedFor(t *testing.T, err error, limit string) {
	t.Helper()
	var er *client.ErrorReply
	if !errors.As(err, &er) || er.Type != api.ErrTypeInvalidData || !strings.Contains(er.Detail, limit) {
		t.Fatalf("got %v, want error_invalid_data naming the %s", err, limit)
	}
}

func addEntry(c *client.Client, t *testing.T, i int) error {
	_, err := c.Request(ctxT(t), "add_community", map[string]any{
		"community_address": fmt.Sprint("sealed-address-", i), "community_title": "sealed-title", "position": "sealed-pos"})
	return err
}

func saveSetting(c *client.Client, t *testing.T, name string, size int) error {
	_, err := c.Request(ctxT(t), "settings_save", map[string]any{"settings_name": name, "payload": strings.Repeat("x", size)})
	return err
}

// TestIotaQuotasCannotBeExceeded: a user fills their list, their settings
// count and their settings bytes over a real socket; the write past each
// limit is refused with error_invalid_data naming the limit, and the
// writes that replace rather than add still work.
func TestIotaQuotasCannotBeExceeded(t *testing.T) {
	env := newEnv(t, nil)
	env.store.SetLimits(iotasvc.Limits{MaxEntries: 5, MaxSettings: 3, MaxSettingsTotal: 100 << 10})
	u := env.newUser()
	c := env.iota(u)
	for i := range 5 {
		if err := addEntry(c, t, i); err != nil {
			t.Fatal(err)
		}
	}
	refusedFor(t, addEntry(c, t, 5), "entry limit")
	entries, _, err := env.store.Entries(ctxT(t), u.ID)
	if err != nil || len(entries) != 5 {
		t.Fatalf("%d entries (%v)", len(entries), err)
	}
	// Replacing an entry in place adds none.
	if _, err := c.Request(ctxT(t), "add_community", map[string]any{"entry_id": entries[0].ID,
		"community_address": "a", "community_title": "b", "position": "c"}); err != nil {
		t.Fatalf("replace at the limit: %v", err)
	}

	for _, name := range []string{"a", "b", "c"} {
		if err := saveSetting(c, t, name, 10); err != nil {
			t.Fatal(err)
		}
	}
	refusedFor(t, saveSetting(c, t, "d", 10), "settings limit")
	if err := saveSetting(c, t, "a", 40<<10); err != nil {
		t.Fatalf("overwrite at the count limit: %v", err)
	}
	if err := saveSetting(c, t, "b", 40<<10); err != nil {
		t.Fatal(err)
	}
	refusedFor(t, saveSetting(c, t, "c", 30<<10), "settings size limit")
	// The one setting's own limit still holds and is named too.
	refusedFor(t, saveSetting(c, t, "c", iotasvc.MaxSettingsBytes+1), "longer than")
	if p, err := env.store.LoadSetting(ctxT(t), u.ID, "c"); err != nil || len(p) != 10 {
		t.Fatalf("the refused write changed c: %d bytes (%v)", len(p), err)
	}
}

// TestIotaQuotaRaceCannotOvershoot: two sockets of one user write as fast
// as they can at each limit; exactly the limit's worth succeed.
func TestIotaQuotaRaceCannotOvershoot(t *testing.T) {
	env := newEnv(t, nil)
	const entries, settings, blob = 20, 10, 30 << 10
	env.store.SetLimits(iotasvc.Limits{MaxEntries: entries, MaxSettings: settings, MaxSettingsTotal: 100 << 10})
	race := func(u testUser, per int, write func(c *client.Client, n int) error) int {
		t.Helper()
		socks := []*client.Client{env.iota(u), env.iota(u)}
		var won atomic.Int32
		var wg sync.WaitGroup
		for s, c := range socks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range per {
					err := write(c, s*per+i)
					switch {
					case err == nil:
						won.Add(1)
					case errType(err) != api.ErrTypeInvalidData:
						t.Errorf("write: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		return int(won.Load())
	}
	if n := race(env.newUser(), entries, func(c *client.Client, i int) error { return addEntry(c, t, i) }); n != entries {
		t.Fatalf("%d entries stored, limit %d", n, entries)
	}
	if n := race(env.newUser(), settings, func(c *client.Client, i int) error { return saveSetting(c, t, fmt.Sprint(i), 1) }); n != settings {
		t.Fatalf("%d settings stored, limit %d", n, settings)
	}
	u := env.newUser()
	if n := race(u, 4, func(c *client.Client, i int) error { return saveSetting(c, t, fmt.Sprint(i), blob) }); n != 3 {
		t.Fatalf("%d blobs of %d bytes stored, limit %d bytes", n, blob, 100<<10)
	}
}
