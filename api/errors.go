package api

import (
	"errors"
	"strings"

	"github.com/iotad/iotad/community"
	icrypto "github.com/iotad/iotad/crypto"
	iotasvc "github.com/iotad/iotad/iota"
)

// Errors the api layer itself raises. Domain packages have their own; all of
// them meet in wireError, the one place that picks a wire error type.
var (
	ErrProtocol         = errors.New("protocol error")
	ErrInvalidData      = errors.New("invalid data")
	ErrNotAuthenticated = errors.New("not logged in")
	ErrInvalidChallenge = errors.New("invalid challenge")
	ErrInvalidUserID    = errors.New("unknown user")
	ErrRateLimited      = errors.New("too many requests")
	ErrNotFound         = errors.New("not found")
	ErrPermission       = errors.New("not allowed")
	ErrInvalidSecret    = errors.New("invalid secret")
	ErrInvalidCallID    = errors.New("invalid call ticket")
	ErrNoCallID         = errors.New("not in a call")
)

// errorTypes is consulted in order; the first sentinel that matches wins.
var errorTypes = []struct {
	err error
	typ string
}{
	{ErrProtocol, ErrTypeProtocol},
	{ErrInvalidData, ErrTypeInvalidData},
	{ErrNotAuthenticated, ErrTypeNotAuthenticated},
	{ErrInvalidChallenge, ErrTypeInvalidChallenge},
	{ErrInvalidUserID, ErrTypeInvalidUserID},
	{ErrRateLimited, ErrTypeRateLimited},
	{ErrNotFound, ErrTypeNotFound},
	{ErrPermission, ErrTypePermission},
	{ErrInvalidSecret, ErrTypeInvalidSecret},
	{ErrInvalidCallID, ErrTypeInvalidCallID},
	{ErrNoCallID, ErrTypeNoCallID},

	{icrypto.ErrMalformedKey, ErrTypeInvalidPublicKey},
	{icrypto.ErrLowOrder, ErrTypeInvalidPublicKey},

	{iotasvc.ErrUnknownUser, ErrTypeInvalidUserID},
	{iotasvc.ErrNotFound, ErrTypeNotFound},
	{iotasvc.ErrConflict, ErrTypeConflict},
	{iotasvc.ErrInvalidData, ErrTypeInvalidData},
	{iotasvc.ErrBadToken, ErrTypeInvalidSecret},

	{community.ErrNotFound, ErrTypeNotFound},
	{community.ErrInvalidData, ErrTypeInvalidData},
	{community.ErrConflict, ErrTypeConflict},
	{community.ErrPermission, ErrTypePermission},
	{community.ErrNotMember, ErrTypeInvalidUserID},
	{community.ErrKeyMismatch, ErrTypeInvalidUserID},
	{community.ErrBanned, ErrTypePermission},
	{community.ErrBadInvite, ErrTypeInvalidSecret},
	{community.ErrNotInCall, ErrTypeNoCallID},
	{community.ErrBadCallTicket, ErrTypeInvalidCallID},
	{community.ErrRateLimited, ErrTypeRateLimited},
}

// errorData is the data object of an error reply.
type errorData struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
	// Version is the list's current version on error_conflict.
	Version *int64 `json:"version,omitempty"`
	// RetryAfter is the wait in ms on a slow mode's error_rate_limited.
	RetryAfter *int64 `json:"retry_after,omitempty"`
}

// wireError picks the wire error type for err and the words a person sees.
// Errors it does not know are internal: the client learns nothing of them.
func wireError(err error) (typ string, data errorData) {
	typ = ErrTypeInternal
	for _, e := range errorTypes {
		if errors.Is(err, e.err) {
			typ = e.typ
			break
		}
	}
	detail := "internal error"
	if typ != ErrTypeInternal {
		detail = err.Error()
	}
	data = errorData{Error: strings.TrimPrefix(typ, "error_"), Detail: detail}
	if typ == ErrTypeGeneric {
		data.Error = "error"
	}
	var wait *community.WaitError
	if errors.As(err, &wait) {
		ms := max(wait.RetryAfter.Milliseconds(), 1)
		data.RetryAfter = &ms
	}
	var conflict *iotasvc.ConflictError
	if errors.As(err, &conflict) {
		v := conflict.Current
		data.Version = &v
	}
	return typ, data
}
