package community

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of PROTOCOL §9 "Display names and avatars".
const (
	MaxDisplayName = 32
	MaxAvatarSize  = 1 << 20
)

// ResultProfileChanged is the update set_profile sends everyone.
const ResultProfileChanged = "profile_changed"

// Profile is how a member presents themselves in one community; empty
// fields are not set.
type Profile struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
	Avatar      string `json:"avatar,omitempty"`
	// AvatarFileID is the avatar's file; the wire carries its url.
	AvatarFileID string `json:"-"`
}

// CheckDisplayName trims name and checks it: 1..32 code points, no
// control characters. It returns the trimmed name.
func CheckDisplayName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: a display name must be valid UTF-8", ErrInvalidData)
	}
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n < 1 || n > MaxDisplayName {
		return "", fmt.Errorf("%w: a display name is 1 to %d characters after trimming", ErrInvalidData, MaxDisplayName)
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return "", fmt.Errorf("%w: a display name must not contain control characters", ErrInvalidData)
		}
	}
	return name, nil
}

// profileChange is set_profile's payload: an absent field is left as it
// is, null clears it.
type profileChange struct {
	setName, setAvatar bool
	name, avatar       *string
}

func parseProfileChange(payload json.RawMessage) (profileChange, error) {
	var p profileChange
	var in map[string]json.RawMessage
	if len(payload) > 0 && string(payload) != "null" {
		if err := json.Unmarshal(payload, &in); err != nil {
			return p, fmt.Errorf("%w: payload must be an object", ErrInvalidData)
		}
	}
	field := func(key string, set *bool, out **string) error {
		raw, ok := in[key]
		if !ok {
			return nil
		}
		*set = true
		if bytes.Equal(raw, []byte("null")) {
			return nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("%w: payload.%s is a string or null", ErrInvalidData, key)
		}
		*out = &s
		return nil
	}
	if err := field("display_name", &p.setName, &p.name); err != nil {
		return p, err
	}
	if err := field("avatar_file_id", &p.setAvatar, &p.avatar); err != nil {
		return p, err
	}
	if !p.setName && !p.setAvatar {
		return p, fmt.Errorf("%w: give display_name or avatar_file_id", ErrInvalidData)
	}
	if p.name != nil {
		name, err := CheckDisplayName(*p.name)
		if err != nil {
			return p, err
		}
		p.name = &name
	}
	if p.avatar != nil && !isFileID(*p.avatar) {
		return p, fmt.Errorf("%w: no file %q", ErrNotFound, *p.avatar)
	}
	return p, nil
}

// SetProfile is set_profile: any member sets their own display name and
// avatar. The avatar must be an image (PNG, JPEG, GIF or WebP) of at most
// MaxAvatarSize bytes that the member uploaded to this community.
func (c *Community) SetProfile(ctx context.Context, actor Member, payload json.RawMessage) (Profile, error) {
	change, err := parseProfileChange(payload)
	if err != nil {
		return Profile{}, err
	}
	var out Profile
	err = c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.actorNow(ctx, tx, actor, "", "setting a profile"); err != nil {
			return err
		}
		if change.setName {
			if _, err := tx.ExecContext(ctx, `UPDATE members SET display_name = $1 WHERE community_id = $2 AND user_id = $3`,
				strOrNil(change.name), c.ID, actor.UserID); err != nil {
				return fmt.Errorf("community: set display name: %w", err)
			}
		}
		if change.setAvatar {
			if change.avatar != nil {
				if err := c.lockFile(ctx, tx, *change.avatar, c.svc.now().UnixMilli()); err != nil {
					return err
				}
				var uploader, typ string
				var size int64
				err := tx.QueryRowContext(ctx, `SELECT uploader_id, type, size FROM files WHERE id = $1 AND community_id = $2`,
					*change.avatar, c.ID).Scan(&uploader, &typ, &size)
				if errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("%w: no file %s", ErrNotFound, *change.avatar)
				}
				if err != nil {
					return fmt.Errorf("community: read avatar: %w", err)
				}
				if uploader != actor.UserID {
					return fmt.Errorf("%w: only the uploader may use file %s as an avatar", ErrPermission, *change.avatar)
				}
				if !IsInlineType(typ) {
					return fmt.Errorf("%w: an avatar is a PNG, JPEG, GIF or WebP image", ErrInvalidData)
				}
				if size > MaxAvatarSize {
					return fmt.Errorf("%w: an avatar is at most %d bytes", ErrInvalidData, MaxAvatarSize)
				}
			}
			// The old avatar's grace hour starts now.
			if _, err := tx.ExecContext(ctx, `UPDATE files SET last_used = $1 WHERE id = (SELECT avatar_file_id FROM members
				WHERE community_id = $2 AND user_id = $3)`, c.svc.now().UnixMilli(), c.ID, actor.UserID); err != nil {
				return fmt.Errorf("community: release avatar: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE members SET avatar_file_id = $1 WHERE community_id = $2 AND user_id = $3`,
				strOrNil(change.avatar), c.ID, actor.UserID); err != nil {
				return fmt.Errorf("community: set avatar: %w", err)
			}
		}
		var err error
		out, err = c.profile(ctx, tx, actor.UserID)
		return err
	}, func() {
		c.publish(Event{Result: ResultProfileChanged, Payload: out})
	})
	if err != nil {
		return Profile{}, err
	}
	return out, nil
}

func strOrNil(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

const profileColumns = `m.user_id, m.display_name, m.avatar_file_id, f.name`

func scanProfile(scan func(...any) error) (Profile, error) {
	var p Profile
	var name, avatar, avatarName sql.NullString
	if err := scan(&p.UserID, &name, &avatar, &avatarName); err != nil {
		return Profile{}, err
	}
	p.DisplayName, p.AvatarFileID = name.String, avatar.String
	if avatar.Valid {
		p.Avatar = FileURL(avatar.String, avatarName.String)
	}
	return p, nil
}

func (c *Community) profile(ctx context.Context, q queryer, userID string) (Profile, error) {
	p, err := scanProfile(q.QueryRowContext(ctx, `SELECT `+profileColumns+` FROM members m LEFT JOIN files f ON f.id = m.avatar_file_id
		WHERE m.community_id = $1 AND m.user_id = $2`, c.ID, userID).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Profile{}, ErrNotMember
	}
	if err != nil {
		return Profile{}, fmt.Errorf("community: read profile: %w", err)
	}
	return p, nil
}

// Profiles are the members' profiles that have something set, by user id.
func (c *Community) Profiles(ctx context.Context) (map[string]Profile, error) {
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT `+profileColumns+` FROM members m LEFT JOIN files f ON f.id = m.avatar_file_id
		WHERE m.community_id = $1 AND (m.display_name IS NOT NULL OR m.avatar_file_id IS NOT NULL)`, c.ID)
	if err != nil {
		return nil, fmt.Errorf("community: read profiles: %w", err)
	}
	defer rows.Close()
	out := map[string]Profile{}
	for rows.Next() {
		p, err := scanProfile(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("community: read profiles: %w", err)
		}
		out[p.UserID] = p
	}
	return out, rows.Err()
}
