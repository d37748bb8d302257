package community

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits of PROTOCOL §5.2.
const (
	MaxNameLength   = 64
	MaxCategoryNest = 8
)

// Built-in codecs.
const (
	CodecCategory = "category"
	CodecText     = "text"
	CodecVoice    = "voice"
)

// Channel is one node of the interactables tree.
type Channel struct {
	ID       int64
	Name     string
	Codec    string
	Parent   *Channel
	Children []*Channel
	// SlowMode is a text channel's seconds between one member's messages.
	SlowMode int
	// Overrides are the channel's per-role permissions (overrides.go);
	// viewers is who may view it, from its chain's overrides.
	Overrides map[Role]Override
	viewers   RoleSet
}

// Path is the names of the enclosing categories joined with "/".
func (ch *Channel) Path() string {
	var names []string
	for p := ch.Parent; p != nil && p.Parent != nil; p = p.Parent {
		names = append(names, p.Name)
	}
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	return strings.Join(names, "/")
}

// Ref is how the wire names the channel.
func (ch *Channel) Ref() *ChannelRef {
	return &ChannelRef{ID: ch.ID, Codec: ch.Codec, Name: ch.Name, Path: ch.Path()}
}

// depth counts the categories from the top down to ch, ch included.
func (ch *Channel) depth() int {
	d := 0
	for p := ch; p != nil && p.Parent != nil; p = p.Parent {
		d++
	}
	return d
}

// height is how many category levels ch and its subtree span.
func (ch *Channel) height() int {
	if ch.Codec != CodecCategory {
		return 0
	}
	h := 0
	for _, k := range ch.Children {
		h = max(h, k.height())
	}
	return h + 1
}

func (ch *Channel) index() int {
	for i, k := range ch.Parent.Children {
		if k == ch {
			return i
		}
	}
	return -1
}

func (ch *Channel) child(name string) *Channel {
	for _, k := range ch.Children {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// normalizeName applies NFC and the rules of PROTOCOL §5.2.
func normalizeName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: name is not valid UTF-8", ErrInvalidData)
	}
	name = norm.NFC.String(name)
	if err := checkName(name); err != nil {
		return "", err
	}
	return name, nil
}

func checkName(name string) error {
	n := utf8.RuneCountInString(name)
	if n < 1 || n > MaxNameLength {
		return fmt.Errorf("%w: a name is 1 to %d characters", ErrInvalidData, MaxNameLength)
	}
	for _, r := range name {
		switch {
		case r == '/':
			return fmt.Errorf("%w: a name may not contain /", ErrInvalidData)
		case unicode.Is(unicode.Cc, r), unicode.Is(unicode.Cf, r):
			return fmt.Errorf("%w: a name may not contain control or format characters", ErrInvalidData)
		}
	}
	first, _ := utf8.DecodeRuneInString(name)
	last, _ := utf8.DecodeLastRuneInString(name)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return fmt.Errorf("%w: a name may not start or end with a space", ErrInvalidData)
	}
	return nil
}

// category finds the category at path ("" is the top level).
func (c *Community) category(path string) (*Channel, error) {
	node := c.root
	if path == "" {
		return node, nil
	}
	for _, part := range strings.Split(norm.NFC.String(path), "/") {
		next := node.child(part)
		if next == nil || next.Codec != CodecCategory {
			return nil, fmt.Errorf("%w: no category %q", ErrNotFound, path)
		}
		node = next
	}
	return node, nil
}

// Find returns the channel called name inside the category at path.
func (c *Community) Find(path, name string) (*Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.find(path, name)
}

func (c *Community) find(path, name string) (*Channel, error) {
	parent, err := c.category(path)
	if err != nil {
		return nil, err
	}
	ch := parent.child(norm.NFC.String(name))
	if ch == nil {
		return nil, fmt.Errorf("%w: no channel %q in %q", ErrNotFound, name, path)
	}
	return ch, nil
}

func (c *Community) loadTree(ctx context.Context) error {
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT id, parent_id, name, codec, slow_mode FROM channels
		WHERE community_id = $1 ORDER BY parent_id NULLS FIRST, sort_key`, c.ID)
	if err != nil {
		return fmt.Errorf("community: load tree: %w", err)
	}
	defer rows.Close()
	c.root = &Channel{Codec: CodecCategory}
	c.channels = map[int64]*Channel{}
	type row struct {
		ch     *Channel
		parent sql.NullInt64
	}
	var all []row
	for rows.Next() {
		var r row
		r.ch = &Channel{}
		if err := rows.Scan(&r.ch.ID, &r.parent, &r.ch.Name, &r.ch.Codec, &r.ch.SlowMode); err != nil {
			return fmt.Errorf("community: load tree: %w", err)
		}
		c.channels[r.ch.ID] = r.ch
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range all {
		parent := c.root
		if r.parent.Valid {
			parent = c.channels[r.parent.Int64]
			if parent == nil {
				return fmt.Errorf("community: channel %d has a missing parent", r.ch.ID)
			}
		}
		r.ch.Parent = parent
		parent.Children = append(parent.Children, r.ch)
	}
	if err := loadOverrides(ctx, c.svc.db.Read, c.ID, c.channels); err != nil {
		return err
	}
	c.computeAccessLocked()
	return nil
}

func parentID(p *Channel) any {
	if p.Parent == nil {
		return nil
	}
	return p.ID
}

// renumber writes sort keys 0..n-1 for the children of parent, in order.
func (c *Community) renumber(ctx context.Context, tx *sql.Tx, children []*Channel) error {
	for i, k := range children {
		if _, err := tx.ExecContext(ctx, `UPDATE channels SET sort_key = $1 WHERE id = $2`, i, k.ID); err != nil {
			return err
		}
	}
	return nil
}

func insertAt(list []*Channel, ch *Channel, pos int) []*Channel {
	if pos < 0 || pos > len(list) {
		pos = len(list)
	}
	list = append(list, nil)
	copy(list[pos+1:], list[pos:])
	list[pos] = ch
	return list
}

func without(list []*Channel, ch *Channel) []*Channel {
	out := make([]*Channel, 0, len(list))
	for _, k := range list {
		if k != ch {
			out = append(out, k)
		}
	}
	return out
}

// treeChange runs one tree mutation: validate against the tree, write (with
// its audit row), then apply to the tree and tell everyone. treeMu keeps two
// mutations from validating against the same old tree.
func (c *Community) treeChange(ctx context.Context, actor Member, action, target string,
	plan func() (write func(tx *sql.Tx) error, apply func(), err error)) error {
	if !c.svc.perms.Allows(actor.Role, PermManageChannels) {
		return fmt.Errorf("%w: managing channels needs a higher role", ErrPermission)
	}
	c.treeMu.Lock()
	defer c.treeMu.Unlock()
	c.mu.Lock()
	write, apply, err := plan()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.actorNow(ctx, tx, actor, PermManageChannels, "managing channels"); err != nil {
			return err
		}
		if err := write(tx); err != nil {
			return err
		}
		return c.audit(ctx, tx, actor.UserID, action, target)
	}, func() {
		c.mu.Lock()
		apply()
		c.computeAccessLocked()
		c.unread.treeChanged(c.textChannelsLocked())
		c.mu.Unlock()
		c.publish(Event{TreeChanged: true})
	})
}

// CreateChannel adds a channel at path; position (when not nil) is its
// index among its siblings, else it goes last.
func (c *Community) CreateChannel(ctx context.Context, actor Member, path, name, codec string, position *int) error {
	if position != nil && *position < 0 {
		return fmt.Errorf("%w: position must be >= 0", ErrInvalidData)
	}
	return c.treeChange(ctx, actor, "create_channel", joinPath(path, name), func() (func(*sql.Tx) error, func(), error) {
		name, err := normalizeName(name)
		if err != nil {
			return nil, nil, err
		}
		if !c.svc.codecs.Has(codec) {
			return nil, nil, fmt.Errorf("%w: unknown codec %q", ErrInvalidData, codec)
		}
		parent, err := c.category(path)
		if err != nil {
			return nil, nil, err
		}
		if parent.child(name) != nil {
			return nil, nil, fmt.Errorf("%w: %q already exists there", ErrConflict, name)
		}
		if codec == CodecCategory && parent.depth()+1 > MaxCategoryNest {
			return nil, nil, fmt.Errorf("%w: categories nest at most %d deep", ErrInvalidData, MaxCategoryNest)
		}
		ch := &Channel{Name: name, Codec: codec, Parent: parent}
		pos := len(parent.Children)
		if position != nil && *position < pos {
			pos = *position
		}
		children := insertAt(append([]*Channel(nil), parent.Children...), ch, pos)
		write := func(tx *sql.Tx) error {
			err := tx.QueryRowContext(ctx, `INSERT INTO channels(community_id, parent_id, name, codec, sort_key) VALUES($1, $2, $3, $4, $5)
				RETURNING id`, c.ID, parentID(parent), name, codec, pos).Scan(&ch.ID)
			if err != nil {
				return fmt.Errorf("community: create channel: %w", err)
			}
			return c.renumber(ctx, tx, children)
		}
		apply := func() {
			parent.Children = children
			c.channels[ch.ID] = ch
		}
		return write, apply, nil
	})
}

// RenameChannel renames a channel in place.
func (c *Community) RenameChannel(ctx context.Context, actor Member, path, name, newName string) error {
	return c.treeChange(ctx, actor, "rename_channel", joinPath(path, name), func() (func(*sql.Tx) error, func(), error) {
		newName, err := normalizeName(newName)
		if err != nil {
			return nil, nil, err
		}
		ch, err := c.find(path, name)
		if err != nil {
			return nil, nil, err
		}
		if other := ch.Parent.child(newName); other != nil && other != ch {
			return nil, nil, fmt.Errorf("%w: %q already exists there", ErrConflict, newName)
		}
		write := func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE channels SET name = $1 WHERE id = $2`, newName, ch.ID)
			return err
		}
		return write, func() { ch.Name = newName }, nil
	})
}

// MoveChannel moves a channel (with its subtree) into the category at newPath.
func (c *Community) MoveChannel(ctx context.Context, actor Member, path, name, newPath string, position *int) error {
	if position != nil && *position < 0 {
		return fmt.Errorf("%w: position must be >= 0", ErrInvalidData)
	}
	return c.treeChange(ctx, actor, "move_channel", joinPath(path, name), func() (func(*sql.Tx) error, func(), error) {
		ch, err := c.find(path, name)
		if err != nil {
			return nil, nil, err
		}
		dest, err := c.category(newPath)
		if err != nil {
			return nil, nil, err
		}
		for p := dest; p != nil; p = p.Parent {
			if p == ch {
				return nil, nil, fmt.Errorf("%w: a category cannot move into itself or its children", ErrInvalidData)
			}
		}
		if other := dest.child(ch.Name); other != nil && other != ch {
			return nil, nil, fmt.Errorf("%w: %q already exists there", ErrConflict, ch.Name)
		}
		if dest.depth()+ch.height() > MaxCategoryNest {
			return nil, nil, fmt.Errorf("%w: categories nest at most %d deep", ErrInvalidData, MaxCategoryNest)
		}
		oldParent := ch.Parent
		oldSiblings := without(oldParent.Children, ch)
		base := oldSiblings
		if dest != oldParent {
			base = append([]*Channel(nil), dest.Children...)
		}
		pos := len(base)
		if position != nil && *position < pos {
			pos = *position
		}
		newSiblings := insertAt(append([]*Channel(nil), base...), ch, pos)
		write := func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE channels SET parent_id = $1 WHERE id = $2`, parentID(dest), ch.ID); err != nil {
				return err
			}
			if dest != oldParent {
				if err := c.renumber(ctx, tx, oldSiblings); err != nil {
					return err
				}
			}
			return c.renumber(ctx, tx, newSiblings)
		}
		apply := func() {
			if dest != oldParent {
				oldParent.Children = oldSiblings
			}
			dest.Children = newSiblings
			ch.Parent = dest
		}
		return write, apply, nil
	})
}

// DeleteChannel removes a channel and its messages; a category must be empty.
func (c *Community) DeleteChannel(ctx context.Context, actor Member, path, name string) error {
	var gone []string
	var ref *ChannelRef
	err := c.treeChange(ctx, actor, "delete_channel", joinPath(path, name), func() (func(*sql.Tx) error, func(), error) {
		ch, err := c.find(path, name)
		if err != nil {
			return nil, nil, err
		}
		if len(ch.Children) > 0 {
			return nil, nil, fmt.Errorf("%w: the category is not empty", ErrConflict)
		}
		siblings := without(ch.Parent.Children, ch)
		ref = ch.Ref()
		write := func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM channels WHERE id = $1`, ch.ID); err != nil {
				return err
			}
			c.svc.forgetSeq(ch.ID)
			return c.renumber(ctx, tx, siblings)
		}
		apply := func() {
			ch.Parent.Children = siblings
			delete(c.channels, ch.ID)
			c.offsets.drop(ch.ID)
			if room := c.voice[ch.ID]; room != nil {
				for _, u := range room.users {
					gone = append(gone, u.UserID)
				}
				delete(c.voice, ch.ID)
			}
		}
		return write, apply, nil
	})
	for _, u := range gone {
		c.publish(Event{Channel: ref, Result: ResultUserLeft, Payload: map[string]string{"user_id": u}})
	}
	return err
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "/" + name
}

// TreeJSON is the interactables object of PROTOCOL §5.2, keys in order,
// as the owner sees it.
func (c *Community) TreeJSON() json.RawMessage { return c.TreeJSONAs(RoleOwner) }

// TreeJSONAs is the tree a member of role sees: without the channels they
// may not view, and with the overrides when they manage channels. The
// encoding is cached per role until the tree or voice state changes; with
// no override anywhere every role sees the same tree, encoded once.
func (c *Community) TreeJSONAs(role Role) json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := role
	if !c.overridden.Load() {
		key = RoleOwner
	}
	if b := c.treeJSON[key]; b != nil {
		return b
	}
	var b bytes.Buffer
	c.writeChildren(&b, c.root, nil, role)
	if c.treeJSON == nil {
		c.treeJSON = map[Role][]byte{}
	}
	c.treeJSON[key] = b.Bytes()
	return b.Bytes()
}

// writeChildren writes parent's subtree as role sees it; counts (when
// not nil) adds one member's unread and mention counts to text channels
// (unread.go).
func (c *Community) writeChildren(b *bytes.Buffer, parent *Channel, counts map[int64]UnreadCounts, role Role) {
	manager := c.svc.perms.Allows(role, PermManageChannels)
	b.WriteByte('{')
	n := 0
	for _, ch := range parent.Children {
		if !ch.viewers.Has(role) {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		key, _ := json.Marshal(ch.Name)
		codec, _ := json.Marshal(ch.Codec)
		b.Write(key)
		b.WriteString(`:{"codec":`)
		b.Write(codec)
		b.WriteString(`,"data":`)
		switch ch.Codec {
		case CodecCategory:
			c.writeChildren(b, ch, counts, role)
		case CodecVoice:
			c.writeVoiceData(b, ch)
		case CodecText:
			writeTextData(b, c.svc.codecs.data(c, ch), ch, counts)
		default:
			b.Write(c.svc.codecs.data(c, ch))
		}
		if ch.viewers != allRoles {
			b.WriteString(`,"private":true`)
		}
		if manager && len(ch.Overrides) > 0 {
			b.WriteByte(',')
			writeOverrides(b, ch.Overrides)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
}

// operatorActor is who the operator acts as on the tree.
var operatorActor = OperatorMember()

// CreateDefaultChannels gives a new community somewhere to talk: a General
// category with a text and a voice channel.
func (c *Community) CreateDefaultChannels(ctx context.Context) error {
	for _, ch := range []struct{ path, name, codec string }{
		{"", "General", CodecCategory},
		{"General", "general", CodecText},
		{"General", "voice", CodecVoice},
	} {
		if err := c.CreateChannel(ctx, operatorActor, ch.path, ch.name, ch.codec, nil); err != nil {
			return err
		}
	}
	return nil
}

// textChannelsLocked is the ids of the text channels; c.mu is held.
func (c *Community) textChannelsLocked() []int64 {
	var ids []int64
	for id, ch := range c.channels {
		if ch.Codec == CodecText {
			ids = append(ids, id)
		}
	}
	return ids
}
