package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/community/voice"
	icrypto "github.com/iotad/iotad/crypto"
)

// communityAPI serves one community's socket ("/") and call socket.
type communityAPI struct {
	c       *community.Community
	uploads uploadGate
	logins  *loginLimiter
	id      *identity
	log     *slog.Logger
	// publicAddr is host:port as invites name it.
	publicAddr string
	// tls is whether the listener speaks TLS: its invites then say tls=1.
	tls bool
	sfu *voice.SFU

	// known holds the key of every member whose login completed, so that
	// a returning member's identification needs no database read: the
	// answer reads the row anyway. A kick or ban drops the member.
	known sync.Map // user id → icrypto.PublicKey

	mu       sync.Mutex
	members  map[*Session]*memberSession
	calls    map[string]*Session // user id → their call socket
	everyone atomic.Pointer[[]*memberSession]
	// stale says members changed since everyone was built. The slice is
	// rebuilt by the next broadcast, not by every login: 10,000 members
	// reconnecting would otherwise copy the list 10,000 times.
	stale atomic.Bool
	// asleep are the sockets whose frames of the current run of events
	// wait for drained to wake their writers; used only in the delivery
	// goroutine (onEvent, drained).
	asleep []*Session
	// heldEvents counts the events of the current run so far, and
	// runLimit is how many may wait for one wake (see runLimit).
	heldEvents int
	runLimit   int
	// unsubscribe ends the community's event subscription, held while a
	// member or call socket is open here: a node of a cluster hears only
	// the communities it has sockets for. Guarded by mu.
	unsubscribe func()
}

// memberSession is what a community socket knows about its member.
type memberSession struct {
	s      *Session
	userID string
	role   atomic.Value // community.Role
}

func newCommunityAPI(c *community.Community, logins *loginLimiter, legacyLogin bool, log *slog.Logger, publicAddr string, sfu *voice.SFU) *communityAPI {
	id := newIdentity(icrypto.RoleCommunity, c.Public, c.SharedWith, legacyLogin)
	a := &communityAPI{c: c, logins: logins, id: id, log: log.With(slog.String("community", c.ID)), publicAddr: publicAddr, sfu: sfu,
		members: map[*Session]*memberSession{}, calls: map[string]*Session{}, runLimit: maxRun}
	a.everyone.Store(&[]*memberSession{})
	return a
}

// listenLocked subscribes to the community's events while any socket is
// open, and stops once none is. Called with a.mu held after a socket came
// or went.
func (a *communityAPI) listenLocked() {
	open := len(a.members) > 0 || len(a.calls) > 0
	switch {
	case open && a.unsubscribe == nil:
		a.unsubscribe = a.c.SubscribeRuns(a.onEvent, a.drained)
	case !open && a.unsubscribe != nil:
		a.unsubscribe()
		a.unsubscribe = nil
	}
}

func (a *communityAPI) endpoint() *Endpoint {
	ep := NewEndpoint("community")
	ep.HandlePublic(TypePing, handlePing)
	ep.HandlePublic(TypeIdentification, a.identification)
	ep.HandlePublic(TypeChallengeResponse, handleChallengeResponse)
	ep.Handle(TypeFunction, a.function)
	ep.OnClose = a.forget
	return ep
}

// InviteText is the tensamin:// form of an invite (PROTOCOL §5.1), with
// tls=1 when the community is served over TLS, so that clients know to
// use wss://; without TLS the text is as it always was.
func InviteText(publicAddr, secret string, communityKey icrypto.PublicKey, tls bool) string {
	key := strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(communityKey.String()), "=")
	text := "tensamin://" + publicAddr + "/?invite=" + url.QueryEscape(secret) + "&key=" + key
	if tls {
		text += "&tls=1"
	}
	return text
}

// inviteSecret accepts the secret alone or the whole tensamin:// text.
func inviteSecret(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	if v := u.Query().Get("invite"); v != "" {
		return v
	}
	return s
}

type identificationResponse struct {
	Accepted           bool            `json:"accepted"`
	Interactables      json.RawMessage `json:"interactables"`
	CommunityPublicKey string          `json:"community_public_key"`
	Proof              string          `json:"proof"`
	UserID             userID          `json:"user_id"`
	Role               community.Role  `json:"role"`
}

func (a *communityAPI) identification(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	if err := checkIdentification(s, a.logins); err != nil {
		return nil, err
	}
	var in struct {
		UserID       *userID         `json:"user_id"`
		PublicKey    *string         `json:"public_key"`
		Invite       *string         `json:"invite"`
		LoginVersion json.RawMessage `json:"login_version"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.UserID == nil {
		return nil, fmt.Errorf("%w: user_id is required", ErrInvalidData)
	}
	version, err := a.id.loginVersion(in.LoginVersion)
	if err != nil {
		return nil, err
	}
	uid := *in.UserID
	var pub icrypto.PublicKey
	if in.PublicKey != nil {
		var err error
		if pub, err = icrypto.ParsePublicKey(*in.PublicKey); err != nil {
			return nil, err
		}
	}
	m, err := a.loginMember(ctx, uid.Text)
	switch {
	case err == nil:
		if m.Banned {
			return nil, fmt.Errorf("%w: you are banned from this community", ErrPermission)
		}
		if in.PublicKey != nil && pub != m.PublicKey {
			return nil, fmt.Errorf("%w: this user id is a member with another key", ErrInvalidUserID)
		}
		return startChallenge(s, a.id, version, uid.Text, m.PublicKey, nil, func(ctx context.Context, s *Session, answer string) (*Reply, error) {
			// The row read above may be stale by now: a ban, kick or role
			// change while the challenge was open must hold.
			now, err := a.c.Member(ctx, uid.Text)
			if err == community.ErrNotMember {
				return nil, fmt.Errorf("%w: no longer a member", ErrInvalidUserID)
			}
			if err != nil {
				return nil, err
			}
			if now.Banned {
				return nil, fmt.Errorf("%w: you are banned from this community", ErrPermission)
			}
			if now.PublicKey != m.PublicKey {
				return nil, fmt.Errorf("%w: this user id is a member with another key", ErrInvalidUserID)
			}
			return a.completeLogin(ctx, s, uid, now, answer)
		})
	case err == community.ErrNotMember:
		if in.Invite == nil {
			return nil, fmt.Errorf("%w: not a member; join with an invite", ErrInvalidUserID)
		}
		if in.PublicKey == nil {
			return nil, fmt.Errorf("%w: a first visit needs public_key", ErrInvalidData)
		}
		secret := inviteSecret(*in.Invite)
		if err := a.c.CheckInvite(ctx, secret, uid.Text); err != nil {
			return nil, err
		}
		shared, err := a.id.sharedWith(pub)
		if err != nil {
			return nil, errUnsealable
		}
		return startChallenge(s, a.id, version, uid.Text, pub, &shared, func(ctx context.Context, s *Session, answer string) (*Reply, error) {
			m, err := a.c.Join(ctx, secret, uid.Text, pub)
			if err != nil {
				return nil, err
			}
			a.id.adopt(m.UserID, m.PublicKey, shared) // Join checked that pub is theirs
			a.log.Info("member joined", slog.String("user", uid.Text), slog.String("role", string(m.Role)))
			return a.completeLogin(ctx, s, uid, m, answer)
		})
	default:
		return nil, err
	}
}

// loginMember is the member an identification seals its challenge to: a
// known one from memory, else the row. Only the key matters until the
// answer arrives, when the row is read again.
func (a *communityAPI) loginMember(ctx context.Context, userID string) (community.Member, error) {
	if v, ok := a.known.Load(userID); ok {
		return community.Member{UserID: userID, PublicKey: v.(icrypto.PublicKey)}, nil
	}
	return a.c.Member(ctx, userID)
}

func (a *communityAPI) completeLogin(ctx context.Context, s *Session, uid userID, m community.Member, answer string) (*Reply, error) {
	key, err := a.id.memberKey(m.UserID, m.PublicKey)
	if err != nil {
		return nil, err
	}
	tree, err := a.c.TreeJSONFor(ctx, m)
	if err != nil {
		return nil, err
	}
	ms := &memberSession{s: s, userID: m.UserID}
	ms.role.Store(m.Role)
	if err := s.SetLoggedIn(m.UserID); err != nil {
		return nil, err
	}
	s.State = ms
	a.known.Store(m.UserID, m.PublicKey)
	a.remember(ms)
	a.log.Info("community login", slog.String("user", m.UserID))
	return &Reply{Type: TypeIdentificationResponse, LogMessage: "Challenge solved you are logged in", Data: identificationResponse{
		Accepted:           true,
		Interactables:      tree,
		CommunityPublicKey: a.c.Public.String(),
		Proof:              icrypto.Proof(key, answer),
		UserID:             uid,
		Role:               m.Role,
	}}, nil
}

func (a *communityAPI) remember(ms *memberSession) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.members[ms.s] = ms
	a.republish()
	a.listenLocked()
}

func (a *communityAPI) forget(s *Session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.members[s]; ok {
		delete(a.members, s)
		a.republish()
		a.listenLocked()
	}
}

// republish marks the slice broadcasts iterate as stale. Called with a.mu
// held.
func (a *communityAPI) republish() { a.stale.Store(true) }

// sessions is every member socket, as a slice a broadcast iterates
// without holding a lock; a login that returned is in it.
func (a *communityAPI) sessions() []*memberSession {
	if !a.stale.Load() {
		return *a.everyone.Load()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stale.Load() {
		list := make([]*memberSession, 0, len(a.members))
		for _, ms := range a.members {
			list = append(list, ms)
		}
		a.everyone.Store(&list)
		a.stale.Store(false)
	}
	return *a.everyone.Load()
}

func (a *communityAPI) online() map[string]bool {
	on := map[string]bool{}
	for _, ms := range a.sessions() {
		on[ms.userID] = true
	}
	return on
}

type functionIn struct {
	Codec    *string         `json:"codec"`
	Name     *string         `json:"name"`
	Path     *string         `json:"path"`
	Function *string         `json:"function"`
	Payload  json.RawMessage `json:"payload"`
}

type functionOut struct {
	Codec   string `json:"codec"`
	Name    string `json:"name"`
	Path    string `json:"path"`
	Result  string `json:"result"`
	Payload any    `json:"payload"`
}

func (a *communityAPI) function(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	ms := s.State.(*memberSession)
	var in functionIn
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.Function == nil {
		return nil, fmt.Errorf("%w: function is required", ErrInvalidData)
	}
	if len(in.Payload) > 0 && string(in.Payload) != "null" && in.Payload[0] != '{' {
		return nil, fmt.Errorf("%w: payload must be an object", ErrInvalidData)
	}
	codec, name, path := deref(in.Codec), deref(in.Name), deref(in.Path)
	// The cached role, kept current by role_changed events, answers the
	// checks made before a payload is read; every privileged write reads the
	// member again inside its transaction, so a stale cache grants nothing.
	m := community.Member{UserID: ms.userID, Role: ms.role.Load().(community.Role)}
	if name == "" && path == "" && (codec == "" || codec == codecRoot) {
		return a.root(ctx, s, m, *in.Function, in.Payload)
	}
	ch, res, err := a.c.Call(ctx, m, path, name, codec, *in.Function, in.Payload, s)
	if err != nil || res == nil {
		return nil, err
	}
	ref := ch.Ref()
	return &Reply{Type: TypeFunction, LogMessage: "ran function",
		Data: functionOut{Codec: ref.Codec, Name: ref.Name, Path: ref.Path, Result: res.Result, Payload: res.Payload}}, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// onEvent turns a community event, committed on this node or another,
// into frames. It runs in the community's bus subscription, one event at a
// time (see community.Subscribe for the order), and must stay quick, since
// it delays the community's later events: the frame is encoded once and
// queued to every socket here without blocking.
func (a *communityAPI) onEvent(e community.Event) {
	everyone := a.sessions()
	switch {
	case e.TreeChanged:
		a.sendTrees(everyone)
	case e.Disconnect != "":
		a.known.Delete(e.Disconnect)
		if e.CloseCode == community.CloseKicked {
			// Removing the member removes the member key (PROTOCOL §3).
			a.id.forget(e.Disconnect)
		}
		for _, ms := range everyone {
			if ms.userID == e.Disconnect {
				ms.s.Close(e.CloseCode, closeReason(e.CloseCode))
			}
		}
		a.mu.Lock()
		call := a.calls[e.Disconnect]
		a.mu.Unlock()
		if call != nil {
			call.Close(e.CloseCode, closeReason(e.CloseCode))
		}
	case e.RoleChanged != "":
		for _, ms := range everyone {
			if ms.userID == e.RoleChanged {
				ms.role.Store(e.Role)
			}
		}
		a.broadcast(everyone, "", functionOut{Codec: codecRoot, Result: ResultRoleChanged,
			Payload: map[string]string{"user_id": e.RoleChanged, "role": string(e.Role)}})
		// With overrides, a new role may see another tree: the member's
		// sockets get theirs, after the role_changed.
		if a.c.Overridden() {
			a.sendTrees(sessionsOf(everyone, e.RoleChanged))
		}
	}
	if e.Channel == nil && e.Result != "" {
		a.broadcast(everyone, e.Except, functionOut{Codec: codecRoot, Result: e.Result, Payload: e.Payload})
	}
	if e.Channel != nil && e.Result != "" {
		to := everyone
		if e.Only != "" {
			to = sessionsOf(everyone, e.Only)
		}
		// Who may view the channel, from this node's tree, which is the
		// one its members were last sent: nothing about a channel reaches
		// a member whose tree does not have it.
		if viewers, private := a.c.Viewers(e.Channel); private {
			to = viewing(to, viewers)
		}
		a.broadcast(to, e.Except, functionOut{Codec: e.Channel.Codec, Name: e.Channel.Name, Path: e.Channel.Path,
			Result: e.Result, Payload: e.Payload})
		if e.Only == "" {
			timings.fanout.Observe(time.Since(e.Published).Seconds())
		}
	}
	if e.MuteCall != "" {
		a.mu.Lock()
		call := a.calls[e.MuteCall]
		a.mu.Unlock()
		if call != nil {
			if cs, ok := call.State.(*callSession); ok && cs.peer != nil {
				cs.peer.SetMuted(e.Muted)
			}
		}
	}
	if e.EndCall != "" {
		a.mu.Lock()
		call := a.calls[e.EndCall]
		a.mu.Unlock()
		if call != nil {
			call.Close(CloseNormal, "left the call")
		}
	}
}

// viewing is the sockets of all whose role is in viewers: a filter in
// memory, by the role each socket holds, with no read per recipient.
func viewing(all []*memberSession, viewers community.RoleSet) []*memberSession {
	out := make([]*memberSession, 0, len(all))
	for _, ms := range all {
		if viewers.Has(ms.role.Load().(community.Role)) {
			out = append(out, ms)
		}
	}
	return out
}

// sendTrees sends each of to its interactables_changed: the tree as its
// role sees it, one frame per distinct tree (one in all while no channel
// has an override, when every role's is the same).
func (a *communityAPI) sendTrees(to []*memberSession) {
	trees := map[community.Role]string{} // each role's tree, converted once
	byTree := map[string][]*memberSession{}
	for _, ms := range to {
		r := ms.role.Load().(community.Role)
		tree, ok := trees[r]
		if !ok {
			tree = string(a.c.TreeJSONAs(r))
			trees[r] = tree
		}
		byTree[tree] = append(byTree[tree], ms)
	}
	for tree, list := range byTree {
		a.broadcast(list, "", functionOut{Codec: codecRoot, Result: ResultInteractablesChanged,
			Payload: map[string]json.RawMessage{"interactables": json.RawMessage(tree)}})
	}
}

// sessionsOf is the sockets of one user.
func sessionsOf(all []*memberSession, userID string) []*memberSession {
	var out []*memberSession
	for _, ms := range all {
		if ms.userID == userID {
			out = append(out, ms)
		}
	}
	return out
}

func closeReason(code int) string {
	switch code {
	case CloseKicked:
		return "kicked"
	case CloseBanned:
		return "banned"
	}
	return ""
}

// broadcast queues one update frame to every session but except's.
func (a *communityAPI) broadcast(to []*memberSession, except string, data functionOut) {
	if len(to) == 0 {
		return
	}
	payload, err := EncodeFrame(TypeUpdate, newID(), LevelDebug, "update", data)
	if err != nil {
		a.log.Error("encode update", slog.String("result", data.Result), slog.Any("err", err))
		return
	}
	frame := textFrame(payload)
	for _, ms := range to {
		if ms.userID != except && ms.s.SendLater(frame) {
			a.asleep = append(a.asleep, ms.s)
		}
	}
	// A run ends when the bus has nothing more queued, which in a busy
	// room may be long after: waking the writers every runLimit events
	// keeps them writing beside the delivery, and keeps a healthy socket
	// from filling its send queue (and being closed as a slow reader) with
	// frames that wait only for the run to end.
	if a.heldEvents++; a.heldEvents >= a.runLimit {
		a.drained()
	}
}

// maxRun bounds how many events' frames wait for one wake. In a room
// whose fan-out falls behind, each wake's writes carry up to this many
// frames: 64 rather than 16 halved the p99 of the room of 1,000 at 1,000
// msg/s, at the same or up to a tenth less CPU per delivery
// (docs/BENCHMARKS.md, "Longer runs").
const maxRun = 64

// runLimit is maxRun, or a quarter of the send queue when that is less,
// so that frames waiting for a wake never fill a healthy socket's queue.
func runLimit(c SocketConfig) int {
	if c.SendQueue <= 0 {
		return maxRun
	}
	return max(1, min(maxRun, c.SendQueue/4))
}

// minWakePart is the fewest sockets worth a goroutine of their own when
// a run's wakes are split (wakeAll).
const minWakePart = 64

// wakeAll wakes ss in up to parts goroutines, this one among them, and
// returns when all are woken. A wake mostly writes the socket's frames
// (Session.Wake), so a run for a room of thousands is a thousand system
// calls: split, they use the cores that the writer goroutines they
// replace would have run on.
func wakeAll(ss []*Session, parts int) {
	var wg sync.WaitGroup
	if parts > 1 {
		size := (len(ss) + parts - 1) / parts
		for len(ss) > size {
			part := ss[:size]
			ss = ss[size:]
			wg.Go(func() {
				for _, s := range part {
					s.Wake()
				}
			})
		}
	}
	for _, s := range ss {
		s.Wake()
	}
	wg.Wait()
}

// drained ends a run of events: each socket that got frames in it wakes
// once, and writes them in one call, where waking it for every event had
// it write each alone while the next was being queued.
func (a *communityAPI) drained() {
	wakeAll(a.asleep, min(runtime.GOMAXPROCS(0), len(a.asleep)/minWakePart))
	clear(a.asleep)
	a.asleep, a.heldEvents = a.asleep[:0], 0
}
