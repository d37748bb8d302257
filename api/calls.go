package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pion/webrtc/v4"

	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/community/voice"
)

// callSession is what a call socket knows: its channel, the caller's role
// and their peer in the SFU.
type callSession struct {
	ch   *community.Channel
	role community.Role
	peer *voice.Peer
}

func (a *communityAPI) callsEndpoint() *Endpoint {
	ep := NewEndpoint("calls")
	ep.HandlePublic(TypePing, handlePing)
	ep.HandlePublic(TypeIdentification, a.callIdentification)
	ep.Handle(TypeWebRTCSDP, a.webrtcSDP)
	ep.Handle(TypeWebRTCICE, a.webrtcICE)
	ep.Handle(TypeStartStream, a.startStream)
	ep.Handle(TypeEndStream, a.endStream)
	ep.Handle(TypeWatchStream, a.watchStream)
	ep.OnClose = a.callClosed
	return ep
}

// callSignal carries the SFU's messages to one call socket.
type callSignal struct {
	a      *communityAPI
	s      *Session
	ch     *community.Channel
	userID string
}

func (cs callSignal) SDP(typ, sdp string) {
	cs.s.SendMessage(TypeWebRTCSDP, "", LevelDebug, "session description", map[string]string{"type": typ, "sdp": sdp})
}

func (cs callSignal) ICE(c webrtc.ICECandidateInit) {
	cs.s.SendMessage(TypeWebRTCICE, "", LevelDebug, "ICE candidate", map[string]any{"candidate": c})
}

func (cs callSignal) End(reason string) { cs.s.Close(CloseNormal, reason) }

func (cs callSignal) Speaking(speaking bool) { cs.a.c.SetSpeaking(cs.ch, cs.userID, speaking) }

// callIdentification logs a call socket in with a ticket from the voice
// channel's join; from then on the user is in the channel.
func (a *communityAPI) callIdentification(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	if s.LoggedIn() {
		return nil, fmt.Errorf("%w: this socket is already in a call", ErrProtocol)
	}
	var in struct {
		Path   *string `json:"path"`
		Name   *string `json:"name"`
		Ticket *string `json:"ticket"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.Name == nil || in.Ticket == nil {
		return nil, fmt.Errorf("%w: name and ticket are required", ErrInvalidData)
	}
	ch, userID, err := a.c.RedeemTicket(deref(in.Path), *in.Name, *in.Ticket)
	if err != nil {
		return nil, err
	}
	m, err := a.c.Member(ctx, userID)
	if err != nil || m.Banned {
		return nil, fmt.Errorf("%w: the ticket's user is no longer a member", community.ErrBadCallTicket)
	}
	if !a.c.MayConnect(ch, m.Role) {
		// An override changed since the join that gave the ticket.
		return nil, fmt.Errorf("%w: the ticket's user may no longer connect to this channel", community.ErrBadCallTicket)
	}
	// A ticket from before a timeout does not let its user speak during it.
	if m.TimedOut(a.c.Now()) {
		return nil, fmt.Errorf("%w: you are timed out", community.ErrPermission)
	}
	state := &callSession{ch: ch, role: m.Role}
	if a.sfu != nil {
		if state.peer, err = a.sfu.Join(a.c.CallID(ch), userID, callSignal{a: a, s: s, ch: ch, userID: userID}); err != nil {
			return nil, err
		}
	}
	s.State = state
	if err := s.SetLoggedIn(userID); err != nil {
		s.closeAfterReply = ClosePolicy // OnClose then takes the peer out of the SFU
		return nil, err
	}
	a.mu.Lock()
	old := a.calls[userID]
	a.calls[userID] = s
	a.listenLocked()
	a.mu.Unlock()
	if old != nil {
		old.Close(CloseNormal, "joined from another socket")
	}
	a.c.EnterCall(ch, userID)
	// A timeout committed since the read above ended the calls it saw,
	// which may not have held this one yet: read again, now that it does.
	if m, err := a.c.Member(ctx, userID); err != nil || m.TimedOut(a.c.Now()) {
		a.c.LeaveCall(ch, userID)
		return nil, fmt.Errorf("%w: you are timed out", community.ErrPermission)
	}
	a.log.Info("call joined", slog.String("user", userID), slog.String("call", a.c.CallID(ch)))
	return &Reply{Type: TypeIdentificationResponse, LogMessage: "in the call", Data: map[string]any{
		"accepted": true, "call_id": a.c.CallID(ch), "peers": a.c.Peers(ch),
	}}, nil
}

// callClosed takes the user out of the call, unless a newer call socket of
// theirs has taken this one's place.
func (a *communityAPI) callClosed(s *Session) {
	cs, ok := s.State.(*callSession)
	if !ok {
		return
	}
	if cs.peer != nil {
		cs.peer.Close()
	}
	a.mu.Lock()
	current := a.calls[s.UserID] == s
	if current {
		delete(a.calls, s.UserID)
		a.listenLocked()
	}
	a.mu.Unlock()
	if current {
		a.c.LeaveCall(cs.ch, s.UserID)
	}
}

func callPeer(s *Session) (*callSession, error) {
	cs := s.State.(*callSession)
	if cs.peer == nil {
		return nil, fmt.Errorf("%w: this server relays no media", ErrNoCallID)
	}
	return cs, nil
}

// voiceError maps the SFU's errors to the wire's.
func voiceError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, voice.ErrClosed):
		return fmt.Errorf("%w: %v", ErrNoCallID, err)
	case errors.Is(err, voice.ErrNoStream):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case errors.Is(err, voice.ErrBadSDP), errors.Is(err, voice.ErrNoAudio), errors.Is(err, voice.ErrNoOffer),
		errors.Is(err, voice.ErrTooManyICE), errors.Is(err, voice.ErrBadCandidate):
		return fmt.Errorf("%w: %v", ErrInvalidData, err)
	}
	return err
}

// webrtcSDP takes the client's offer or answer. An offer's reply is the
// server's answer (webrtc_sdp with the request's id); an answer gets no
// reply. The server's own offers are webrtc_sdp pushes without an id.
func (a *communityAPI) webrtcSDP(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	cs, err := callPeer(s)
	if err != nil {
		return nil, err
	}
	var in struct {
		SDP  *string `json:"sdp"`
		Type *string `json:"type"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.SDP == nil || in.Type == nil {
		return nil, fmt.Errorf("%w: sdp and type are required", ErrInvalidData)
	}
	answer, err := cs.peer.HandleSDP(*in.Type, *in.SDP)
	if err != nil {
		return nil, voiceError(err)
	}
	if answer != "" {
		// Sent here rather than returned, so that it goes out (with the
		// id, or as a push when the offer had none) before the offers
		// Settle may make.
		s.SendMessage(TypeWebRTCSDP, req.ID, LevelDebug, "session description", map[string]string{"type": "answer", "sdp": answer})
	}
	cs.peer.Settle()
	return nil, nil
}

func (a *communityAPI) webrtcICE(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	cs, err := callPeer(s)
	if err != nil {
		return nil, err
	}
	var in struct {
		Candidate *webrtc.ICECandidateInit `json:"candidate"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.Candidate == nil {
		return nil, fmt.Errorf("%w: candidate is required", ErrInvalidData)
	}
	return nil, voiceError(cs.peer.AddICE(*in.Candidate))
}

func (a *communityAPI) startStream(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	return a.setStreaming(s, true)
}

func (a *communityAPI) endStream(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	return a.setStreaming(s, false)
}

func (a *communityAPI) setStreaming(s *Session, on bool) (*Reply, error) {
	cs := s.State.(*callSession)
	if on && !a.c.Permissions().Allows(cs.role, community.PermStream) {
		return nil, fmt.Errorf("%w: sharing a screen needs a higher role", ErrPermission)
	}
	u, err := a.c.SetStreaming(cs.ch, s.UserID, on)
	if err != nil {
		return nil, err
	}
	typ := TypeEndStream
	if on {
		typ = TypeStartStream
	}
	return &Reply{Type: typ, Data: u}, nil
}

func (a *communityAPI) watchStream(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	cs, err := callPeer(s)
	if err != nil {
		return nil, err
	}
	var in struct {
		UserID *string `json:"user_id"`
		Watch  *bool   `json:"watch"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.UserID == nil {
		return nil, fmt.Errorf("%w: user_id is required", ErrInvalidData)
	}
	on := in.Watch == nil || *in.Watch
	if err := voiceError(cs.peer.Watch(*in.UserID, on)); err != nil {
		return nil, err
	}
	return &Reply{Type: TypeWatchStream, Data: map[string]any{"user_id": *in.UserID, "watch": on}}, nil
}
