package iota

import (
	"context"
	"database/sql"

	icrypto "github.com/iotad/iotad/crypto"
)

// CreateUserAs is CreateUser with an id the caller chose, so that the
// user's key file can be on disk, durably, before the row that makes the
// account usable commits.
func (s *Store) CreateUserAs(ctx context.Context, id, name string, pub icrypto.PublicKey) (User, error) {
	u := User{ID: id, Name: name, PublicKey: pub, CreatedAt: s.now()}
	if err := s.db.Tx(ctx, func(tx *sql.Tx) error { return insertUser(ctx, tx, u) }); err != nil {
		return User{}, err
	}
	return u, nil
}
