package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	icrypto "github.com/iotad/iotad/crypto"
)

// ChallengeTTL is how long a challenge may be answered (PROTOCOL §4).
const ChallengeTTL = 30 * time.Second

// PendingLogin is a challenge waiting for its answer on one socket.
type PendingLogin struct {
	answer   string
	expires  time.Time
	complete func(ctx context.Context, s *Session, answer string) (*Reply, error)
}

type challengeData struct {
	Challenge string `json:"challenge"`
	PublicKey string `json:"public_key"`
}

// startChallenge seals a fresh challenge to pub under a fresh ephemeral key
// (the construction's nonce is fixed per key pair, so a static server key
// would reuse it) and remembers what completes the login. A second
// identification simply replaces the pending challenge.
func startChallenge(s *Session, pub icrypto.PublicKey, complete func(ctx context.Context, s *Session, answer string) (*Reply, error)) (*Reply, error) {
	ephPub, ephPriv, err := icrypto.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("api: challenge key: %w", err)
	}
	text, err := icrypto.NewChallengeText(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("api: challenge text: %w", err)
	}
	sealed, err := icrypto.SealChallenge(ephPriv, pub, []byte(text))
	if err != nil {
		return nil, fmt.Errorf("%w: cannot seal a challenge to this key", icrypto.ErrLowOrder)
	}
	s.Login = &PendingLogin{answer: text, expires: s.now().Add(ChallengeTTL), complete: complete}
	return &Reply{Type: TypeChallenge, LogMessage: "Solve this challenge to log in",
		Data: challengeData{Challenge: sealed, PublicKey: ephPub.String()}}, nil
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
	return p.complete(ctx, s, p.answer)
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
