// Package iota keeps the accounts of an Iota and, for each user, an opaque
// list of community entries and opaque settings blobs, with a version that
// lets a user's devices notice each other's changes.
//
// The package never sees a plaintext: entries and settings are sealed by the
// client (crypto/seal), and nothing here imports the half that opens them.
package iota

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db"
)

// Limits of PROTOCOL §2.
const (
	// MaxFieldBytes bounds every entry field as sent.
	MaxFieldBytes = 4096
	// MaxSettingsBytes bounds a settings payload as stored.
	MaxSettingsBytes = 48 << 10
	// MaxSettingsNameBytes bounds a settings name.
	MaxSettingsNameBytes = 256
)

// Limits are the per-user quotas of an Iota. They are checked inside the
// write transaction after the user's version is bumped, which serialises a
// user's writes (SQLite's single writer; on PostgreSQL the lock on the
// user's row), so two sockets racing at a limit cannot both get past it.
type Limits struct {
	// MaxEntries bounds the entries of a user's community list.
	MaxEntries int
	// MaxSettings bounds how many settings blobs a user keeps.
	MaxSettings int
	// MaxSettingsTotal bounds the bytes of all of a user's settings
	// payloads together (names not counted).
	MaxSettingsTotal int64
}

// DefaultLimits are the quotas a Store starts with.
func DefaultLimits() Limits {
	return Limits{MaxEntries: 1000, MaxSettings: 100, MaxSettingsTotal: 1 << 20}
}

// Errors of this package; api maps them to wire error types.
var (
	ErrUnknownUser = errors.New("unknown user")
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("version conflict")
	ErrInvalidData = errors.New("invalid data")
	ErrBadToken    = errors.New("registration token is spent, expired, revoked or unknown")
)

// ConflictError is returned when expected_version does not match.
type ConflictError struct{ Current int64 }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("version conflict: the list is at version %d", e.Current)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the Iota's storage.
type Store struct {
	db     *db.DB
	now    func() time.Time
	limits atomic.Pointer[Limits]
}

// Open migrates the Iota's tables in d and returns its store.
func Open(ctx context.Context, d *db.DB) (*Store, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx, "iota", sub); err != nil {
		return nil, err
	}
	s := &Store{db: d, now: time.Now}
	s.SetLimits(DefaultLimits())
	return s, nil
}

// SetLimits replaces the per-user quotas; writes after it use the new ones.
func (s *Store) SetLimits(l Limits) { s.limits.Store(&l) }

// Limits returns the per-user quotas in force.
func (s *Store) Limits() Limits { return *s.limits.Load() }

// User is an account of this Iota.
type User struct {
	ID        string
	Name      string
	PublicKey icrypto.PublicKey
	CreatedAt time.Time
}

// CreateUser stores a new user with the given public key.
func (s *Store) CreateUser(ctx context.Context, name string, pub icrypto.PublicKey) (User, error) {
	u := User{ID: uuid.NewString(), Name: name, PublicKey: pub, CreatedAt: s.now()}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error { return insertUser(ctx, tx, u) })
	if err != nil {
		return User{}, err
	}
	return u, nil
}

func insertUser(ctx context.Context, tx *sql.Tx, u User) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO users(id, name, public_key, created_at) VALUES($1, $2, $3, $4)`,
		u.ID, u.Name, u.PublicKey[:], u.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("iota: insert user: %w", err)
	}
	return nil
}

// User looks a user up by id.
func (s *Store) User(ctx context.Context, id string) (User, error) {
	var u User
	var key []byte
	var created int64
	err := s.db.ReadRow(ctx, `SELECT id, name, public_key, created_at FROM users WHERE id = $1`, id).
		Scan(&u.ID, &u.Name, &key, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrUnknownUser
	}
	if err != nil {
		return User{}, fmt.Errorf("iota: read user: %w", err)
	}
	copy(u.PublicKey[:], key)
	u.CreatedAt = time.UnixMilli(created)
	return u, nil
}

// Users lists every user, oldest first.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT id, name, public_key, created_at FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("iota: list users: %w", err)
	}
	defer rows.Close()
	var users []User
	for rows.Next() {
		var u User
		var key []byte
		var created int64
		if err := rows.Scan(&u.ID, &u.Name, &key, &created); err != nil {
			return nil, fmt.Errorf("iota: list users: %w", err)
		}
		copy(u.PublicKey[:], key)
		u.CreatedAt = time.UnixMilli(created)
		users = append(users, u)
	}
	return users, rows.Err()
}

// DeleteUser removes a user and everything they stored.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("iota: delete user: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrUnknownUser
		}
		return nil
	})
}

// Token is a registration token as the operator sees it (never its secret).
type Token struct {
	ID        string
	MaxUses   int
	Uses      int
	ExpiresAt time.Time
	Revoked   bool
	CreatedAt time.Time
}

// CreateToken makes a registration token and returns its secret, which is
// shown once and not stored.
func (s *Store) CreateToken(ctx context.Context, maxUses int, ttl time.Duration) (string, Token, error) {
	if maxUses < 1 {
		return "", Token{}, fmt.Errorf("%w: uses must be at least 1", ErrInvalidData)
	}
	if ttl <= 0 {
		return "", Token{}, fmt.Errorf("%w: expiry must be in the future", ErrInvalidData)
	}
	secret, err := icrypto.NewSecret(rand.Reader)
	if err != nil {
		return "", Token{}, err
	}
	now := s.now()
	t := Token{ID: uuid.NewString(), MaxUses: maxUses, ExpiresAt: now.Add(ttl), CreatedAt: now}
	hash := icrypto.HashSecret(secret)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens(id, secret_hash, max_uses, expires_at, created_at) VALUES($1, $2, $3, $4, $5)`,
			t.ID, hash[:], t.MaxUses, t.ExpiresAt.UnixMilli(), t.CreatedAt.UnixMilli())
		return err
	})
	if err != nil {
		return "", Token{}, fmt.Errorf("iota: create token: %w", err)
	}
	return secret, t, nil
}

// Tokens lists every registration token.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT id, max_uses, uses, expires_at, revoked, created_at FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("iota: list tokens: %w", err)
	}
	defer rows.Close()
	var tokens []Token
	for rows.Next() {
		var t Token
		var expires, created int64
		if err := rows.Scan(&t.ID, &t.MaxUses, &t.Uses, &expires, &t.Revoked, &created); err != nil {
			return nil, fmt.Errorf("iota: list tokens: %w", err)
		}
		t.ExpiresAt, t.CreatedAt = time.UnixMilli(expires), time.UnixMilli(created)
		tokens = append(tokens, t)
	}
	return tokens, rows.Err()
}

// RevokeToken makes a token unusable.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked = 1 WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("iota: revoke token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no token %q", ErrNotFound, id)
		}
		return nil
	})
}

// Register spends one use of a registration token and creates a user with
// the client's own public key, in one transaction.
func (s *Store) Register(ctx context.Context, pub icrypto.PublicKey, token string) (User, error) {
	hash := icrypto.HashSecret(token)
	u := User{ID: uuid.NewString(), PublicKey: pub, CreatedAt: s.now()}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET uses = uses + 1
			WHERE secret_hash = $1 AND revoked = 0 AND uses < max_uses AND expires_at > $2`, hash[:], u.CreatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("iota: spend token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrBadToken
		}
		return insertUser(ctx, tx, u)
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// Entry is one sealed community-list entry.
type Entry struct {
	ID       string
	Address  string
	Title    string
	Position string
}

func checkField(name, v string) error {
	if v == "" {
		return fmt.Errorf("%w: %s must not be empty", ErrInvalidData, name)
	}
	if len(v) > MaxFieldBytes {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidData, name, MaxFieldBytes)
	}
	return checkNoNUL(name, v)
}

// checkNoNUL refuses U+0000, which PostgreSQL's text cannot hold: refused
// on both backends, a client sees one behaviour whichever the server uses.
func checkNoNUL(name, v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%w: %s must not contain U+0000", ErrInvalidData, name)
	}
	return nil
}

// bumpVersion checks expected (when given) against the user's version and
// increments it, inside tx. Reading and bumping are one statement: on
// PostgreSQL it locks the user's row until the commit, so two nodes
// writing one user's list take turns, and the quota checks that follow it
// count under that lock. On a conflict the caller's transaction is rolled
// back with the error, and the bump with it.
func bumpVersion(ctx context.Context, tx *sql.Tx, userID string, expected *int64) (int64, error) {
	var next int64
	err := tx.QueryRowContext(ctx, `UPDATE users SET version = version + 1 WHERE id = $1 RETURNING version`, userID).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrUnknownUser
	}
	if err != nil {
		return 0, fmt.Errorf("iota: bump version: %w", err)
	}
	if expected != nil && *expected != next-1 {
		return 0, &ConflictError{Current: next - 1}
	}
	return next, nil
}

// checkEntryQuota refuses a new entry when the user has MaxEntries.
// Replacing an entry in place never counts.
func checkEntryQuota(ctx context.Context, tx *sql.Tx, userID string, l Limits) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM entries WHERE user_id = $1`, userID).Scan(&n); err != nil {
		return fmt.Errorf("iota: count entries: %w", err)
	}
	if n >= l.MaxEntries {
		return fmt.Errorf("%w: entry limit: at most %d community entries per user", ErrInvalidData, l.MaxEntries)
	}
	return nil
}

// checkSettingsQuota refuses to store size bytes under name when the
// user's other settings already number MaxSettings, or would with it
// exceed MaxSettingsTotal bytes. Overwriting a name replaces its bytes.
func checkSettingsQuota(ctx context.Context, tx *sql.Tx, userID, name string, size int, l Limits) error {
	var others int
	var otherBytes int64
	err := tx.QueryRowContext(ctx, `SELECT count(*), COALESCE(SUM(octet_length(payload)), 0)
		FROM settings WHERE user_id = $1 AND name != $2`, userID, name).Scan(&others, &otherBytes)
	if err != nil {
		return fmt.Errorf("iota: count settings: %w", err)
	}
	if others+1 > l.MaxSettings {
		return fmt.Errorf("%w: settings limit: at most %d settings per user", ErrInvalidData, l.MaxSettings)
	}
	if otherBytes+int64(size) > l.MaxSettingsTotal {
		return fmt.Errorf("%w: settings size limit: at most %d bytes of settings per user (%d in use by the others)",
			ErrInvalidData, l.MaxSettingsTotal, otherBytes)
	}
	return nil
}

// AddEntry stores e for the user: a new entry when e.ID is empty, else a
// replacement of that entry in place. It returns the entry id and the new
// version.
func (s *Store) AddEntry(ctx context.Context, userID string, e Entry, expected *int64) (string, int64, error) {
	for _, f := range []struct{ name, v string }{
		{"community_address", e.Address}, {"community_title", e.Title}, {"position", e.Position},
	} {
		if err := checkField(f.name, f.v); err != nil {
			return "", 0, err
		}
	}
	var version int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if version, err = bumpVersion(ctx, tx, userID, expected); err != nil {
			return err
		}
		now := s.now().UnixMilli()
		if e.ID == "" {
			if err := checkEntryQuota(ctx, tx, userID, s.Limits()); err != nil {
				return err
			}
			e.ID = uuid.NewString()
			_, err = tx.ExecContext(ctx, `INSERT INTO entries(id, user_id, address, title, position, updated_at) VALUES($1, $2, $3, $4, $5, $6)`,
				e.ID, userID, e.Address, e.Title, e.Position, now)
			if err != nil {
				return fmt.Errorf("iota: insert entry: %w", err)
			}
			return nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE entries SET address = $1, title = $2, position = $3, updated_at = $4 WHERE id = $5 AND user_id = $6`,
			e.Address, e.Title, e.Position, now, e.ID, userID)
		if err != nil {
			return fmt.Errorf("iota: replace entry: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no entry %q", ErrNotFound, e.ID)
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return e.ID, version, nil
}

// Entries returns the user's entries in insertion order and the version.
func (s *Store) Entries(ctx context.Context, userID string) ([]Entry, int64, error) {
	tx, err := s.db.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("iota: read entries: %w", err)
	}
	defer tx.Rollback()
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM users WHERE id = $1`, userID).Scan(&version); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, ErrUnknownUser
		}
		return nil, 0, fmt.Errorf("iota: read version: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, address, title, position FROM entries WHERE user_id = $1 ORDER BY seq`, userID)
	if err != nil {
		return nil, 0, fmt.Errorf("iota: read entries: %w", err)
	}
	defer rows.Close()
	entries := []Entry{}
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.ID, &e.Address, &e.Title, &e.Position); err != nil {
			return nil, 0, fmt.Errorf("iota: read entries: %w", err)
		}
		entries = append(entries, e)
	}
	return entries, version, rows.Err()
}

// RemoveEntry removes the entry with entryID, or, when entryID is empty,
// every entry whose sealed address is exactly address.
func (s *Store) RemoveEntry(ctx context.Context, userID, entryID, address string, expected *int64) (int64, error) {
	var version int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if version, err = bumpVersion(ctx, tx, userID, expected); err != nil {
			return err
		}
		var res sql.Result
		if entryID != "" {
			res, err = tx.ExecContext(ctx, `DELETE FROM entries WHERE id = $1 AND user_id = $2`, entryID, userID)
		} else {
			res, err = tx.ExecContext(ctx, `DELETE FROM entries WHERE address = $1 AND user_id = $2`, address, userID)
		}
		if err != nil {
			return fmt.Errorf("iota: remove entry: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no such entry", ErrNotFound)
		}
		return nil
	})
	return version, err
}

// SaveSetting stores a settings blob under name and returns the new version.
func (s *Store) SaveSetting(ctx context.Context, userID, name, payload string, expected *int64) (int64, error) {
	if name == "" || len(name) > MaxSettingsNameBytes {
		return 0, fmt.Errorf("%w: settings_name must be 1 to %d bytes", ErrInvalidData, MaxSettingsNameBytes)
	}
	if len(payload) > MaxSettingsBytes {
		return 0, fmt.Errorf("%w: payload is longer than %d bytes", ErrInvalidData, MaxSettingsBytes)
	}
	if err := checkNoNUL("settings_name", name); err != nil {
		return 0, err
	}
	if err := checkNoNUL("payload", payload); err != nil {
		return 0, err
	}
	var version int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if version, err = bumpVersion(ctx, tx, userID, expected); err != nil {
			return err
		}
		if err := checkSettingsQuota(ctx, tx, userID, name, len(payload), s.Limits()); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO settings(user_id, name, payload, updated_at) VALUES($1, $2, $3, $4)
			ON CONFLICT(user_id, name) DO UPDATE SET payload = excluded.payload, updated_at = excluded.updated_at`,
			userID, name, payload, s.now().UnixMilli())
		if err != nil {
			return fmt.Errorf("iota: save setting: %w", err)
		}
		return nil
	})
	return version, err
}

// LoadSetting returns the blob stored under name.
func (s *Store) LoadSetting(ctx context.Context, userID, name string) (string, error) {
	var payload string
	err := s.db.Read.QueryRowContext(ctx, `SELECT payload FROM settings WHERE user_id = $1 AND name = $2`, userID, name).Scan(&payload)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: no settings named %q", ErrNotFound, name)
	}
	if err != nil {
		return "", fmt.Errorf("iota: load setting: %w", err)
	}
	return payload, nil
}

// SettingNames lists the names of the user's settings blobs.
func (s *Store) SettingNames(ctx context.Context, userID string) ([]string, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT name FROM settings WHERE user_id = $1 ORDER BY name`, userID)
	if err != nil {
		return nil, fmt.Errorf("iota: list settings: %w", err)
	}
	defer rows.Close()
	names := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("iota: list settings: %w", err)
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
