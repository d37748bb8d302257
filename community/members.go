package community

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	icrypto "github.com/iotad/iotad/crypto"
)

// Invite defaults of PROTOCOL §5.1.
const (
	DefaultInviteUses = 1
	DefaultInviteTTL  = 7 * 24 * time.Hour
	// MaxInviteTTL keeps a forgotten invite from working for ever.
	MaxInviteTTL = 365 * 24 * time.Hour
	// MaxInviteUses bounds max_uses.
	MaxInviteUses = 1_000_000
)

// Operator is the actor recorded for what the CLI does.
const Operator = "operator"

// Member is a user of a community.
type Member struct {
	UserID    string
	PublicKey icrypto.PublicKey
	Role      Role
	Banned    bool
	JoinedAt  time.Time
	// TimeoutUntil is when a timeout ends (Unix ms; 0: none).
	TimeoutUntil int64
	// operator marks OperatorMember: the operator has no members row, and
	// a flag no client can set keeps a member whose user id happens to be
	// "operator" from passing as them.
	operator bool
}

// OperatorMember is the actor the CLI acts as: the owner's powers, never
// re-read from the members table.
func OperatorMember() Member {
	return Member{UserID: Operator, Role: RoleOwner, operator: true}
}

// actorNow re-reads actor inside the write transaction q and checks p (when
// not "") against the role stored now. A socket's cached role may be older
// than a demotion, kick or ban: one queued ahead of this write in the same
// batch, or one the CLI committed from another process, which no
// role_changed event reaches. what names the action in the refusal.
func (c *Community) actorNow(ctx context.Context, q queryer, actor Member, p Permission, what string) (Member, error) {
	if actor.operator {
		return actor, nil
	}
	m, err := c.member(ctx, q, actor.UserID)
	if errors.Is(err, ErrNotMember) {
		return Member{}, fmt.Errorf("%w: %s: you are no longer a member", ErrPermission, what)
	}
	if err != nil {
		return Member{}, err
	}
	if m.Banned {
		return Member{}, fmt.Errorf("%w: %s: you are banned", ErrPermission, what)
	}
	if p != "" && !c.svc.perms.Allows(m.Role, p) {
		return Member{}, fmt.Errorf("%w: %s needs a higher role", ErrPermission, what)
	}
	if err := c.checkTimeout(m, p, what); err != nil {
		return Member{}, err
	}
	return m, nil
}

// Member looks up a member (banned ones included): on a node alone from the
// member cache, else from its prepared statement.
func (c *Community) Member(ctx context.Context, userID string) (Member, error) {
	cache := c.svc.members
	if cache == nil {
		return scanMember(userID, c.svc.db.ReadRow(ctx, memberQuery, c.ID, userID))
	}
	m, epoch, ok := cache.get(c.ID, userID)
	if ok {
		return m, nil
	}
	m, err := scanMember(userID, c.svc.db.ReadRow(ctx, memberQuery, c.ID, userID))
	if err == nil {
		cache.put(c.ID, m, epoch)
	}
	return m, err
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// member is Member inside a transaction (or on the read pool), from a
// prepared statement: every write reads its actor's row again.
// In the writer's transaction on SQLite, the member cache answers when it
// can (memberCache says why that is as fresh).
func (c *Community) member(ctx context.Context, q queryer, userID string) (Member, error) {
	if _, inWrite := q.(*sql.Tx); inWrite && c.svc.w.cachesFresh {
		m, epoch, ok := c.svc.members.getInWrite(c.ID, userID)
		if ok {
			return m, nil
		}
		m, err := scanMember(userID, c.svc.db.Row(ctx, q, memberQuery, c.ID, userID))
		if err == nil {
			c.svc.members.put(c.ID, m, epoch)
		}
		return m, err
	}
	return scanMember(userID, c.svc.db.Row(ctx, q, memberQuery, c.ID, userID))
}

const memberQuery = `SELECT public_key, role, banned, joined_at, COALESCE(timeout_until, 0) FROM members WHERE community_id = $1 AND user_id = $2`

func scanMember(userID string, row *sql.Row) (Member, error) {
	m := Member{UserID: userID}
	var key []byte
	var role string
	var joined int64
	err := row.Scan(&key, &role, &m.Banned, &joined, &m.TimeoutUntil)
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, ErrNotMember
	}
	if err != nil {
		return Member{}, fmt.Errorf("community: read member: %w", err)
	}
	copy(m.PublicKey[:], key)
	m.Role, m.JoinedAt = Role(role), time.UnixMilli(joined)
	return m, nil
}

// recheck is actorNow for a codec's write: the caller, re-read inside q,
// must still hold every permission the codec was granted on the cached role.
func (call *Call) recheck(ctx context.Context, q queryer) error {
	c := call.Community
	m, err := c.actorIn(ctx, q, call.Member, call.Channel, "", call.Function)
	if err != nil {
		return err
	}
	for _, p := range call.granted {
		if !c.allows(call.Channel, m.Role, p) {
			return fmt.Errorf("%w: %s needs a higher role", ErrPermission, call.Function)
		}
	}
	return nil
}

// Members lists every member, banned ones included, in join order.
func (c *Community) Members(ctx context.Context, actor Member) ([]Member, error) {
	if !c.svc.perms.Allows(actor.Role, PermListMembers) {
		return nil, fmt.Errorf("%w: listing members needs a higher role", ErrPermission)
	}
	if _, err := c.actorNow(ctx, c.svc.db.Read, actor, PermListMembers, "listing members"); err != nil {
		return nil, err
	}
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT user_id, public_key, role, banned, joined_at, COALESCE(timeout_until, 0) FROM members
		WHERE community_id = $1 ORDER BY joined_at, user_id`, c.ID)
	if err != nil {
		return nil, fmt.Errorf("community: list members: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		var key []byte
		var role string
		var joined int64
		if err := rows.Scan(&m.UserID, &key, &role, &m.Banned, &joined, &m.TimeoutUntil); err != nil {
			return nil, fmt.Errorf("community: list members: %w", err)
		}
		copy(m.PublicKey[:], key)
		m.Role, m.JoinedAt = Role(role), time.UnixMilli(joined)
		out = append(out, m)
	}
	return out, rows.Err()
}

// Invite is an invite as its managers see it (never its secret).
type Invite struct {
	ID        string
	MaxUses   int
	Uses      int
	ExpiresAt time.Time
	UserID    string
	Role      Role
	CreatedBy string
	Revoked   bool
}

// InviteOptions shape a new invite; zero values take the defaults.
type InviteOptions struct {
	MaxUses int
	TTL     time.Duration
	// UserID binds the invite to one user.
	UserID string
	// Role is what joining makes you; only the operator may give owner.
	Role Role
}

// CreateInvite makes an invite as actor and returns its secret, which is
// not stored.
func (c *Community) CreateInvite(ctx context.Context, actor Member, opts InviteOptions) (string, Invite, error) {
	if !c.svc.perms.Allows(actor.Role, PermInvite) {
		return "", Invite{}, fmt.Errorf("%w: creating invites needs a higher role", ErrPermission)
	}
	if opts.Role != "" && opts.Role != RoleMember {
		return "", Invite{}, fmt.Errorf("%w: invites made in the community make members", ErrPermission)
	}
	return c.createInvite(ctx, actor, PermInvite, opts)
}

// CreateOperatorInvite makes an invite on the operator's behalf (CLI, first
// start); it may make an owner.
func (c *Community) CreateOperatorInvite(ctx context.Context, opts InviteOptions) (string, Invite, error) {
	return c.createInvite(ctx, OperatorMember(), "", opts)
}

func (c *Community) createInvite(ctx context.Context, actor Member, p Permission, opts InviteOptions) (string, Invite, error) {
	by := actor.UserID
	if opts.MaxUses == 0 {
		opts.MaxUses = DefaultInviteUses
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultInviteTTL
	}
	if opts.Role == "" {
		opts.Role = RoleMember
	}
	if opts.MaxUses < 1 || opts.MaxUses > MaxInviteUses {
		return "", Invite{}, fmt.Errorf("%w: max_uses must be 1..%d", ErrInvalidData, MaxInviteUses)
	}
	if opts.TTL < time.Second || opts.TTL > MaxInviteTTL {
		return "", Invite{}, fmt.Errorf("%w: expiry must be between 1 second and 365 days", ErrInvalidData)
	}
	if len(opts.UserID) > 128 {
		return "", Invite{}, fmt.Errorf("%w: user_id is too long", ErrInvalidData)
	}
	secret, err := icrypto.NewSecret(rand.Reader)
	if err != nil {
		return "", Invite{}, err
	}
	now := c.svc.now()
	inv := Invite{ID: uuid.NewString(), MaxUses: opts.MaxUses, ExpiresAt: now.Add(opts.TTL).Truncate(time.Millisecond),
		UserID: opts.UserID, Role: opts.Role, CreatedBy: by}
	hash := icrypto.HashSecret(secret)
	err = c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.actorNow(ctx, tx, actor, p, "creating invites"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO invites(id, community_id, secret_hash, max_uses, expires_at, user_id, role, created_by, created_at)
			VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)`, inv.ID, c.ID, hash[:], inv.MaxUses, inv.ExpiresAt.UnixMilli(),
			nullable(inv.UserID), string(inv.Role), by, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("community: create invite: %w", err)
		}
		return c.audit(ctx, tx, by, "create_invite", inv.ID)
	}, nil)
	if err != nil {
		return "", Invite{}, err
	}
	return secret, inv, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Invites lists the community's invites, newest last.
func (c *Community) Invites(ctx context.Context, actor Member) ([]Invite, error) {
	if !c.svc.perms.Allows(actor.Role, PermManageInvites) {
		return nil, fmt.Errorf("%w: listing invites needs a higher role", ErrPermission)
	}
	if _, err := c.actorNow(ctx, c.svc.db.Read, actor, PermManageInvites, "listing invites"); err != nil {
		return nil, err
	}
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT id, max_uses, uses, expires_at, COALESCE(user_id, ''), role, created_by, revoked
		FROM invites WHERE community_id = $1 ORDER BY created_at, id`, c.ID)
	if err != nil {
		return nil, fmt.Errorf("community: list invites: %w", err)
	}
	defer rows.Close()
	var out []Invite
	for rows.Next() {
		var inv Invite
		var expires int64
		var role string
		if err := rows.Scan(&inv.ID, &inv.MaxUses, &inv.Uses, &expires, &inv.UserID, &role, &inv.CreatedBy, &inv.Revoked); err != nil {
			return nil, fmt.Errorf("community: list invites: %w", err)
		}
		inv.ExpiresAt, inv.Role = time.UnixMilli(expires), Role(role)
		out = append(out, inv)
	}
	return out, rows.Err()
}

// RevokeInvite makes an invite unusable.
func (c *Community) RevokeInvite(ctx context.Context, actor Member, id string) error {
	if !c.svc.perms.Allows(actor.Role, PermManageInvites) {
		return fmt.Errorf("%w: revoking invites needs a higher role", ErrPermission)
	}
	return c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.actorNow(ctx, tx, actor, PermManageInvites, "revoking invites"); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE invites SET revoked = 1 WHERE id = $1 AND community_id = $2`, id, c.ID)
		if err != nil {
			return fmt.Errorf("community: revoke invite: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no invite %q", ErrNotFound, id)
		}
		return c.audit(ctx, tx, actor.UserID, "revoke_invite", id)
	}, nil)
}

// usableInvite is the WHERE clause of an invite that can still be used by :user.
const usableInvite = `secret_hash = $1 AND community_id = $2 AND revoked = 0 AND uses < max_uses AND expires_at > $3
	AND (user_id IS NULL OR user_id = $4)`

// checkInvite is CheckInvite's, prepared on first use (ReadRow): every
// first visit runs it, and parsing it again was half of its cost.
const checkInvite = `SELECT 1 FROM invites WHERE ` + usableInvite

// The statements of a join, prepared once (Open's PrepareWrites), with
// startReadMarkers': parsing them again for every join was half of its
// transaction's CPU. The audit entry is every moderation's too.
const (
	useInvite    = `UPDATE invites SET uses = uses + 1 WHERE ` + usableInvite + ` RETURNING role`
	insertMember = `INSERT INTO members(community_id, user_id, public_key, role, joined_at) VALUES($1, $2, $3, $4, $5)`
	insertAudit  = `INSERT INTO audit_log(community_id, actor_id, action, target, time) VALUES($1, $2, $3, $4, $5)`
)

// CheckInvite tells whether secret is an invite userID may use, without
// using it.
func (c *Community) CheckInvite(ctx context.Context, secret, userID string) error {
	hash := icrypto.HashSecret(secret)
	var one int
	err := c.svc.db.ReadRow(ctx, checkInvite, hash[:], c.ID, c.svc.now().UnixMilli(), userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrBadInvite
	}
	if err != nil {
		return fmt.Errorf("community: check invite: %w", err)
	}
	return nil
}

// Join spends one use of the invite and makes userID a member with pub, in
// one transaction: of two joins racing for the last use, one wins and the
// other gets ErrBadInvite. An owner invite hands ownership over, and the
// previous owner becomes an admin.
func (c *Community) Join(ctx context.Context, secret, userID string, pub icrypto.PublicKey) (Member, error) {
	hash := icrypto.HashSecret(secret)
	m := Member{UserID: userID, PublicKey: pub, JoinedAt: c.svc.now().Truncate(time.Millisecond)}
	var previousOwner string
	var markers map[int64]int64
	err := c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if existing, err := c.member(ctx, tx, userID); err == nil {
			if existing.Banned {
				return ErrBanned
			}
			if existing.PublicKey != pub {
				return ErrKeyMismatch
			}
			m = existing
			return nil
		} else if !errors.Is(err, ErrNotMember) {
			return err
		}
		var role string
		err := c.svc.db.Row(ctx, tx, useInvite, hash[:], c.ID, m.JoinedAt.UnixMilli(), userID).Scan(&role)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrBadInvite
		}
		if err != nil {
			return fmt.Errorf("community: use invite: %w", err)
		}
		m.Role = Role(role)
		if m.Role == RoleOwner {
			c.svc.members.changingAll(c.ID)
			err := tx.QueryRowContext(ctx, `UPDATE members SET role = $1 WHERE community_id = $2 AND role = $3 RETURNING user_id`,
				string(RoleAdmin), c.ID, string(RoleOwner)).Scan(&previousOwner)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		c.svc.members.changing(c.ID, userID)
		_, err = c.svc.db.Exec(ctx, tx, insertMember, c.ID, userID, pub[:], string(m.Role), m.JoinedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("community: add member: %w", err)
		}
		if markers, err = c.startReadMarkers(ctx, tx, userID); err != nil {
			return err
		}
		return c.audit(ctx, tx, userID, "join", string(m.Role))
	}, func() {
		// In commit order, as the tree's and the messages' own hooks: the
		// cache sees the markers against the channels they were set in.
		if markers != nil {
			c.unread.readFromStore(userID, markers)
		}
		if previousOwner != "" {
			c.publish(Event{RoleChanged: previousOwner, Role: RoleAdmin})
		}
	})
	if err != nil {
		return Member{}, err
	}
	return m, nil
}

// target loads the member actor wants to act on, after actor's permission
// was checked: only then does existence matter, and only a higher role may
// act on anyone.
func (c *Community) target(ctx context.Context, tx *sql.Tx, actor Member, userID string) (Member, error) {
	t, err := c.member(ctx, tx, userID)
	if errors.Is(err, ErrNotMember) {
		return Member{}, fmt.Errorf("%w: %q is not a member", ErrNotFound, userID)
	}
	if err != nil {
		return Member{}, err
	}
	if !actor.Role.Outranks(t.Role) {
		return Member{}, fmt.Errorf("%w: only a higher role may act on a %s", ErrPermission, t.Role)
	}
	return t, nil
}

// SetRole changes a member's role.
func (c *Community) SetRole(ctx context.Context, actor Member, userID string, role Role) error {
	if !c.svc.perms.Allows(actor.Role, PermSetRole) {
		return fmt.Errorf("%w: setting roles needs a higher role", ErrPermission)
	}
	if role == RoleOwner {
		return fmt.Errorf("%w: ownership moves only by the operator", ErrPermission)
	}
	if role.rank() > MaxGrant(actor.Role).rank() {
		return fmt.Errorf("%w: a %s may give roles up to %s", ErrPermission, actor.Role, MaxGrant(actor.Role))
	}
	err := c.svc.w.do(ctx, func(tx *sql.Tx) error {
		actor, err := c.actorNow(ctx, tx, actor, PermSetRole, "setting roles")
		if err != nil {
			return err
		}
		if role.rank() > MaxGrant(actor.Role).rank() {
			return fmt.Errorf("%w: a %s may give roles up to %s", ErrPermission, actor.Role, MaxGrant(actor.Role))
		}
		if _, err := c.target(ctx, tx, actor, userID); err != nil {
			return err
		}
		c.svc.members.changing(c.ID, userID)
		if _, err := tx.ExecContext(ctx, `UPDATE members SET role = $1 WHERE community_id = $2 AND user_id = $3`, string(role), c.ID, userID); err != nil {
			return fmt.Errorf("community: set role: %w", err)
		}
		return c.audit(ctx, tx, actor.UserID, "set_role", userID+" "+string(role))
	}, func() { c.publish(Event{RoleChanged: userID, Role: role}) })
	if err == nil && c.private.Load() {
		c.enforceRole(userID) // a call in a channel the new role may not view or connect to ends
	}
	return err
}

// Kick removes a member; they may come back with a new invite.
func (c *Community) Kick(ctx context.Context, actor Member, userID string) error {
	if !c.svc.perms.Allows(actor.Role, PermKick) {
		return fmt.Errorf("%w: kicking needs a higher role", ErrPermission)
	}
	return c.svc.w.do(ctx, func(tx *sql.Tx) error {
		actor, err := c.actorNow(ctx, tx, actor, PermKick, "kicking")
		if err != nil {
			return err
		}
		if _, err := c.target(ctx, tx, actor, userID); err != nil {
			return err
		}
		c.svc.members.changing(c.ID, userID)
		if _, err := tx.ExecContext(ctx, `DELETE FROM members WHERE community_id = $1 AND user_id = $2`, c.ID, userID); err != nil {
			return fmt.Errorf("community: kick: %w", err)
		}
		return c.audit(ctx, tx, actor.UserID, "kick", userID)
	}, func() {
		c.publish(Event{Disconnect: userID, CloseCode: CloseKicked})
	})
}

// Ban marks a member banned: they are disconnected and cannot come back,
// with any invite, until unbanned.
func (c *Community) Ban(ctx context.Context, actor Member, userID string) error {
	return c.setBanned(ctx, actor, userID, true)
}

// Unban lifts a ban; the user logs in again with the role they had.
func (c *Community) Unban(ctx context.Context, actor Member, userID string) error {
	return c.setBanned(ctx, actor, userID, false)
}

func (c *Community) setBanned(ctx context.Context, actor Member, userID string, banned bool) error {
	if !c.svc.perms.Allows(actor.Role, PermBan) {
		return fmt.Errorf("%w: banning needs a higher role", ErrPermission)
	}
	action := "unban"
	if banned {
		action = "ban"
	}
	var after func()
	if banned {
		after = func() { c.publish(Event{Disconnect: userID, CloseCode: CloseBanned}) }
	}
	return c.svc.w.do(ctx, func(tx *sql.Tx) error {
		actor, err := c.actorNow(ctx, tx, actor, PermBan, "banning")
		if err != nil {
			return err
		}
		if _, err := c.target(ctx, tx, actor, userID); err != nil {
			return err
		}
		c.svc.members.changing(c.ID, userID)
		if _, err := tx.ExecContext(ctx, `UPDATE members SET banned = $1 WHERE community_id = $2 AND user_id = $3`, boolInt(banned), c.ID, userID); err != nil {
			return fmt.Errorf("community: %s: %w", action, err)
		}
		return c.audit(ctx, tx, actor.UserID, action, userID)
	}, after)
}

// Close codes for the sockets of a removed member (PROTOCOL §5.1).
const (
	CloseKicked = 4001
	CloseBanned = 4003
)

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID     int64
	Actor  string
	Action string
	Target string
	Time   time.Time
}

func (c *Community) audit(ctx context.Context, tx *sql.Tx, actor, action, target string) error {
	_, err := c.svc.db.Exec(ctx, tx, insertAudit, c.ID, actor, action, target, c.svc.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("community: audit: %w", err)
	}
	return nil
}

// AuditLog returns up to amount entries older than before (newest when
// before is nil), newest last, and whether older ones exist.
func (c *Community) AuditLog(ctx context.Context, actor Member, before *int64, amount int) ([]AuditEntry, bool, error) {
	if !c.svc.perms.Allows(actor.Role, PermAuditLog) {
		return nil, false, fmt.Errorf("%w: reading the audit log needs a higher role", ErrPermission)
	}
	if _, err := c.actorNow(ctx, c.svc.db.Read, actor, PermAuditLog, "reading the audit log"); err != nil {
		return nil, false, err
	}
	if amount < 1 || amount > MaxPage {
		return nil, false, fmt.Errorf("%w: amount must be 1..%d", ErrInvalidData, MaxPage)
	}
	limit := int64(1<<63 - 1)
	if before != nil {
		limit = *before
	}
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT id, actor_id, action, target, time FROM audit_log
		WHERE community_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, c.ID, limit, amount+1)
	if err != nil {
		return nil, false, fmt.Errorf("community: audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var t int64
		if err := rows.Scan(&e.ID, &e.Actor, &e.Action, &e.Target, &t); err != nil {
			return nil, false, fmt.Errorf("community: audit log: %w", err)
		}
		e.Time = time.UnixMilli(t)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	out, more := page(out, amount)
	return out, more, nil
}

// OperatorSetRole sets a role on the operator's behalf (CLI). Making
// someone owner hands ownership over: the previous owner becomes an admin.
func (c *Community) OperatorSetRole(ctx context.Context, userID string, role Role) error {
	var previousOwner string
	err := c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.member(ctx, tx, userID); err != nil {
			return fmt.Errorf("%w: %q is not a member", ErrNotFound, userID)
		}
		if role == RoleOwner {
			err := tx.QueryRowContext(ctx, `SELECT user_id FROM members WHERE community_id = $1 AND role = $2`,
				c.ID, string(RoleOwner)).Scan(&previousOwner)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			c.svc.members.changingAll(c.ID)
			if _, err := tx.ExecContext(ctx, `UPDATE members SET role = $1 WHERE community_id = $2 AND role = $3`,
				string(RoleAdmin), c.ID, string(RoleOwner)); err != nil {
				return err
			}
		}
		c.svc.members.changing(c.ID, userID)
		if _, err := tx.ExecContext(ctx, `UPDATE members SET role = $1 WHERE community_id = $2 AND user_id = $3`, string(role), c.ID, userID); err != nil {
			return fmt.Errorf("community: set role: %w", err)
		}
		return c.audit(ctx, tx, Operator, "set_role", userID+" "+string(role))
	}, func() {
		if previousOwner != "" && previousOwner != userID {
			c.publish(Event{RoleChanged: previousOwner, Role: RoleAdmin})
		}
		c.publish(Event{RoleChanged: userID, Role: role})
	})
	if err == nil && c.private.Load() {
		c.enforceRole(userID)
	}
	return err
}

// boolInt is a flag as its INTEGER column holds it: PostgreSQL, unlike
// SQLite, does not take a Go bool for a BIGINT.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
