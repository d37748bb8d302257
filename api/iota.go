package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/bus"
	iotasvc "github.com/iotad/iotad/iota"
)

// iotaAPI serves /ws/iota: login, the sealed community list, settings.
type iotaAPI struct {
	store  *iotasvc.Store
	logins *loginLimiter
	id     *identity
	log    *slog.Logger

	// bus carries device sync between the nodes serving this Iota: each
	// user with a device here is subscribed to iotaSubject(user).
	bus bus.Bus

	mu      sync.Mutex
	devices map[string]*userDevices
}

// userDevices are one user's Iota sockets on this node and the
// subscription that tells them of changes made through other sockets.
type userDevices struct {
	sessions map[*Session]struct{}
	sub      bus.Subscription
}

func newIotaAPI(store *iotasvc.Store, logins *loginLimiter, id *identity, log *slog.Logger, b bus.Bus) *iotaAPI {
	return &iotaAPI{store: store, logins: logins, id: id, log: log, bus: b, devices: map[string]*userDevices{}}
}

func iotaSubject(userID string) string { return "iotad.iota." + userID }

// iotaChange is an Iota live-sync event: result and version of a change
// to one user's lists. from is the socket that made it (this node only),
// which is not told.
type iotaChange struct {
	Result  string `json:"result,omitempty"`
	Version int64  `json:"version,omitempty"`
	// Deleted closes the devices instead: the account is gone.
	Deleted bool `json:"deleted,omitempty"`
	from    *Session
}

// Encode implements bus.Message.
func (c *iotaChange) Encode() ([]byte, error) { return json.Marshal(c) }

func decodeIotaChange(data []byte) (bus.Message, error) {
	var c iotaChange
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("api: decode an Iota change: %w", err)
	}
	return &c, nil
}

func (a *iotaAPI) endpoint() *Endpoint {
	ep := NewEndpoint("iota")
	ep.HandlePublic(TypePing, handlePing)
	ep.HandlePublic(TypeIdentification, a.identification)
	ep.HandlePublic(TypeChallengeResponse, handleChallengeResponse)
	ep.HandlePublic(TypeRegister, a.register)
	ep.Handle(TypeAddCommunity, a.addCommunity)
	ep.Handle(TypeGetCommunities, a.getCommunities)
	ep.Handle(TypeGetCommunity, a.getCommunities)
	ep.Handle(TypeRemoveCommunity, a.removeCommunity)
	ep.Handle(TypeSettingsSave, a.settingsSave)
	ep.Handle(TypeSettingsLoad, a.settingsLoad)
	ep.Handle(TypeSettingsList, a.settingsList)
	ep.Handle(TypeDeleteUser, a.deleteUser)
	ep.OnClose = a.forget
	return ep
}

func handlePing(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	var in struct {
		LastPing json.RawMessage `json:"last_ping"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.LastPing == nil {
		in.LastPing = json.RawMessage("null")
	}
	return &Reply{Type: TypePong, Data: map[string]json.RawMessage{"last_ping": in.LastPing}}, nil
}

func (a *iotaAPI) identification(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	if err := checkIdentification(s, a.logins); err != nil {
		return nil, err
	}
	var in struct {
		UserID       *userID         `json:"user_id"`
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
	user, err := a.store.User(ctx, in.UserID.Text)
	if err != nil {
		return nil, err
	}
	uid := *in.UserID
	return startChallenge(s, a.id, version, uid.Text, user.PublicKey, nil, func(ctx context.Context, s *Session, _ string) (*Reply, error) {
		// The account may have been deleted while the challenge was open.
		now, err := a.store.User(ctx, user.ID)
		if err != nil {
			return nil, err
		}
		if now.PublicKey != user.PublicKey {
			return nil, fmt.Errorf("%w: the account's key changed during the login", ErrInvalidUserID)
		}
		if err := s.SetLoggedIn(user.ID); err != nil {
			return nil, err
		}
		a.remember(s)
		s.log(slog.LevelInfo, "iota login", slog.String("user", user.ID))
		return &Reply{Type: TypeIdentificationResponse, LogMessage: "Challenge solved you are logged in",
			Data: map[string]any{"accepted": true, "user_id": uid}}, nil
	})
}

func (a *iotaAPI) register(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	if !a.logins.allow(s.Remote) {
		return nil, fmt.Errorf("%w: too many registrations from this address", ErrRateLimited)
	}
	var in struct {
		PublicKey *string `json:"public_key"`
		Token     *string `json:"token"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.PublicKey == nil || in.Token == nil {
		return nil, fmt.Errorf("%w: public_key and token are required", ErrInvalidData)
	}
	pub, err := icrypto.ParsePublicKey(*in.PublicKey)
	if err != nil {
		return nil, err
	}
	user, err := a.store.Register(ctx, pub, *in.Token)
	if err != nil {
		return nil, err
	}
	s.log(slog.LevelInfo, "user registered", slog.String("user", user.ID))
	return &Reply{Type: TypeRegisterResponse, Data: map[string]string{"user_id": user.ID}}, nil
}

type entryWire struct {
	EntryID          string `json:"entry_id"`
	CommunityAddress string `json:"community_address"`
	CommunityTitle   string `json:"community_title"`
	Position         string `json:"position"`
}

func (a *iotaAPI) addCommunity(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	var in struct {
		EntryID          *string `json:"entry_id"`
		CommunityAddress *string `json:"community_address"`
		CommunityTitle   *string `json:"community_title"`
		Position         *string `json:"position"`
		ExpectedVersion  *int64  `json:"expected_version"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.CommunityAddress == nil || in.CommunityTitle == nil || in.Position == nil {
		return nil, fmt.Errorf("%w: community_address, community_title and position are required", ErrInvalidData)
	}
	if err := checkVersion(in.ExpectedVersion); err != nil {
		return nil, err
	}
	e := iotasvc.Entry{Address: *in.CommunityAddress, Title: *in.CommunityTitle, Position: *in.Position}
	if in.EntryID != nil {
		if *in.EntryID == "" {
			return nil, fmt.Errorf("%w: entry_id must not be empty", ErrInvalidData)
		}
		e.ID = *in.EntryID
	}
	id, version, err := a.store.AddEntry(ctx, s.UserID, e, in.ExpectedVersion)
	if err != nil {
		return nil, err
	}
	a.notifyOthers(s, ResultCommunitiesChanged, version)
	return &Reply{Type: TypeAddCommunity, LogMessage: "Client added Community",
		Data: map[string]any{"entry_id": id, "version": version}}, nil
}

func (a *iotaAPI) getCommunities(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	entries, version, err := a.store.Entries(ctx, s.UserID)
	if err != nil {
		return nil, err
	}
	out := make([]entryWire, len(entries))
	for i, e := range entries {
		out[i] = entryWire{EntryID: e.ID, CommunityAddress: e.Address, CommunityTitle: e.Title, Position: e.Position}
	}
	return &Reply{Type: TypeGetCommunities, LogMessage: "User Communities",
		Data: map[string]any{"communities": out, "version": version}}, nil
}

func (a *iotaAPI) removeCommunity(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	var in struct {
		EntryID          *string `json:"entry_id"`
		CommunityAddress *string `json:"community_address"`
		ExpectedVersion  *int64  `json:"expected_version"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if err := checkVersion(in.ExpectedVersion); err != nil {
		return nil, err
	}
	var id, address string
	switch {
	case in.EntryID != nil && *in.EntryID != "":
		id = *in.EntryID
	case in.CommunityAddress != nil && *in.CommunityAddress != "":
		address = *in.CommunityAddress
	default:
		return nil, fmt.Errorf("%w: entry_id or community_address is required", ErrInvalidData)
	}
	version, err := a.store.RemoveEntry(ctx, s.UserID, id, address, in.ExpectedVersion)
	if err != nil {
		return nil, err
	}
	a.notifyOthers(s, ResultCommunitiesChanged, version)
	return &Reply{Type: TypeRemoveCommunity, Data: map[string]any{"version": version}}, nil
}

func (a *iotaAPI) settingsSave(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	var in struct {
		SettingsName    *string         `json:"settings_name"`
		Payload         json.RawMessage `json:"payload"`
		ExpectedVersion *int64          `json:"expected_version"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.SettingsName == nil {
		return nil, fmt.Errorf("%w: settings_name is required", ErrInvalidData)
	}
	if err := checkVersion(in.ExpectedVersion); err != nil {
		return nil, err
	}
	var payload string
	switch {
	case len(in.Payload) == 0:
		return nil, fmt.Errorf("%w: payload is required", ErrInvalidData)
	case in.Payload[0] == '"':
		if err := json.Unmarshal(in.Payload, &payload); err != nil {
			return nil, fmt.Errorf("%w: payload: %v", ErrInvalidData, err)
		}
	case in.Payload[0] == '{':
		// Tensamin's web client sends an object; keep its JSON text as is.
		payload = string(in.Payload)
	default:
		return nil, fmt.Errorf("%w: payload must be a string or an object", ErrInvalidData)
	}
	version, err := a.store.SaveSetting(ctx, s.UserID, *in.SettingsName, payload, in.ExpectedVersion)
	if err != nil {
		return nil, err
	}
	a.notifyOthers(s, ResultSettingsChanged, version)
	return &Reply{Type: TypeSettingsSave, Data: map[string]any{"settings_name": *in.SettingsName, "version": version}}, nil
}

func (a *iotaAPI) settingsLoad(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	var in struct {
		SettingsName *string `json:"settings_name"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.SettingsName == nil {
		return nil, fmt.Errorf("%w: settings_name is required", ErrInvalidData)
	}
	payload, err := a.store.LoadSetting(ctx, s.UserID, *in.SettingsName)
	if err != nil {
		return nil, err
	}
	return &Reply{Type: TypeSettingsLoad, Data: map[string]string{"settings_name": *in.SettingsName, "payload": payload}}, nil
}

func (a *iotaAPI) settingsList(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	names, err := a.store.SettingNames(ctx, s.UserID)
	if err != nil {
		return nil, err
	}
	return &Reply{Type: TypeSettingsList, Data: map[string]any{"settings": names}}, nil
}

func (a *iotaAPI) deleteUser(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	if err := a.store.DeleteUser(ctx, s.UserID); err != nil && !errors.Is(err, iotasvc.ErrUnknownUser) {
		return nil, err
	}
	s.log(slog.LevelInfo, "user deleted their account", slog.String("user", s.UserID))
	// The account is gone, so are the other devices' sessions.
	a.accountDeleted(s.UserID, s)
	s.closeAfterReply = CloseNormal
	return &Reply{Type: TypeDeleteUser, Data: struct{}{}}, nil
}

func (a *iotaAPI) remember(s *Session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.devices[s.UserID]
	if d == nil {
		d = &userDevices{sessions: map[*Session]struct{}{}}
		a.devices[s.UserID] = d
		userID := s.UserID
		sub, err := a.bus.Subscribe(iotaSubject(userID), decodeIotaChange, func(m bus.Message) {
			if m != bus.Drained {
				a.deliver(userID, m.(*iotaChange))
			}
		})
		if err != nil {
			// The device still works; it misses live updates until it
			// logs in again, and the log says why.
			a.log.Error("subscribe to Iota changes", slog.String("user", userID), slog.Any("err", err))
		}
		d.sub = sub
	}
	d.sessions[s] = struct{}{}
}

func (a *iotaAPI) forget(s *Session) {
	if !s.LoggedIn() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if d := a.devices[s.UserID]; d != nil {
		delete(d.sessions, s)
		if len(d.sessions) == 0 {
			delete(a.devices, s.UserID)
			if d.sub != nil {
				d.sub.Unsubscribe()
			}
		}
	}
}

// notifyOthers tells the user's other devices, on this node and any other,
// that something changed.
func (a *iotaAPI) notifyOthers(from *Session, result string, version int64) {
	if err := a.bus.Publish(iotaSubject(from.UserID), &iotaChange{Result: result, Version: version, from: from}); err != nil {
		a.log.Warn("publish an Iota change", slog.String("user", from.UserID), slog.Any("err", err))
	}
}

// accountDeleted closes the user's Iota sockets on every node but from's.
func (a *iotaAPI) accountDeleted(userID string, from *Session) {
	if err := a.bus.Publish(iotaSubject(userID), &iotaChange{Deleted: true, from: from}); err != nil {
		a.log.Warn("publish an account deletion", slog.String("user", userID), slog.Any("err", err))
	}
}

// deliver sends a change to the user's devices here but the one that made
// it; the frame is encoded once.
func (a *iotaAPI) deliver(userID string, c *iotaChange) {
	a.mu.Lock()
	var targets []*Session
	if d := a.devices[userID]; d != nil {
		for o := range d.sessions {
			if o != c.from {
				targets = append(targets, o)
			}
		}
	}
	a.mu.Unlock()
	if len(targets) == 0 {
		return
	}
	if c.Deleted {
		for _, o := range targets {
			o.Close(CloseNormal, "account deleted")
		}
		return
	}
	frame, err := EncodeFrame(TypeUpdate, newID(), LevelDebug, "Iota update",
		map[string]any{"result": c.Result, "version": c.Version})
	if err != nil {
		a.log.Error("encode update", slog.Any("err", err))
		return
	}
	f := textFrame(frame)
	for _, o := range targets {
		o.Send(f)
	}
}
