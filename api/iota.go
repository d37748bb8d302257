package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	icrypto "github.com/iotad/iotad/crypto"
	iotasvc "github.com/iotad/iotad/iota"
)

// iotaAPI serves /ws/iota: login, the sealed community list, settings.
type iotaAPI struct {
	store  *iotasvc.Store
	logins *loginLimiter
	id     *identity
	log    *slog.Logger

	mu      sync.Mutex
	devices map[string]map[*Session]struct{}
}

func newIotaAPI(store *iotasvc.Store, logins *loginLimiter, id *identity, log *slog.Logger) *iotaAPI {
	return &iotaAPI{store: store, logins: logins, id: id, log: log, devices: map[string]map[*Session]struct{}{}}
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
	return startChallenge(s, a.id, version, uid.Text, user.PublicKey, true, func(ctx context.Context, s *Session, _ string) (*Reply, error) {
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
	a.mu.Lock()
	others := a.devices[s.UserID]
	delete(a.devices, s.UserID)
	a.mu.Unlock()
	for o := range others {
		if o != s {
			o.Close(CloseNormal, "account deleted")
		}
	}
	s.closeAfterReply = CloseNormal
	return &Reply{Type: TypeDeleteUser, Data: struct{}{}}, nil
}

func (a *iotaAPI) remember(s *Session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	set := a.devices[s.UserID]
	if set == nil {
		set = map[*Session]struct{}{}
		a.devices[s.UserID] = set
	}
	set[s] = struct{}{}
}

func (a *iotaAPI) forget(s *Session) {
	if !s.LoggedIn() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if set := a.devices[s.UserID]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(a.devices, s.UserID)
		}
	}
}

// notifyOthers tells the user's other devices that something changed.
func (a *iotaAPI) notifyOthers(from *Session, result string, version int64) {
	a.mu.Lock()
	var targets []*Session
	for o := range a.devices[from.UserID] {
		if o != from {
			targets = append(targets, o)
		}
	}
	a.mu.Unlock()
	if len(targets) == 0 {
		return
	}
	frame, err := EncodeFrame(TypeUpdate, newID(), LevelDebug, "Iota update",
		map[string]any{"result": result, "version": version})
	if err != nil {
		a.log.Error("encode update", slog.Any("err", err))
		return
	}
	f := textFrame(frame)
	for _, o := range targets {
		o.Send(f)
	}
}
