package community

import (
	"context"
	"testing"
	"time"

	"github.com/iotad/iotad/internal/db/dbtest"
)

func TestMemberCacheFollowsWrites(t *testing.T) { dbtest.Each(t, testMemberCacheFollowsWrites) }

// testMemberCacheFollowsWrites: every write that changes a member's row is
// seen by the next Member, though the row was cached before it: a stale
// row here is a banned member logging in.
func testMemberCacheFollowsWrites(t *testing.T, b dbtest.Backend) {
	s, c, _ := openOn(t, b)
	if s.members == nil {
		t.Fatal("a node alone has no member cache")
	}
	ctx := context.Background()
	owner := addMember(t, c, RoleOwner)
	m := addMember(t, c, RoleMember)
	read := func() Member {
		t.Helper()
		got, err := c.Member(ctx, m.UserID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	cached := func() {
		t.Helper()
		read()
		if _, _, ok := s.members.get(c.ID, m.UserID); !ok {
			t.Fatal("Member did not keep the row")
		}
	}
	steps := []struct {
		name  string
		write func() error
		check func(Member) bool
	}{
		{"set_role", func() error { return c.SetRole(ctx, owner, m.UserID, RoleModerator) }, func(g Member) bool { return g.Role == RoleModerator }},
		{"operator set_role", func() error { return c.OperatorSetRole(ctx, m.UserID, RoleAdmin) }, func(g Member) bool { return g.Role == RoleAdmin }},
		{"timeout", func() error { return c.Timeout(ctx, owner, m.UserID, c.Now().Add(time.Hour)) }, func(g Member) bool { return g.TimeoutUntil != 0 }},
		{"remove_timeout", func() error { return c.Timeout(ctx, owner, m.UserID, time.Time{}) }, func(g Member) bool { return g.TimeoutUntil == 0 }},
		{"ban", func() error { return c.Ban(ctx, owner, m.UserID) }, func(g Member) bool { return g.Banned }},
		{"unban", func() error { return c.Unban(ctx, owner, m.UserID) }, func(g Member) bool { return !g.Banned }},
		// Ownership handed over moves the previous owner's row by role,
		// not by user id: the whole community's rows are dropped.
		{"ownership", func() error { return c.OperatorSetRole(ctx, m.UserID, RoleOwner) }, func(g Member) bool { return g.Role == RoleOwner }},
	}
	for _, st := range steps {
		cached()
		if _, err := c.Member(ctx, owner.UserID); err != nil { // the owner's row cached too
			t.Fatal(err)
		}
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := read(); !st.check(got) {
			t.Fatalf("after %s: Member is %+v", st.name, got)
		}
	}
	if got, err := c.Member(ctx, owner.UserID); err != nil || got.Role != RoleAdmin {
		t.Fatalf("previous owner after the hand-over: %+v, %v", got, err)
	}
	if err := c.OperatorSetRole(ctx, owner.UserID, RoleOwner); err != nil { // handed back
		t.Fatal(err)
	}
	if got := read(); got.Role != RoleAdmin {
		t.Fatalf("after handing ownership back: %+v", got)
	}
	cached()
	if err := c.Kick(ctx, OperatorMember(), m.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Member(ctx, m.UserID); err != ErrNotMember {
		t.Fatalf("kicked member: %v, want ErrNotMember", err)
	}
}

// TestMemberCacheRefusesARacedRead: a read whose query ran before a change
// committed stores nothing once the change is over, and one stored before
// that is dropped.
func TestMemberCacheRefusesARacedRead(t *testing.T) {
	mc := newMemberCache()
	stale := Member{UserID: "u", Role: RoleAdmin}

	_, epoch, _ := mc.get("c", "u") // the read begins
	mc.changing("c", "u")           // a demotion runs ...
	mc.committed()                  // ... and commits
	mc.put("c", stale, epoch)       // the read, which saw the old row, ends
	if _, _, ok := mc.get("c", "u"); ok {
		t.Fatal("a read that raced a change kept its row")
	}

	_, epoch, _ = mc.get("c", "u")
	mc.changing("c", "u")
	mc.put("c", stale, epoch) // stored while the change is in flight
	mc.committed()
	if _, _, ok := mc.get("c", "u"); ok {
		t.Fatal("a row stored during a change outlived its commit")
	}

	// Unrelated commits leave rows alone.
	_, epoch, _ = mc.get("c", "u")
	mc.put("c", stale, epoch)
	mc.changing("c", "other")
	mc.committed()
	mc.committed()
	if _, _, ok := mc.get("c", "u"); !ok {
		t.Fatal("another member's change dropped this one's row")
	}
	mc.changingAll("c")
	mc.committed()
	if _, _, ok := mc.get("c", "u"); ok {
		t.Fatal("a change by role kept a row of the community")
	}
}
