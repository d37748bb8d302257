package api

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/iotad/iotad/community"
)

// codecRoot addresses the community itself: path "", name "".
const codecRoot = "community"

// Results pushed for community-wide changes.
const (
	ResultInteractablesChanged = "interactables_changed"
	ResultRoleChanged          = "role_changed"
)

// rootPermissions is checked before the payload is even read, so a member
// learns nothing from trying a function they may not use.
var rootPermissions = map[string]community.Permission{
	"create_channel":          community.PermManageChannels,
	"rename_channel":          community.PermManageChannels,
	"move_channel":            community.PermManageChannels,
	"delete_channel":          community.PermManageChannels,
	"create_invite":           community.PermInvite,
	"list_invites":            community.PermManageInvites,
	"revoke_invite":           community.PermManageInvites,
	"list_members":            community.PermListMembers,
	"set_role":                community.PermSetRole,
	"kick":                    community.PermKick,
	"ban":                     community.PermBan,
	"unban":                   community.PermBan,
	"audit_log":               community.PermAuditLog,
	"set_slow_mode":           community.PermManageChannels,
	"set_channel_permissions": community.PermManageChannels,
	"timeout":                 community.PermTimeout,
	"remove_timeout":          community.PermTimeout,
	// Reading, as get_messages: every member (the channels searched are
	// those the member may read).
	"search": "",
}

type inviteWire struct {
	InviteID  string `json:"invite_id"`
	MaxUses   int    `json:"max_uses"`
	Uses      int    `json:"uses"`
	ExpiresAt int64  `json:"expires_at"`
	UserID    string `json:"user_id,omitempty"`
	CreatedBy string `json:"created_by"`
	Revoked   bool   `json:"revoked,omitempty"`
}

type memberWire struct {
	UserID   string         `json:"user_id"`
	Role     community.Role `json:"role"`
	JoinedAt int64          `json:"joined_at"`
	Online   bool           `json:"online"`
	Banned   bool           `json:"banned,omitempty"`
	// TimeoutUntil is shown while the timeout lasts (Unix ms).
	TimeoutUntil int64 `json:"timeout_until,omitempty"`
	// DisplayName and Avatar (a url) are the member's profile, when set.
	DisplayName string `json:"display_name,omitempty"`
	Avatar      string `json:"avatar,omitempty"`
}

type auditWire struct {
	EntryID int64  `json:"entry_id"`
	ActorID string `json:"actor_id"`
	Action  string `json:"action"`
	Target  string `json:"target"`
	Time    int64  `json:"time"`
}

func decodePayload(payload json.RawMessage, v any) error {
	if len(payload) == 0 || string(payload) == "null" {
		payload = json.RawMessage("{}")
	}
	return decodeData(&Request{Data: payload}, v)
}

func required(name string, p *string) (string, error) {
	if p == nil {
		return "", fmt.Errorf("%w: payload.%s is required", ErrInvalidData, name)
	}
	return *p, nil
}

func (a *communityAPI) root(ctx context.Context, s *Session, m community.Member, function string, payload json.RawMessage) (*Reply, error) {
	if function == "set_profile" {
		// Every member has a profile; no role is needed.
		p, err := a.c.SetProfile(ctx, m, payload)
		if err != nil {
			return nil, err
		}
		return &Reply{Type: TypeFunction, LogMessage: "ran function",
			Data: functionOut{Codec: codecRoot, Result: function, Payload: p}}, nil
	}
	perm, ok := rootPermissions[function]
	if !ok {
		return nil, fmt.Errorf("%w: the community has no function %q", ErrInvalidData, function)
	}
	if perm != "" && !a.c.Permissions().Allows(m.Role, perm) {
		return nil, fmt.Errorf("%w: %s needs a higher role than %s", ErrPermission, function, m.Role)
	}
	out, err := a.runRoot(ctx, m, function, payload)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = struct{}{}
	}
	return &Reply{Type: TypeFunction, LogMessage: "ran function",
		Data: functionOut{Codec: codecRoot, Result: function, Payload: out}}, nil
}

func (a *communityAPI) runRoot(ctx context.Context, m community.Member, function string, payload json.RawMessage) (any, error) {
	if function == "set_channel_permissions" { // its overrides are an object of roles
		return nil, a.setChannelPermissions(ctx, m, payload)
	}
	if function == "search" { // its before is a message id, not audit_log's integer
		hits, more, err := a.c.Search(ctx, m, payload)
		if err != nil {
			return nil, err
		}
		return map[string]any{"messages": hits, "has_more": more}, nil
	}
	var in struct {
		Path      *string `json:"path"`
		Name      *string `json:"name"`
		Codec     *string `json:"codec"`
		NewName   *string `json:"new_name"`
		NewPath   *string `json:"new_path"`
		Position  *int    `json:"position"`
		MaxUses   *int    `json:"max_uses"`
		ExpiresIn *int64  `json:"expires_in"`
		UserID    *string `json:"user_id"`
		InviteID  *string `json:"invite_id"`
		Role      *string `json:"role"`
		Before    *int64  `json:"before"`
		Amount    *int    `json:"amount"`
		Seconds   *int    `json:"seconds"`
		Until     *int64  `json:"until"`
		Duration  *int64  `json:"duration"`
	}
	if err := decodePayload(payload, &in); err != nil {
		return nil, err
	}
	path := deref(in.Path)
	switch function {
	case "create_channel":
		name, err := required("name", in.Name)
		if err != nil {
			return nil, err
		}
		codec, err := required("codec", in.Codec)
		if err != nil {
			return nil, err
		}
		return nil, a.c.CreateChannel(ctx, m, path, name, codec, in.Position)
	case "rename_channel":
		name, err := required("name", in.Name)
		if err != nil {
			return nil, err
		}
		newName, err := required("new_name", in.NewName)
		if err != nil {
			return nil, err
		}
		return nil, a.c.RenameChannel(ctx, m, path, name, newName)
	case "move_channel":
		name, err := required("name", in.Name)
		if err != nil {
			return nil, err
		}
		newPath, err := required("new_path", in.NewPath)
		if err != nil {
			return nil, err
		}
		return nil, a.c.MoveChannel(ctx, m, path, name, newPath, in.Position)
	case "delete_channel":
		name, err := required("name", in.Name)
		if err != nil {
			return nil, err
		}
		return nil, a.c.DeleteChannel(ctx, m, path, name)
	case "create_invite":
		opts := community.InviteOptions{UserID: deref(in.UserID)}
		if in.MaxUses != nil {
			if *in.MaxUses < 1 {
				return nil, fmt.Errorf("%w: max_uses must be >= 1", ErrInvalidData)
			}
			opts.MaxUses = *in.MaxUses
		}
		if in.ExpiresIn != nil {
			if *in.ExpiresIn < 1 || *in.ExpiresIn > int64(community.MaxInviteTTL/time.Second) {
				return nil, fmt.Errorf("%w: expires_in must be 1 second to 365 days", ErrInvalidData)
			}
			opts.TTL = time.Duration(*in.ExpiresIn) * time.Second
		}
		secret, inv, err := a.c.CreateInvite(ctx, m, opts)
		if err != nil {
			return nil, err
		}
		return map[string]any{"invite_id": inv.ID, "invite": InviteText(a.publicAddr, secret, a.c.Public, a.tls),
			"max_uses": inv.MaxUses, "expires_at": inv.ExpiresAt.UnixMilli()}, nil
	case "list_invites":
		invites, err := a.c.Invites(ctx, m)
		if err != nil {
			return nil, err
		}
		out := make([]inviteWire, len(invites))
		for i, inv := range invites {
			out[i] = inviteWire{InviteID: inv.ID, MaxUses: inv.MaxUses, Uses: inv.Uses, ExpiresAt: inv.ExpiresAt.UnixMilli(),
				UserID: inv.UserID, CreatedBy: inv.CreatedBy, Revoked: inv.Revoked}
		}
		return map[string]any{"invites": out}, nil
	case "revoke_invite":
		id, err := required("invite_id", in.InviteID)
		if err != nil {
			return nil, err
		}
		return nil, a.c.RevokeInvite(ctx, m, id)
	case "list_members":
		members, err := a.c.Members(ctx, m)
		if err != nil {
			return nil, err
		}
		profiles, err := a.c.Profiles(ctx)
		if err != nil {
			return nil, err
		}
		on := a.online()
		now := a.c.Now()
		out := make([]memberWire, len(members))
		for i, mm := range members {
			out[i] = memberWire{UserID: mm.UserID, Role: mm.Role, JoinedAt: mm.JoinedAt.UnixMilli(), Online: on[mm.UserID], Banned: mm.Banned,
				DisplayName: profiles[mm.UserID].DisplayName, Avatar: profiles[mm.UserID].Avatar}
			if mm.TimedOut(now) {
				out[i].TimeoutUntil = mm.TimeoutUntil
			}
		}
		return map[string]any{"members": out}, nil
	case "set_role":
		uid, err := required("user_id", in.UserID)
		if err != nil {
			return nil, err
		}
		roleName, err := required("role", in.Role)
		if err != nil {
			return nil, err
		}
		role, err := community.ParseRole(roleName)
		if err != nil {
			return nil, err
		}
		return nil, a.c.SetRole(ctx, m, uid, role)
	case "kick", "ban", "unban":
		uid, err := required("user_id", in.UserID)
		if err != nil {
			return nil, err
		}
		switch function {
		case "kick":
			return nil, a.c.Kick(ctx, m, uid)
		case "ban":
			return nil, a.c.Ban(ctx, m, uid)
		}
		return nil, a.c.Unban(ctx, m, uid)
	case "set_slow_mode":
		name, err := required("name", in.Name)
		if err != nil {
			return nil, err
		}
		if in.Seconds == nil {
			return nil, fmt.Errorf("%w: payload.seconds is required", ErrInvalidData)
		}
		return nil, a.c.SetSlowMode(ctx, m, path, name, *in.Seconds)
	case "timeout":
		uid, err := required("user_id", in.UserID)
		if err != nil {
			return nil, err
		}
		until, err := timeoutUntil(a.c.Now(), in.Until, in.Duration)
		if err != nil {
			return nil, err
		}
		return map[string]any{"user_id": uid, "until": until.UnixMilli()}, a.c.Timeout(ctx, m, uid, until)
	case "remove_timeout":
		uid, err := required("user_id", in.UserID)
		if err != nil {
			return nil, err
		}
		return nil, a.c.RemoveTimeout(ctx, m, uid)
	case "audit_log":
		if in.Amount == nil {
			return nil, fmt.Errorf("%w: payload.amount is required", ErrInvalidData)
		}
		entries, more, err := a.c.AuditLog(ctx, m, in.Before, *in.Amount)
		if err != nil {
			return nil, err
		}
		out := make([]auditWire, len(entries))
		for i, e := range entries {
			out[i] = auditWire{EntryID: e.ID, ActorID: e.Actor, Action: e.Action, Target: e.Target, Time: e.Time.UnixMilli()}
		}
		return map[string]any{"entries": out, "has_more": more}, nil
	}
	return nil, fmt.Errorf("%w: the community has no function %q", ErrInvalidData, function)
}

// timeoutUntil reads timeout's until (Unix ms) or duration (seconds): one
// of them, ending 1 second to 28 days from now.
func timeoutUntil(now time.Time, until, duration *int64) (time.Time, error) {
	switch {
	case (until == nil) == (duration == nil):
		return time.Time{}, fmt.Errorf("%w: give payload.until or payload.duration, one of them", ErrInvalidData)
	case duration != nil:
		if *duration < 1 || *duration > int64(community.MaxTimeout/time.Second) {
			return time.Time{}, fmt.Errorf("%w: duration must be 1..%d seconds", ErrInvalidData, int64(community.MaxTimeout/time.Second))
		}
		return now.Add(time.Duration(*duration) * time.Second), nil
	}
	t := time.UnixMilli(*until)
	if !t.After(now) || t.Sub(now) > community.MaxTimeout {
		return time.Time{}, fmt.Errorf("%w: until must be in the future, at most 28 days from now", ErrInvalidData)
	}
	return t, nil
}

// setChannelPermissions runs set_channel_permissions {path?, name,
// overrides} (PROTOCOL §9 "Private channels").
func (a *communityAPI) setChannelPermissions(ctx context.Context, m community.Member, payload json.RawMessage) error {
	var in struct {
		Path      *string         `json:"path"`
		Name      *string         `json:"name"`
		Overrides json.RawMessage `json:"overrides"`
	}
	if err := decodePayload(payload, &in); err != nil {
		return err
	}
	name, err := required("name", in.Name)
	if err != nil {
		return err
	}
	overrides, err := community.ParseOverrides(in.Overrides)
	if err != nil {
		return err
	}
	return a.c.SetChannelPermissions(ctx, m, deref(in.Path), name, overrides)
}
