package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	icrypto "github.com/iotad/iotad/crypto"
)

// ErrBadProof means the community could not prove it holds the key the
// member knows it by.
var ErrBadProof = errors.New("client: the community's proof does not check out")

// Login is a community's identification_response.
type Login struct {
	Interactables      json.RawMessage `json:"interactables"`
	CommunityPublicKey string          `json:"community_public_key"`
	Proof              string          `json:"proof"`
	UserID             json.RawMessage `json:"user_id"`
	Role               string          `json:"role"`
}

// LoginCommunity logs in to a community socket. invite and pub are for a
// first visit (pass "" and nil later). pinned is the community key from
// the invite: the challenge must be bound to it, or the client refuses to
// answer (ErrServerIdentity); nil falls back to Options.ServerKey, then
// to trusting the key the community names. The proof is always checked.
func (c *Client) LoginCommunity(ctx context.Context, userID string, priv icrypto.PrivateKey, invite string, pinned *icrypto.PublicKey) (Login, error) {
	ident := map[string]any{"user_id": userID}
	if invite != "" {
		ident["invite"] = invite
		ident["public_key"] = priv.Public().String()
	}
	if c.legacy {
		ident["login_version"] = 1
	}
	if pinned == nil {
		pinned = c.pinned
	}
	m, answer, err := c.login(ctx, priv, ident, icrypto.RoleCommunity, pinned)
	if err != nil {
		return Login{}, err
	}
	bound := c.ServerKey()
	var l Login
	if err := m.Decode(&l); err != nil {
		return Login{}, fmt.Errorf("client: identification_response: %w", err)
	}
	cpub, err := icrypto.ParsePublicKey(l.CommunityPublicKey)
	if err != nil {
		return l, fmt.Errorf("%w: community_public_key: %v", ErrBadProof, err)
	}
	if c.legacy {
		// A version-1 challenge names no server: the key the community
		// gives is checked against the pin, if any, and by the proof.
		bound = cpub
		if pinned != nil {
			bound = *pinned
		}
	}
	if cpub != bound {
		return l, fmt.Errorf("%w: the community's key is not the one its challenge was bound to", ErrBadProof)
	}
	key, err := c.memberKeys.get(priv, cpub)
	if err != nil || !icrypto.VerifyProof(key, answer, l.Proof) {
		return l, ErrBadProof
	}
	return l, nil
}

// Function calls a function on a channel (or on the community itself with
// path and name "" and codec "community").
func (c *Client) Function(ctx context.Context, codec, path, name, function string, payload any) (Message, error) {
	if payload == nil {
		payload = map[string]any{}
	}
	return c.Request(ctx, "function", map[string]any{
		"codec": codec, "path": path, "name": name, "function": function, "payload": payload,
	})
}

// FunctionResult is a function reply's or update's data.
type FunctionResult struct {
	Codec   string          `json:"codec"`
	Name    string          `json:"name"`
	Path    string          `json:"path"`
	Result  string          `json:"result"`
	Payload json.RawMessage `json:"payload"`
}

// Result decodes a function reply or update.
func (m Message) Result() (FunctionResult, error) {
	var r FunctionResult
	err := m.Decode(&r)
	return r, err
}

// MemberKeyCache holds X448(user, server) by user key and server key: the
// input of the member key and the static half of a version-2 login, so a
// client that logs in again to a server it pinned pays for one X448, not
// three. The zero value is ready; a nil cache computes every secret afresh.
type MemberKeyCache struct {
	secrets sync.Map // [2 * icrypto.KeySize]byte → [icrypto.KeySize]byte
}

func (m *MemberKeyCache) get(priv icrypto.PrivateKey, community icrypto.PublicKey) ([32]byte, error) {
	shared, err := m.shared(priv, community)
	if err != nil {
		return [32]byte{}, fmt.Errorf("client: member key: %w", err)
	}
	return icrypto.MemberKeyFromShared(shared), nil
}

func (m *MemberKeyCache) shared(priv icrypto.PrivateKey, server icrypto.PublicKey) ([icrypto.KeySize]byte, error) {
	if m == nil {
		return icrypto.SharedSecret(priv, server)
	}
	var id [2 * icrypto.KeySize]byte
	copy(id[:], priv[:])
	copy(id[icrypto.KeySize:], server[:])
	if k, ok := m.secrets.Load(id); ok {
		return k.([icrypto.KeySize]byte), nil
	}
	k, err := icrypto.SharedSecret(priv, server)
	if err != nil {
		return k, err
	}
	m.secrets.Store(id, k)
	return k, nil
}
