package community

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/iotad/iotad/internal/db/dbtest"
)

func TestOverridesStoredAndReloaded(t *testing.T) {
	dbtest.Each(t, testOverridesStoredAndReloaded)
}

func testOverridesStoredAndReloaded(t *testing.T, b dbtest.Backend) {
	dir := t.TempDir()
	ctx := context.Background()
	d := b.Open(t)
	s, err := Open(ctx, d, Options{KeyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Create(ctx, "Home")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []struct{ path, name, codec string }{
		{"", "Staff", CodecCategory}, {"Staff", "plans", CodecText}, {"Staff", "room", CodecVoice},
		{"", "news", CodecText}, {"", "lobby", CodecText},
	} {
		if err := c.CreateChannel(ctx, operatorActor, ch.path, ch.name, ch.codec, nil); err != nil {
			t.Fatal(err)
		}
	}
	if c.Private() {
		t.Fatal("private before any override")
	}
	set := func(path, name string, raw string) {
		t.Helper()
		os, err := ParseOverrides(json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetChannelPermissions(ctx, operatorActor, path, name, os); err != nil {
			t.Fatal(err)
		}
	}
	set("", "Staff", `{"member":{"view":false},"moderator":{"connect":false}}`)
	set("", "news", `{"member":{"post":false},"moderator":{"post":true}}`)

	memberTree := string(c.TreeJSONAs(RoleMember))
	if strings.Contains(memberTree, "Staff") || strings.Contains(memberTree, "plans") || strings.Contains(memberTree, "overrides") ||
		strings.Contains(memberTree, "private") || !strings.Contains(memberTree, `"news"`) {
		t.Fatalf("member tree %s", memberTree)
	}
	modTree := string(c.TreeJSONAs(RoleModerator))
	if !strings.Contains(modTree, `"plans":{"codec":"text","data":{},"private":true}`) || strings.Contains(modTree, "overrides") {
		t.Fatalf("moderator tree %s", modTree)
	}
	ownerTree := string(c.TreeJSON())
	if !strings.Contains(ownerTree, `"private":true,"overrides":{"moderator":{"connect":false},"member":{"view":false}}}`) ||
		!strings.Contains(ownerTree, `"news":{"codec":"text","data":{},"overrides":{"moderator":{"post":true},"member":{"post":false}}}`) {
		t.Fatalf("owner tree %s", ownerTree)
	}

	// A category's overrides are its children's defaults; the nearest wins.
	room, _ := c.Find("Staff", "room")
	news, _ := c.Find("", "news")
	lobby, _ := c.Find("", "lobby")
	for _, tc := range []struct {
		ch   *Channel
		role Role
		p    Permission
		want bool
	}{
		{room, RoleModerator, PermVoice, false},
		{room, RoleAdmin, PermVoice, true},
		{room, RoleOwner, PermVoice, true},
		{news, RoleMember, PermPost, false},
		{news, RoleModerator, PermPost, true},
		{lobby, RoleMember, PermPost, true},
		{news, RoleMember, PermVoice, true},
	} {
		if got := c.allows(tc.ch, tc.role, tc.p); got != tc.want {
			t.Errorf("%s may %s in %s: %v", tc.role, tc.p, tc.ch.Name, got)
		}
	}
	if c.CanView(room, RoleMember) || !c.CanView(room, RoleModerator) || !c.CanView(lobby, RoleMember) {
		t.Fatal("view inherited wrongly from the category")
	}
	if got := c.readableChannels(Member{Role: RoleMember}); len(got) != 2 {
		t.Fatalf("a member reads %v", got)
	}
	if _, err := c.FindAs(RoleMember, "Staff", "plans"); !errors.Is(err, ErrNotFound) || err.Error() != `not found: no category "Staff"` {
		t.Fatalf("hidden category: %v", err)
	}

	s.Close()
	s2, err := Open(ctx, d, Options{KeyDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c2, err := s2.Get(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Private() || string(c2.TreeJSON()) != ownerTree || string(c2.TreeJSONAs(RoleMember)) != memberTree {
		t.Fatalf("reloaded:\n%s\n%s", c2.TreeJSON(), c2.TreeJSONAs(RoleMember))
	}
	// Clearing them makes the channel public again, and deleting a
	// channel deletes its overrides with it.
	if err := c2.SetChannelPermissions(ctx, operatorActor, "", "Staff", map[Role]Override{}); err != nil {
		t.Fatal(err)
	}
	if c2.Private() || !strings.Contains(string(c2.TreeJSONAs(RoleMember)), "plans") {
		t.Fatalf("cleared: %s", c2.TreeJSONAs(RoleMember))
	}
	// Overrides that hide nothing leave fan-out unfiltered.
	ref := &ChannelRef{ID: news.ID, Codec: CodecText, Name: "news"}
	if _, filtered := c2.Viewers(ref); filtered || !c2.Overridden() {
		t.Fatal("a post override filters fan-out")
	}
	if err := c2.DeleteChannel(ctx, operatorActor, "", "news"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := d.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM channel_overrides`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d overrides left (%v)", n, err)
	}
}

func TestParseOverrides(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string // overridesText, or "" for an error
	}{
		{`{}`, "none"},
		{`{"member":{}}`, "none"},
		{`{"member":{"view":null,"post":null}}`, "none"},
		{`{"member":{"view":false,"post":true},"admin":{"connect":false}}`, "admin:connect=deny member:view=deny,post=allow"},
		{`null`, ""},
		{`[]`, ""},
		{`"member"`, ""},
		{`{"owner":{"view":false}}`, ""},
		{`{"guest":{"view":false}}`, ""},
		{`{"member":null}`, ""},
		{`{"member":[]}`, ""},
		{`{"member":{"view":"no"}}`, ""},
		{`{"member":{"view":0}}`, ""},
		{`{"member":{"speak":false}}`, ""},
	} {
		os, err := ParseOverrides(json.RawMessage(tc.raw))
		if tc.want == "" {
			if !errors.Is(err, ErrInvalidData) {
				t.Errorf("%s: %v", tc.raw, err)
			}
			continue
		}
		if err != nil || overridesText(os) != tc.want {
			t.Errorf("%s: %q %v", tc.raw, overridesText(os), err)
		}
	}
}

func FuzzParseOverrides(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"member":{"view":false}}`, `{"admin":{"post":true,"connect":null}}`,
		`{"owner":{}}`, `{"member":{"view":1}}`, `{"member":{"x":true}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		os, err := ParseOverrides(json.RawMessage(raw))
		if err != nil {
			if !errors.Is(err, ErrInvalidData) {
				t.Fatalf("wrong error type: %v", err)
			}
			return
		}
		for r, o := range os {
			if r.rank() == 0 || r == RoleOwner || o.empty() {
				t.Fatalf("%q gave %s: %+v", raw, r, o)
			}
			for _, a := range []Access{o.View, o.Post, o.Connect} {
				if a != Allow && a != Deny && a != Inherit {
					t.Fatalf("%q gave access %d", raw, a)
				}
			}
		}
	})
}
