package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	icrypto "github.com/iotad/iotad/crypto"
)

// ChallengeTTL is how long a challenge may be answered (PROTOCOL §4).
const ChallengeTTL = 30 * time.Second

// PendingLogin is a challenge waiting for its answer on one socket.
type PendingLogin struct {
	answer  string
	expires time.Time
	// started is when the identification came, for iotad_login_seconds
	// (the wall clock: s.now may be a test's).
	started  time.Time
	complete func(ctx context.Context, s *Session, answer string) (*Reply, error)
}

type challengeData struct {
	Challenge string `json:"challenge"`
	PublicKey string `json:"public_key"`
	// ServerKey is S_pub; a client opens with the key it pinned, never
	// with this one, which is there for trust on first use and for errors.
	ServerKey    string `json:"server_key,omitempty"`
	LoginVersion int    `json:"login_version"`
}

// Login versions of PROTOCOL §3.
const (
	loginV1 = 1 // the Tensamin construction: open to relaying
	loginV2 = 2 // bound to the pinned server key and the socket's role
)

// identity is a server's static X448 identity for version-2 logins (a
// community's key, or the Iota key), with X448(S, U) cached per user: it
// depends on no per-login value, so a returning user costs one X448 on
// the server (the ephemeral one) besides the key generation.
type identity struct {
	role   icrypto.LoginRole
	pub    icrypto.PublicKey
	x448   func(icrypto.PublicKey) ([icrypto.KeySize]byte, error)
	legacy bool // version 1 allowed: --legacy-login

	shared sync.Map // user id → cachedShared
}

type cachedShared struct {
	pub    icrypto.PublicKey
	shared [icrypto.KeySize]byte
	// member is the member key derived from shared, so that a returning
	// member's proof costs no HKDF either.
	member [32]byte
}

func newIdentity(role icrypto.LoginRole, pub icrypto.PublicKey, x448 func(icrypto.PublicKey) ([icrypto.KeySize]byte, error), legacy bool) *identity {
	return &identity{role: role, pub: pub, x448: x448, legacy: legacy}
}

// cached is X448(S, pub) and the member key, cached by user id and checked
// against the key they were computed for, so a user whose key changed gets
// fresh ones.
func (id *identity) cached(userID string, pub icrypto.PublicKey) (cachedShared, error) {
	if v, ok := id.shared.Load(userID); ok {
		if c := v.(cachedShared); c.pub == pub {
			return c, nil
		}
	}
	sh, err := id.x448(pub)
	if err != nil {
		return cachedShared{}, err
	}
	c := cachedShared{pub: pub, shared: sh, member: icrypto.MemberKeyFromShared(sh)}
	id.shared.Store(userID, c)
	return c, nil
}

// staticShared is X448(S, pub) from the cache.
func (id *identity) staticShared(userID string, pub icrypto.PublicKey) ([icrypto.KeySize]byte, error) {
	c, err := id.cached(userID, pub)
	return c.shared, err
}

// memberKey is the member key of PROTOCOL §3 from the cache.
func (id *identity) memberKey(userID string, pub icrypto.PublicKey) ([32]byte, error) {
	c, err := id.cached(userID, pub)
	return c.member, err
}

// sharedWith is X448(S, pub) for a key that is not yet anyone's (a first
// visit): it is not cached, so that identifications with made-up user ids
// cannot fill the cache, until the visitor has joined (adopt).
func (id *identity) sharedWith(pub icrypto.PublicKey) ([icrypto.KeySize]byte, error) {
	return id.x448(pub)
}

// adopt caches a first visit's X448(S, pub) once its user has joined, so
// that the member key of the login it completes, and their later logins,
// need no X448 of their own: a join did two where one is enough.
func (id *identity) adopt(userID string, pub icrypto.PublicKey, shared [icrypto.KeySize]byte) {
	id.shared.Store(userID, cachedShared{pub: pub, shared: shared, member: icrypto.MemberKeyFromShared(shared)})
}

// forget drops a user's cached secret: the member is gone.
func (id *identity) forget(userID string) { id.shared.Delete(userID) }

// loginVersion reads identification's login_version: absent or 2 is
// version 2; 1 only when the operator allowed it; any other number is a
// version this server does not speak.
func (id *identity) loginVersion(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return loginV2, nil
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("%w: login_version must be an integer", ErrInvalidData)
	}
	switch {
	case v == loginV2:
		return loginV2, nil
	case v == loginV1 && id.legacy:
		return loginV1, nil
	case v == loginV1:
		return 0, fmt.Errorf("%w: login version 1 is open to relaying and is off on this server", ErrProtocol)
	}
	return 0, fmt.Errorf("%w: login version %d is not supported", ErrProtocol, v)
}

// errUnsealable refuses a key no challenge can be sealed to (X448 of it
// fails: a low-order point).
var errUnsealable = fmt.Errorf("%w: cannot seal a challenge to this key", icrypto.ErrLowOrder)

// startChallenge seals a fresh challenge to pub under a fresh ephemeral key
// (the nonce is fixed per key pair, so reusing one would reuse the nonce)
// and remembers what completes the login. userID is the AAD of version 2,
// as the client sent it. firstVisit is X448(S, pub) for a key that is no
// one's yet (sharedWith); nil says pub is the stored key of that user, so
// X448(S, pub) comes from the cache. A second identification replaces the
// pending challenge.
func startChallenge(s *Session, id *identity, version int, userID string, pub icrypto.PublicKey, firstVisit *[icrypto.KeySize]byte, complete func(ctx context.Context, s *Session, answer string) (*Reply, error)) (*Reply, error) {
	ephPub, ephPriv, err := icrypto.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("api: challenge key: %w", err)
	}
	text, err := icrypto.NewChallengeText(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("api: challenge text: %w", err)
	}
	out := challengeData{PublicKey: ephPub.String(), LoginVersion: version}
	if version == loginV1 {
		out.Challenge, err = icrypto.SealChallenge(ephPriv, pub, []byte(text))
	} else {
		var static [icrypto.KeySize]byte
		if firstVisit != nil {
			static = *firstVisit
		} else {
			static, err = id.staticShared(userID, pub)
		}
		if err == nil {
			l := icrypto.LoginV2{Role: id.role, UserID: userID, Ephemeral: ephPub, Server: id.pub}
			out.Challenge, err = icrypto.SealChallengeV2(ephPriv, static, pub, l, []byte(text))
			out.ServerKey = id.pub.String()
		}
	}
	if err != nil {
		return nil, errUnsealable
	}
	s.Login = &PendingLogin{answer: text, expires: s.now().Add(ChallengeTTL), started: time.Now(), complete: complete}
	return &Reply{Type: TypeChallenge, LogMessage: "Solve this challenge to log in", Data: out}, nil
}

// handleChallengeResponse is shared by every socket with a challenge login.
func handleChallengeResponse(ctx context.Context, s *Session, req *Request) (*Reply, error) {
	var in struct {
		Challenge *string `json:"challenge"`
	}
	if err := decodeData(req, &in); err != nil {
		return nil, err
	}
	if in.Challenge == nil {
		return nil, fmt.Errorf("%w: challenge is required", ErrInvalidData)
	}
	p := s.Login
	s.Login = nil
	if p == nil {
		return nil, fmt.Errorf("%w: no challenge is pending", ErrInvalidChallenge)
	}
	if s.now().After(p.expires) {
		return nil, fmt.Errorf("%w: the challenge expired", ErrInvalidChallenge)
	}
	if !icrypto.AnswerEqual(*in.Challenge, p.answer) {
		s.closeAfterReply = ClosePolicy
		return nil, fmt.Errorf("%w: wrong answer", ErrInvalidChallenge)
	}
	reply, err := p.complete(ctx, s, p.answer)
	if err == nil {
		observeLogin(s.ep.Name, p.started)
	}
	return reply, err
}

// userID is a user id as a client sent it: a string, or (Tensamin clients)
// a JSON number, kept as its literal text and echoed in the form received.
type userID struct {
	Text string
	Raw  json.RawMessage
}

func (u *userID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return fmt.Errorf("%w: user_id is empty", ErrInvalidData)
	}
	switch b[0] {
	case '"':
		if err := json.Unmarshal(b, &u.Text); err != nil {
			return err
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		u.Text = string(b)
	default:
		return fmt.Errorf("%w: user_id must be a string or a number", ErrInvalidData)
	}
	if u.Text == "" || len(u.Text) > 128 {
		return fmt.Errorf("%w: user_id must be 1 to 128 characters", ErrInvalidData)
	}
	u.Raw = append(json.RawMessage(nil), b...)
	return nil
}

func (u userID) MarshalJSON() ([]byte, error) {
	if u.Raw != nil {
		return u.Raw, nil
	}
	return json.Marshal(u.Text)
}

// checkIdentification applies the socket-state and rate rules every
// identification shares (PROTOCOL §4): none on a logged-in socket, and at
// most so many per remote address.
func checkIdentification(s *Session, logins *loginLimiter) error {
	if s.LoggedIn() {
		return fmt.Errorf("%w: this socket is already logged in", ErrProtocol)
	}
	if !logins.allow(s.Remote) {
		return fmt.Errorf("%w: too many logins from this address", ErrRateLimited)
	}
	return nil
}

// iotaIdentity is the Iota's login identity; a zero key is replaced by a
// fresh one, so a test server needs no key file.
func iotaIdentity(priv icrypto.PrivateKey, legacy bool) *identity {
	if priv == (icrypto.PrivateKey{}) {
		_, priv, _ = icrypto.GenerateKey(rand.Reader)
	}
	return newIdentity(icrypto.RoleIota, priv.Public(), func(pub icrypto.PublicKey) ([icrypto.KeySize]byte, error) {
		return icrypto.SharedSecret(priv, pub)
	}, legacy)
}
