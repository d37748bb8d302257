package api

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/iotad/iotad/community"
)

// callSession is what a call socket knows: its channel.
type callSession struct {
	ch *community.Channel
}

func (a *communityAPI) callsEndpoint() *Endpoint {
	ep := NewEndpoint("calls")
	ep.HandlePublic(TypePing, handlePing)
	ep.HandlePublic(TypeIdentification, a.callIdentification)
	ep.OnClose = a.callClosed
	return ep
}

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
	s.State = &callSession{ch: ch}
	s.SetLoggedIn(userID)
	a.mu.Lock()
	old := a.calls[userID]
	a.calls[userID] = s
	a.mu.Unlock()
	if old != nil {
		old.Close(CloseNormal, "joined from another socket")
	}
	a.c.EnterCall(ch, userID)
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
	a.mu.Lock()
	current := a.calls[s.UserID] == s
	if current {
		delete(a.calls, s.UserID)
	}
	a.mu.Unlock()
	if current {
		a.c.LeaveCall(cs.ch, s.UserID)
	}
}
