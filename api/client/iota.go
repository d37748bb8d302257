package client

import (
	"context"
	"crypto/rand"
	"fmt"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/crypto/seal"
)

// Community is one community-list entry as its owner reads it.
type Community struct {
	EntryID  string
	Address  string
	Title    string
	Position string
}

// Entry field names; each is the AAD its sealed value is bound to.
const (
	FieldAddress  = "community_address"
	FieldTitle    = "community_title"
	FieldPosition = "position"
)

// AddCommunity seals com with the user's key and stores it on the Iota
// (replacing com.EntryID when set). It returns the entry id and version.
func (c *Client) AddCommunity(ctx context.Context, priv icrypto.PrivateKey, com Community) (string, int64, error) {
	key := seal.ListKey(priv)
	data := map[string]any{}
	for _, f := range []struct{ name, v string }{
		{FieldAddress, com.Address}, {FieldTitle, com.Title}, {FieldPosition, com.Position},
	} {
		sealed, err := seal.Seal(rand.Reader, key, f.name, f.v)
		if err != nil {
			return "", 0, fmt.Errorf("client: seal %s: %w", f.name, err)
		}
		data[f.name] = sealed
	}
	if com.EntryID != "" {
		data["entry_id"] = com.EntryID
	}
	m, err := c.Request(ctx, "add_community", data)
	if err != nil {
		return "", 0, err
	}
	var out struct {
		EntryID string `json:"entry_id"`
		Version int64  `json:"version"`
	}
	if err := m.Decode(&out); err != nil {
		return "", 0, fmt.Errorf("client: add_community reply: %w", err)
	}
	return out.EntryID, out.Version, nil
}

// Communities reads the user's list and opens every entry.
func (c *Client) Communities(ctx context.Context, priv icrypto.PrivateKey) ([]Community, int64, error) {
	m, err := c.Request(ctx, "get_communities", nil)
	if err != nil {
		return nil, 0, err
	}
	var out struct {
		Communities []struct {
			EntryID  string `json:"entry_id"`
			Address  string `json:"community_address"`
			Title    string `json:"community_title"`
			Position string `json:"position"`
		} `json:"communities"`
		Version int64 `json:"version"`
	}
	if err := m.Decode(&out); err != nil {
		return nil, 0, fmt.Errorf("client: get_communities reply: %w", err)
	}
	key := seal.ListKey(priv)
	list := make([]Community, 0, len(out.Communities))
	for _, e := range out.Communities {
		com := Community{EntryID: e.EntryID}
		for _, f := range []struct {
			name, sealed string
			dst          *string
		}{
			{FieldAddress, e.Address, &com.Address}, {FieldTitle, e.Title, &com.Title}, {FieldPosition, e.Position, &com.Position},
		} {
			v, err := seal.Open(key, f.name, f.sealed)
			if err != nil {
				return nil, 0, fmt.Errorf("client: entry %s: %s: %w", e.EntryID, f.name, err)
			}
			*f.dst = v
		}
		list = append(list, com)
	}
	return list, out.Version, nil
}

// RemoveCommunity removes an entry by id and returns the new version.
func (c *Client) RemoveCommunity(ctx context.Context, entryID string) (int64, error) {
	m, err := c.Request(ctx, "remove_community", map[string]string{"entry_id": entryID})
	if err != nil {
		return 0, err
	}
	var out struct {
		Version int64 `json:"version"`
	}
	if err := m.Decode(&out); err != nil {
		return 0, fmt.Errorf("client: remove_community reply: %w", err)
	}
	return out.Version, nil
}
