package community

import "fmt"

// Role is a member's rank in a community.
type Role string

// The roles, highest first.
const (
	RoleOwner     Role = "owner"
	RoleAdmin     Role = "admin"
	RoleModerator Role = "moderator"
	RoleMember    Role = "member"
)

func (r Role) rank() int {
	switch r {
	case RoleOwner:
		return 4
	case RoleAdmin:
		return 3
	case RoleModerator:
		return 2
	case RoleMember:
		return 1
	}
	return 0
}

// ParseRole checks a role name from a client.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.rank() == 0 {
		return "", fmt.Errorf("%w: unknown role %q (owner, admin, moderator, member)", ErrInvalidData, s)
	}
	return r, nil
}

// Outranks reports whether r is strictly above other.
func (r Role) Outranks(other Role) bool { return r.rank() > other.rank() }

// Permission is something a member may be allowed to do.
type Permission string

// The permissions of PROTOCOL §5.3 and docs/PERMISSIONS.md.
const (
	PermPost           Permission = "post"             // send, edit and delete own messages, typing
	PermVoice          Permission = "voice"            // join voice channels and speak
	PermStream         Permission = "stream"           // share a screen in a voice channel
	PermListMembers    Permission = "list_members"     //
	PermDeleteAny      Permission = "delete_any"       // delete others' messages
	PermKick           Permission = "kick"             //
	PermInvite         Permission = "create_invite"    //
	PermManageInvites  Permission = "manage_invites"   // list and revoke invites
	PermBan            Permission = "ban"              // ban and unban
	PermAuditLog       Permission = "audit_log"        //
	PermManageChannels Permission = "manage_channels"  // create, rename, move, delete channels
	PermSetRole        Permission = "set_role"         //
	PermMuteOthers     Permission = "mute_others"      // server-mute or disconnect a peer in a call
	PermMentionAll     Permission = "mention_everyone" // mention_everyone in send_message
	PermBypassSlowMode Permission = "bypass_slow_mode" // send in a slow-mode channel without waiting
	PermTimeout        Permission = "timeout"          // time out a member and lift it
	PermPin            Permission = "pin"              // pin and unpin messages
)

// Permissions maps each permission to the lowest role that has it. This is
// the one place the default table lives; docs/PERMISSIONS.md mirrors it and
// a test keeps the two in step.
type Permissions map[Permission]Role

// DefaultPermissions is the table of PROTOCOL §5.3.
func DefaultPermissions() Permissions {
	return Permissions{
		PermPost:           RoleMember,
		PermVoice:          RoleMember,
		PermStream:         RoleMember,
		PermListMembers:    RoleMember,
		PermDeleteAny:      RoleModerator,
		PermKick:           RoleModerator,
		PermInvite:         RoleModerator,
		PermMuteOthers:     RoleModerator,
		PermMentionAll:     RoleModerator,
		PermBypassSlowMode: RoleModerator,
		PermTimeout:        RoleModerator,
		PermPin:            RoleModerator,
		PermManageInvites:  RoleAdmin,
		PermBan:            RoleAdmin,
		PermAuditLog:       RoleAdmin,
		PermManageChannels: RoleAdmin,
		PermSetRole:        RoleAdmin,
	}
}

// Allows reports whether role has p.
func (ps Permissions) Allows(role Role, p Permission) bool {
	min, ok := ps[p]
	return ok && role.rank() >= min.rank()
}

// MaxGrant is the highest role that role may hand out with set_role: the
// owner up to admin, an admin up to moderator. Ownership moves only by the CLI.
func MaxGrant(role Role) Role {
	switch role {
	case RoleOwner:
		return RoleAdmin
	case RoleAdmin:
		return RoleModerator
	}
	return ""
}
