package community

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Access is one permission's override for one role in one channel.
type Access int8

// The values of an override; the zero value inherits.
const (
	Deny    Access = -1
	Inherit Access = 0
	Allow   Access = 1
)

// Override is what a channel says for one role (PROTOCOL §9 "Private
// channels"): view the channel at all, post in it (the table's post),
// connect to it (the table's voice).
type Override struct {
	View, Post, Connect Access
}

func (o Override) empty() bool { return o == Override{} }

// RoleSet is a set of roles, one bit each.
type RoleSet uint8

func roleBit(r Role) RoleSet { return 1 << r.rank() }

// Has reports whether r is in the set.
func (s RoleSet) Has(r Role) bool { return s&roleBit(r) != 0 }

// allRoles is every role: a channel no override hides.
var allRoles = roleBit(RoleOwner) | roleBit(RoleAdmin) | roleBit(RoleModerator) | roleBit(RoleMember)

// roles in the order the wire lists overrides.
var roles = []Role{RoleOwner, RoleAdmin, RoleModerator, RoleMember}

// seesAll reports whether role is above every override: the owner, and
// whoever may manage channels, since a channel they could not see they
// could not manage either.
func (ps Permissions) seesAll(role Role) bool {
	return role == RoleOwner || ps.Allows(role, PermManageChannels)
}

// seeingAll is the roles that seesAll.
func (ps Permissions) seeingAll() RoleSet {
	var s RoleSet
	for _, r := range roles {
		if ps.seesAll(r) {
			s |= roleBit(r)
		}
	}
	return s
}

// computeAccessLocked sets every channel's viewers from the overrides
// down its chain and whether any channel hides from anyone; with c.mu
// held, after every change to the tree or its overrides. A channel is
// seen by a role only if no channel on its chain (itself and its
// categories) denies that role view: a hidden category hides all in it.
func (c *Community) computeAccessLocked() {
	always := c.svc.perms.seeingAll()
	private, overridden := false, false
	var walk func(parent *Channel, viewers RoleSet)
	walk = func(parent *Channel, viewers RoleSet) {
		for _, ch := range parent.Children {
			v := viewers
			for r, o := range ch.Overrides {
				if o.View == Deny {
					v &^= roleBit(r)
				}
			}
			v |= always
			ch.viewers = v
			overridden = overridden || len(ch.Overrides) > 0
			if v != allRoles {
				private = true
			}
			walk(ch, v)
		}
	}
	walk(c.root, allRoles)
	c.private.Store(private)
	c.overridden.Store(overridden)
	c.treeJSON = nil
}

// sees reports whether role may view ch; with c.mu held. ch may be from
// before the tree was read again (another node changed it): the tree's
// channel of that id decides, and a channel no longer in the tree is seen
// by nobody below seesAll.
func (c *Community) sees(ch *Channel, role Role) bool {
	cur := c.channels[ch.ID]
	if cur == nil {
		return c.svc.perms.seesAll(role)
	}
	return cur.viewers.Has(role)
}

// CanView reports whether role may view ch.
func (c *Community) CanView(ch *Channel, role Role) bool {
	if !c.private.Load() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sees(ch, role)
}

// Viewers is who may hear of an event about the channel ref names. When
// filtered is false everyone may, at the cost of one atomic load, which is
// all a community with no private channel ever pays; otherwise only the
// roles in the set. A channel this node does not have (deleted, or not
// heard of yet) is for the roles that see everything alone.
func (c *Community) Viewers(ref *ChannelRef) (viewers RoleSet, filtered bool) {
	if !c.private.Load() {
		return allRoles, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.channels[ref.ID]
	if ch == nil && ref.ID == 0 {
		ch, _ = c.find(ref.Path, ref.Name)
	}
	if ch == nil || ch.Codec != ref.Codec {
		return c.svc.perms.seeingAll(), true
	}
	return ch.viewers, ch.viewers != allRoles
}

// Private reports whether any channel hides from any role.
func (c *Community) Private() bool { return c.private.Load() }

// Overridden reports whether any channel has an override: then the tree
// differs by role (managers see the overrides).
func (c *Community) Overridden() bool { return c.overridden.Load() }

// allows is the table's p for role, in ch: post and voice (connect) are
// decided by the nearest override on ch's chain that sets them, then the
// table; every other permission by the table alone. The owner holds
// everything.
func (c *Community) allows(ch *Channel, role Role, p Permission) bool {
	if ch == nil || (p != PermPost && p != PermVoice) || role == RoleOwner || !c.overridden.Load() {
		return c.svc.perms.Allows(role, p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.channels[ch.ID]; cur != nil {
		ch = cur // as the tree has it now (see sees)
	}
	for n := ch; n != nil && n.Parent != nil; n = n.Parent {
		o := n.Overrides[role]
		a := o.Post
		if p == PermVoice {
			a = o.Connect
		}
		if a != Inherit {
			return a == Allow
		}
	}
	return c.svc.perms.Allows(role, p)
}

// MayConnect reports whether role may view ch and connect to it.
func (c *Community) MayConnect(ch *Channel, role Role) bool {
	return c.CanView(ch, role) && c.allows(ch, role, PermVoice)
}

// findAs is find with the channels role may not view left out: the same
// errors, word for word, as for a channel that does not exist.
func (c *Community) findAs(role Role, path, name string) (*Channel, error) {
	ch, err := c.find(path, name)
	if err != nil || !c.private.Load() {
		return ch, err
	}
	for n := ch.Parent; n != nil && n.Parent != nil; n = n.Parent {
		if !c.sees(n, role) {
			// The first hidden category on the path is where a lookup
			// of a path that does not exist would have stopped.
			return nil, fmt.Errorf("%w: no category %q", ErrNotFound, path)
		}
	}
	if !c.sees(ch, role) {
		return nil, fmt.Errorf("%w: no channel %q in %q", ErrNotFound, name, path)
	}
	return ch, nil
}

// FindAs is Find for a member of role: a channel they may not view is
// not found.
func (c *Community) FindAs(role Role, path, name string) (*Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.findAs(role, path, name)
}

// actorIn is actorNow for a write in ch: the member as stored now must
// still view ch (else the channel is not found, as for one that does not
// exist) and hold p there, overrides included.
func (c *Community) actorIn(ctx context.Context, q queryer, actor Member, ch *Channel, p Permission, what string) (Member, error) {
	m, err := c.actorNow(ctx, q, actor, "", what)
	if err != nil {
		return Member{}, err
	}
	if !c.CanView(ch, m.Role) {
		return Member{}, fmt.Errorf("%w: no channel %q in %q", ErrNotFound, ch.Name, ch.Path())
	}
	if p != "" && !c.allows(ch, m.Role, p) {
		return Member{}, fmt.Errorf("%w: %s needs a higher role", ErrPermission, what)
	}
	if err := c.checkTimeout(m, p, what); err != nil {
		return Member{}, err
	}
	return m, nil
}

// loadOverrides puts the stored overrides on the channels of a tree
// being loaded.
func loadOverrides(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, communityID string, channels map[int64]*Channel) error {
	rows, err := q.QueryContext(ctx, `SELECT o.channel_id, o.role, o.can_view, o.can_post, o.can_connect
		FROM channel_overrides o JOIN channels c ON c.id = o.channel_id WHERE c.community_id = $1`, communityID)
	if err != nil {
		return fmt.Errorf("community: load overrides: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var role string
		var o Override
		if err := rows.Scan(&id, &role, &o.View, &o.Post, &o.Connect); err != nil {
			return fmt.Errorf("community: load overrides: %w", err)
		}
		ch := channels[id]
		if ch == nil || Role(role).rank() == 0 {
			continue
		}
		if ch.Overrides == nil {
			ch.Overrides = map[Role]Override{}
		}
		ch.Overrides[Role(role)] = o
	}
	return rows.Err()
}

// overrideWire is one role's override on the wire: true allows, false
// denies, absent (or null in a request) inherits.
type overrideWire struct {
	View    *bool `json:"view,omitempty"`
	Post    *bool `json:"post,omitempty"`
	Connect *bool `json:"connect,omitempty"`
}

func accessOf(b *bool) Access {
	switch {
	case b == nil:
		return Inherit
	case *b:
		return Allow
	}
	return Deny
}

func (a Access) wire() *bool {
	if a == Inherit {
		return nil
	}
	v := a == Allow
	return &v
}

// writeOverrides writes `"overrides":{role:{...}}`, roles highest first,
// for the members who manage channels.
func writeOverrides(b *bytes.Buffer, os map[Role]Override) {
	b.WriteString(`"overrides":{`)
	first := true
	for _, r := range roles {
		o, ok := os[r]
		if !ok || o.empty() {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		enc, _ := json.Marshal(overrideWire{View: o.View.wire(), Post: o.Post.wire(), Connect: o.Connect.wire()})
		b.WriteString(`"` + string(r) + `":`)
		b.Write(enc)
	}
	b.WriteByte('}')
}

// ParseOverrides reads set_channel_permissions' overrides: an object from
// role names to {view?, post?, connect?}, each true, false or null.
func ParseOverrides(raw json.RawMessage) (map[Role]Override, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("%w: payload.overrides is required", ErrInvalidData)
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("%w: payload.overrides is an object of roles", ErrInvalidData)
	}
	out := map[Role]Override{}
	for name, v := range in {
		role, err := ParseRole(name)
		if err != nil {
			return nil, err
		}
		if role == RoleOwner {
			return nil, fmt.Errorf("%w: the owner sees and does everything; overrides are for admin, moderator and member", ErrInvalidData)
		}
		var w overrideWire
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if string(v) == "null" || dec.Decode(&w) != nil || v[0] != '{' {
			return nil, fmt.Errorf("%w: payload.overrides.%s is an object of view, post and connect, each true, false or null", ErrInvalidData, name)
		}
		o := Override{View: accessOf(w.View), Post: accessOf(w.Post), Connect: accessOf(w.Connect)}
		if !o.empty() {
			out[role] = o
		}
	}
	return out, nil
}

// overridesText is the audit target's part for a set of overrides, e.g.
// "member:view=deny,post=allow moderator:connect=deny", or "none".
func overridesText(os map[Role]Override) string {
	var parts []string
	for _, r := range roles {
		o, ok := os[r]
		if !ok {
			continue
		}
		var fields []string
		for _, f := range []struct {
			name string
			a    Access
		}{{"view", o.View}, {"post", o.Post}, {"connect", o.Connect}} {
			switch f.a {
			case Allow:
				fields = append(fields, f.name+"=allow")
			case Deny:
				fields = append(fields, f.name+"=deny")
			}
		}
		parts = append(parts, string(r)+":"+strings.Join(fields, ","))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// SetChannelPermissions replaces the overrides of the channel at
// path/name with overrides (none: it inherits everything again). It is a
// tree change: everyone gets the tree as they may now see it. Whoever is
// in its call (or a call inside it, for a category) and may no longer
// view or connect is taken out of it.
func (c *Community) SetChannelPermissions(ctx context.Context, actor Member, path, name string, overrides map[Role]Override) error {
	target := joinPath(path, name) + " " + overridesText(overrides)
	var affected []*Channel
	err := c.treeChange(ctx, actor, "set_channel_permissions", target, func() (func(*sql.Tx) error, func(), error) {
		ch, err := c.find(path, name)
		if err != nil {
			return nil, nil, err
		}
		for r, o := range overrides {
			if o.View != Inherit && c.svc.perms.seesAll(r) {
				return nil, nil, fmt.Errorf("%w: a %s manages channels and always sees them; view cannot be set for it", ErrInvalidData, r)
			}
			if o.Connect != Inherit && ch.Codec != CodecVoice && ch.Codec != CodecCategory {
				return nil, nil, fmt.Errorf("%w: connect is for voice channels and categories", ErrInvalidData)
			}
			if o.Post != Inherit && ch.Codec == CodecVoice {
				return nil, nil, fmt.Errorf("%w: post is for text channels, other codecs' channels and categories", ErrInvalidData)
			}
		}
		write := func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM channel_overrides WHERE channel_id = $1`, ch.ID); err != nil {
				return fmt.Errorf("community: set channel permissions: %w", err)
			}
			for _, r := range roles {
				o, ok := overrides[r]
				if !ok {
					continue
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO channel_overrides(channel_id, role, can_view, can_post, can_connect)
					VALUES($1, $2, $3, $4, $5)`, ch.ID, string(r), int(o.View), int(o.Post), int(o.Connect)); err != nil {
					return fmt.Errorf("community: set channel permissions: %w", err)
				}
			}
			return nil
		}
		apply := func() {
			ch.Overrides = nil
			if len(overrides) > 0 {
				ch.Overrides = overrides
			}
			var walk func(n *Channel)
			walk = func(n *Channel) {
				if n.Codec == CodecVoice {
					affected = append(affected, n)
				}
				for _, k := range n.Children {
					walk(k)
				}
			}
			walk(ch)
		}
		return write, apply, nil
	})
	if err != nil {
		return err
	}
	c.enforceCalls(ctx, affected, "")
	return nil
}

// enforceCalls takes out of the calls of chans everyone (or only userID,
// when given) whose role, as stored now, may no longer view the channel
// or connect to it. A member whose row cannot be read stays: the next
// change or their own leave settles it, and a failed read is no reason
// to drop a call.
func (c *Community) enforceCalls(ctx context.Context, chans []*Channel, userID string) {
	for _, ch := range chans {
		for _, u := range c.Peers(ch) {
			if userID != "" && u.UserID != userID {
				continue
			}
			m, err := c.Member(ctx, u.UserID)
			if errors.Is(err, ErrNotMember) || (err == nil && !c.MayConnect(ch, m.Role)) {
				c.LeaveCall(ch, u.UserID)
			}
		}
	}
}

// enforceRole is enforceCalls for one member whose role changed: every
// call of theirs in this community.
func (c *Community) enforceRole(userID string) {
	if chans := c.callsOf(userID); len(chans) > 0 {
		c.enforceCalls(context.Background(), chans, userID)
	}
}
