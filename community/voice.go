package community

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	icrypto "github.com/iotad/iotad/crypto"
)

// Voice states of the seed.
const (
	StateActive   = "active"
	StateMuted    = "muted"
	StateDeafed   = "deafed"
	StateInactive = "inactive"
)

// Results of the voice codec.
const (
	ResultCallTicket  = "call_ticket"
	ResultUserChanged = "user_changed"
	ResultUserLeft    = "user_left"
	ResultLeft        = "left"
)

// TicketTTL is how long a call ticket is valid (PROTOCOL §5.4).
const TicketTTL = 60 * time.Second

// VoiceUser is one user's state in a voice channel.
type VoiceUser struct {
	UserID    string `json:"user_id"`
	State     string `json:"state"`
	Streaming bool   `json:"streaming"`
	// Speaking comes from the audio level the user's client sends.
	Speaking bool `json:"speaking"`
	// ServerMuted is set by a moderator: the user's audio is not forwarded.
	ServerMuted bool `json:"server_muted,omitempty"`
}

type voiceRoom struct {
	users []*VoiceUser
}

func (r *voiceRoom) find(userID string) *VoiceUser {
	for _, u := range r.users {
		if u.UserID == userID {
			return u
		}
	}
	return nil
}

// writeVoiceData writes {"active_users": {...}} in join order. Called with c.mu held.
func (c *Community) writeVoiceData(b *bytes.Buffer, ch *Channel) {
	b.WriteString(`{"active_users":{`)
	if room := c.voice[ch.ID]; room != nil {
		for i, u := range room.users {
			if i > 0 {
				b.WriteByte(',')
			}
			id, _ := json.Marshal(u.UserID)
			b.Write(id)
			fmt.Fprintf(b, `:{"state":%q,"streaming":%t}`, u.State, u.Streaming)
		}
	}
	b.WriteString(`}}`)
}

// ICEServer is an entry of ice_servers, in the browser's RTCIceServer form.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// CallID names a voice channel's call.
func (c *Community) CallID(ch *Channel) string { return c.ID + ":" + strconv.FormatInt(ch.ID, 10) }

type voiceCodec struct{}

func (voiceCodec) Call(ctx context.Context, call *Call) (*Result, error) {
	c, ch, m := call.Community, call.Channel, call.Member
	if !call.Allowed(PermVoice) {
		return nil, fmt.Errorf("%w: voice needs a higher role", ErrPermission)
	}
	switch call.Function {
	case "join":
		if _, err := c.actorIn(ctx, c.svc.db.Read, m, ch, PermVoice, "voice"); err != nil {
			return nil, err
		}
		t, err := icrypto.NewTicket(rand.Reader, c.CallID(ch), m.UserID, c.svc.now().Add(TicketTTL))
		if err != nil {
			return nil, err
		}
		node, servers, err := c.joinCall(ctx, ch, m.UserID)
		if err != nil {
			return nil, err
		}
		out := map[string]any{"call_id": c.CallID(ch), "ticket": icrypto.SignTicket(c.svc.ticketSecret, t), "ice_servers": servers}
		if node.CallURL != "" {
			out["call_url"] = node.CallURL
		}
		return &Result{Result: ResultCallTicket, Payload: out}, nil
	case "set_state":
		var in struct {
			State     *string `json:"state"`
			Streaming *bool   `json:"streaming"`
		}
		if err := call.Decode(&in); err != nil {
			return nil, err
		}
		if in.State == nil || (*in.State != StateActive && *in.State != StateMuted && *in.State != StateDeafed) {
			return nil, fmt.Errorf("%w: state must be active, muted or deafed", ErrInvalidData)
		}
		u, err := c.SetVoiceState(ch, m.UserID, *in.State, in.Streaming)
		if err != nil {
			return nil, err
		}
		return &Result{Result: ResultUserChanged, Payload: u}, nil
	case "mute_user", "disconnect_user":
		return moderateCall(ctx, call)
	case "leave":
		if !c.InCall(ch, m.UserID) {
			return nil, fmt.Errorf("%w: you are not in this call", ErrNotInCall)
		}
		c.LeaveCall(ch, m.UserID)
		return &Result{Result: ResultLeft, Payload: map[string]any{}}, nil
	}
	return nil, UnknownFunction(CodecVoice, call.Function)
}

// RedeemTicket checks a call ticket for the channel at path/name and spends
// it. It returns the channel and the user the ticket admits.
func (c *Community) RedeemTicket(path, name, ticket string) (*Channel, string, error) {
	s := c.svc
	t, err := icrypto.VerifyTicket(s.ticketSecret, ticket, s.now())
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadCallTicket, err)
	}
	ch, err := c.Find(path, name)
	if err != nil && s.joined {
		// A node with no socket of this community does not hear its tree
		// changes: a channel another node made may be new to it.
		if err := c.reloadTree(context.Background()); err != nil {
			return nil, "", err
		}
		ch, err = c.Find(path, name)
	}
	if err != nil || ch.Codec != CodecVoice || c.CallID(ch) != t.CallID {
		return nil, "", fmt.Errorf("%w: the ticket is for another channel", ErrBadCallTicket)
	}
	if s.joined {
		// The call lives on the node holding its lease: a call socket
		// here while another node holds it would split the call in two.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, err := c.placeCall(ctx, ch)
		cancel()
		if err != nil {
			return nil, "", err
		}
		if n.ID != s.node.ID {
			return nil, "", fmt.Errorf("%w: the call is on node %s (%s)", ErrBadCallTicket, n.ID, n.CallURL)
		}
	}
	// A ticket verified now expires within TicketTTL, so its nonce need
	// be remembered no longer; with a bus that joins nodes the claim is
	// cluster-wide, so a ticket is spent once on any node.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first, err := s.claims.Once(ctx, "ticket."+hex.EncodeToString(t.Nonce[:]), TicketTTL+time.Second)
	if err != nil {
		return nil, "", fmt.Errorf("community: spend a call ticket: %w", err)
	}
	if !first {
		return nil, "", fmt.Errorf("%w: the ticket was used", ErrBadCallTicket)
	}
	return ch, t.UserID, nil
}

// EnterCall puts a user in a voice channel as active (their call socket is
// up), server-muted again if a moderator muted them there. A user is in one
// call per community: entering one leaves the other.
func (c *Community) EnterCall(ch *Channel, userID string) VoiceUser {
	for _, other := range c.callsOf(userID) {
		if other != ch {
			c.LeaveCall(other, userID)
		}
	}
	muted := c.serverMuted(ch, userID)
	c.mu.Lock()
	room := c.voice[ch.ID]
	if room == nil {
		room = &voiceRoom{}
		c.voice[ch.ID] = room
	}
	u := room.find(userID)
	if u == nil {
		u = &VoiceUser{UserID: userID}
		room.users = append(room.users, u)
	}
	u.State, u.Streaming, u.ServerMuted = StateActive, false, muted
	snapshot := *u
	c.treeJSON = nil
	c.mu.Unlock()
	c.publish(Event{Channel: ch.Ref(), Result: ResultUserChanged, Payload: snapshot})
	if muted {
		c.publish(Event{MuteCall: userID, Muted: true})
	}
	return snapshot
}

// serverMuted reads whether userID is server-muted in ch. A failed read
// counts as muted: a mute that does not hold is the failure that matters.
func (c *Community) serverMuted(ch *Channel, userID string) bool {
	var one int
	err := c.svc.db.ReadRow(context.Background(), `SELECT 1 FROM server_mutes WHERE channel_id = $1 AND user_id = $2`,
		ch.ID, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false
	}
	if err != nil {
		slog.Warn("community: read server mute; treating the user as muted",
			slog.String("community", c.ID), slog.String("user", userID), slog.Any("err", err))
	}
	return true
}

func (c *Community) callsOf(userID string) []*Channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Channel
	for id, room := range c.voice {
		if room.find(userID) != nil {
			if ch := c.channels[id]; ch != nil {
				out = append(out, ch)
			}
		}
	}
	return out
}

// InCall reports whether the user is in the channel's call.
func (c *Community) InCall(ch *Channel, userID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.voice[ch.ID]
	return room != nil && room.find(userID) != nil
}

// SetVoiceState changes a user's state (and streaming, when given).
func (c *Community) SetVoiceState(ch *Channel, userID, state string, streaming *bool) (VoiceUser, error) {
	return c.updateVoice(ch, userID, func(u *VoiceUser) {
		u.State = state
		if streaming != nil {
			u.Streaming = *streaming
		}
	})
}

// removeVoiceUserLocked drops userID from ch's room, and the room once it
// is empty; with c.mu held.
func (c *Community) removeVoiceUserLocked(ch *Channel, room *voiceRoom, userID string) {
	kept := room.users[:0]
	for _, u := range room.users {
		if u.UserID != userID {
			kept = append(kept, u)
		}
	}
	room.users = kept
	if len(kept) == 0 {
		delete(c.voice, ch.ID)
	}
	c.treeJSON = nil
}

// LeaveCall takes a user out of a voice channel: everyone sees them go
// inactive, then leave, and their call socket is closed.
func (c *Community) LeaveCall(ch *Channel, userID string) {
	c.mu.Lock()
	room := c.voice[ch.ID]
	if room == nil || room.find(userID) == nil {
		c.mu.Unlock()
		return
	}
	c.removeVoiceUserLocked(ch, room, userID)
	c.mu.Unlock()
	ref := ch.Ref()
	c.publish(Event{Channel: ref, Result: ResultUserChanged, Payload: VoiceUser{UserID: userID, State: StateInactive}})
	c.publish(Event{Channel: ref, Result: ResultUserLeft, Payload: map[string]string{"user_id": userID}, EndCall: userID})
}

// Peers lists who is in the channel's call.
func (c *Community) Peers(ch *Channel) []VoiceUser {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []VoiceUser{}
	if room := c.voice[ch.ID]; room != nil {
		for _, u := range room.users {
			out = append(out, *u)
		}
	}
	return out
}

// moderateCall lets a moderator server-mute or disconnect someone of a
// lower role. The actor and the target are read again where the decision
// is made (inside the write for a mute), not taken from the socket's cache.
// A mute is stored per channel and user, so it holds across leaving,
// reconnecting and restarts, and may be set or lifted while the target is
// not in the call.
func moderateCall(ctx context.Context, call *Call) (*Result, error) {
	c, ch := call.Community, call.Channel
	if !call.Allowed(PermMuteOthers) {
		return nil, fmt.Errorf("%w: moderating a call needs a higher role", ErrPermission)
	}
	var in struct {
		UserID *string `json:"user_id"`
		Muted  *bool   `json:"muted"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if in.UserID == nil {
		return nil, fmt.Errorf("%w: payload.user_id is required", ErrInvalidData)
	}
	uid := *in.UserID
	if call.Function == "disconnect_user" {
		if err := c.moderationAllowed(ctx, c.svc.db.Read, call.Member, uid); err != nil {
			return nil, err
		}
		if !c.InCall(ch, uid) {
			return nil, fmt.Errorf("%w: %s is not in this call", ErrNotFound, uid)
		}
		c.LeaveCall(ch, uid)
		return &Result{Result: "user_disconnected", Payload: map[string]string{"user_id": uid}}, nil
	}
	muted := in.Muted == nil || *in.Muted
	action := "unmute_user"
	if muted {
		action = "mute_user"
	}
	u := VoiceUser{UserID: uid, State: StateInactive, ServerMuted: muted}
	err := c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if err := c.moderationAllowed(ctx, tx, call.Member, uid); err != nil {
			return err
		}
		var err error
		if muted {
			_, err = tx.ExecContext(ctx, `INSERT INTO server_mutes(channel_id, user_id, muted_by, muted_at) VALUES($1, $2, $3, $4)
				ON CONFLICT(channel_id, user_id) DO NOTHING`, ch.ID, uid, call.Member.UserID, c.svc.now().UnixMilli())
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM server_mutes WHERE channel_id = $1 AND user_id = $2`, ch.ID, uid)
		}
		if err != nil {
			return fmt.Errorf("community: %s: %w", action, err)
		}
		return c.audit(ctx, tx, call.Member.UserID, action, uid+" "+joinPath(ch.Path(), ch.Name))
	}, func() {
		// In commit order, so that of a mute and an unmute racing the
		// voice state and the SFU end as the database does.
		if now, err := c.updateVoice(ch, uid, func(u *VoiceUser) { u.ServerMuted = muted }); err == nil {
			u = now
		}
		c.publish(Event{MuteCall: uid, Muted: muted})
	})
	if err != nil {
		return nil, err
	}
	return &Result{Result: ResultUserChanged, Payload: u}, nil
}

// moderationAllowed re-reads the actor and the target through q: the
// actor must still have mute_others and outrank the target as stored now.
func (c *Community) moderationAllowed(ctx context.Context, q queryer, actor Member, userID string) error {
	actor, err := c.actorNow(ctx, q, actor, PermMuteOthers, "moderating a call")
	if err != nil {
		return err
	}
	target, err := c.member(ctx, q, userID)
	if errors.Is(err, ErrNotMember) {
		return fmt.Errorf("%w: %q is not a member", ErrNotFound, userID)
	}
	if err != nil {
		return err
	}
	if !actor.Role.Outranks(target.Role) {
		return fmt.Errorf("%w: only a higher role may moderate a %s", ErrPermission, target.Role)
	}
	return nil
}

// updateVoice changes a user's voice state with fn and tells everyone.
func (c *Community) updateVoice(ch *Channel, userID string, fn func(u *VoiceUser)) (VoiceUser, error) {
	c.mu.Lock()
	room := c.voice[ch.ID]
	var u *VoiceUser
	if room != nil {
		u = room.find(userID)
	}
	if u == nil {
		c.mu.Unlock()
		return VoiceUser{}, fmt.Errorf("%w: open the call socket first", ErrNotInCall)
	}
	fn(u)
	snapshot := *u
	c.treeJSON = nil
	c.mu.Unlock()
	c.publish(Event{Channel: ch.Ref(), Result: ResultUserChanged, Payload: snapshot})
	return snapshot, nil
}

// SetStreaming marks a user's screen share on or off.
func (c *Community) SetStreaming(ch *Channel, userID string, streaming bool) (VoiceUser, error) {
	return c.updateVoice(ch, userID, func(u *VoiceUser) { u.Streaming = streaming })
}

// SetSpeaking records the speaking flag the SFU measured.
func (c *Community) SetSpeaking(ch *Channel, userID string, speaking bool) {
	c.updateVoice(ch, userID, func(u *VoiceUser) { u.Speaking = speaking })
}
