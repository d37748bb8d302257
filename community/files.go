package community

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // DecodeConfig of GIF dimensions
	_ "image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits and defaults of PROTOCOL §9 "Files and images".
const (
	DefaultMaxUpload   = 25 << 20
	DefaultUploadQuota = 1 << 30
	UploadTicketTTL    = 10 * time.Minute
	MaxAttachments     = 10
	MaxFileNameBytes   = 255
	MaxFileTypeBytes   = 255
	// MaxOpenTickets bounds the tickets a member holds at once, each a row.
	MaxOpenTickets = 20
	// FileGrace is how long a file no message or avatar uses is kept.
	FileGrace = time.Hour
	// FileSweepInterval is how often the sweep runs.
	FileSweepInterval = 10 * time.Minute
)

// ResultUploadTicket is upload's result.
const ResultUploadTicket = "upload_ticket"

// Upload refusals. Both are ErrInvalidData on the socket; HTTP tells them
// apart (413 and 507).
var (
	ErrTooLarge = fmt.Errorf("%w: larger than the upload allows", ErrInvalidData)
	ErrQuota    = fmt.Errorf("%w: the upload quota is used up", ErrInvalidData)
)

// Attachment is a file as messages carry it.
type Attachment struct {
	FileID string `json:"file_id"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Type   string `json:"type"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
	URL    string `json:"url"`
}

// File is a stored file, as Download and the upload's reply see it.
type File struct {
	Attachment
	SHA256 string
	// Path is the file's bytes on this node's disk.
	Path string
}

// fileStore is the disk half: DATA/files/<hh>/<sha256>, and tmp/ for
// uploads in progress and blobs the sweep is about to remove.
//
// In a cluster several nodes share the directory and the database, so no
// lock of one process orders an upload against another node's sweep.
// Two orders do, over the database: an upload commits the row that names
// its blob before it renames the blob into place, and the sweep moves a
// blob aside before it asks, a last time, whether a row names it (see
// removeBlob).
type fileStore struct {
	dir       string
	maxUpload int64
	quota     int64
	stop      chan struct{}
	done      chan struct{}
	stopOnce  sync.Once
	// hook, in tests, runs at the named steps of removeBlob.
	hook func(step, sum string)
}

// tmpGrace is how old a temp file must be before start-up removes it: in a
// cluster the directory is shared, and a younger one may be another node's
// upload in progress (none lasts half an hour: PROTOCOL §9).
const tmpGrace = 30 * time.Minute

// trashPrefix names, in tmp/, a blob the sweep moved aside.
const trashPrefix = "gc-"

func openFileStore(dir string, maxUpload, quota int64) (*fileStore, error) {
	if maxUpload <= 0 {
		maxUpload = DefaultMaxUpload
	}
	if quota <= 0 {
		quota = DefaultUploadQuota
	}
	fs := &fileStore{dir: dir, maxUpload: maxUpload, quota: quota}
	if err := os.MkdirAll(fs.tmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("community: files directory: %w", err)
	}
	if err := fs.clearTmp(time.Now()); err != nil {
		return nil, err
	}
	return fs, nil
}

// clearTmp tidies what a crash (kill -9) left in tmp/: an upload cut
// short left a temp file, which no row names, and is removed once it is
// older than any upload in progress could be; a sweep cut short left a
// blob moved aside, which a row may still name, and goes back in place
// (a blob no row names costs disk, never a file).
func (fs *fileStore) clearTmp(now time.Time) error {
	entries, err := os.ReadDir(fs.tmpDir())
	if err != nil {
		return fmt.Errorf("community: read upload temp files: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(fs.tmpDir(), e.Name())
		if sum, ok := strings.CutPrefix(e.Name(), trashPrefix); ok {
			if sum, _, _ = strings.Cut(sum, "-"); isSHA256(sum) {
				if err := os.MkdirAll(filepath.Dir(fs.blobPath(sum)), 0o700); err == nil {
					os.Rename(p, fs.blobPath(sum))
				}
			}
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < tmpGrace {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("community: clear upload temp files: %w", err)
		}
	}
	return nil
}

func isSHA256(s string) bool { return len(s) == 64 && isHex(s) }

func (fs *fileStore) tmpDir() string { return filepath.Join(fs.dir, "tmp") }

func (fs *fileStore) blobPath(sum string) string { return filepath.Join(fs.dir, sum[:2], sum) }

// MaxUpload is the largest file an upload may carry.
func (c *Community) MaxUpload() int64 { return c.svc.files.maxUpload }

// CheckFileName is the rule for a file's name: 1..255 bytes of UTF-8, no
// slash, backslash or control character.
func CheckFileName(name string) error {
	if name == "" || len(name) > MaxFileNameBytes {
		return fmt.Errorf("%w: a file name is 1 to %d bytes", ErrInvalidData, MaxFileNameBytes)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: a file name must be valid UTF-8", ErrInvalidData)
	}
	for _, r := range name {
		if r == '/' || r == '\\' || unicode.IsControl(r) {
			return fmt.Errorf("%w: a file name must not contain / \\ or control characters", ErrInvalidData)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: a file name must not be . or ..", ErrInvalidData)
	}
	return nil
}

func checkFileType(t string) error {
	if len(t) > MaxFileTypeBytes {
		return fmt.Errorf("%w: type is at most %d bytes", ErrInvalidData, MaxFileTypeBytes)
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x20 || t[i] > 0x7e {
			return fmt.Errorf("%w: type must be printable ASCII", ErrInvalidData)
		}
	}
	return nil
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isFileID(s string) bool { return len(s) == 32 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// FileURL is where a file is downloaded, relative to the community's
// HTTP origin.
func FileURL(id, name string) string { return "/files/" + id + "/" + url.PathEscape(name) }

// usedBytes is the member's quota use: the distinct contents they uploaded.
func (c *Community) usedBytes(ctx context.Context, q queryer, userID string) (int64, error) {
	var used int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM (SELECT DISTINCT sha256, size FROM files
		WHERE community_id = $1 AND uploader_id = $2) d`, c.ID, userID).Scan(&used)
	if err != nil {
		return 0, fmt.Errorf("community: upload quota: %w", err)
	}
	return used, nil
}

// createUpload is the text function upload: a ticket for one PUT.
func createUpload(ctx context.Context, call *Call) (*Result, error) {
	if !call.Allowed(PermPost) {
		return nil, fmt.Errorf("%w: uploading needs a higher role", ErrPermission)
	}
	var in struct {
		Name *string `json:"name"`
		Size *int64  `json:"size"`
		Type *string `json:"type"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	c := call.Community
	if in.Name == nil {
		return nil, fmt.Errorf("%w: payload.name is required", ErrInvalidData)
	}
	if err := CheckFileName(*in.Name); err != nil {
		return nil, err
	}
	if in.Size == nil || *in.Size < 1 {
		return nil, fmt.Errorf("%w: payload.size is an integer 1..%d", ErrInvalidData, c.svc.files.maxUpload)
	}
	if *in.Size > c.svc.files.maxUpload {
		return nil, fmt.Errorf("%w: payload.size is at most %d", ErrTooLarge, c.svc.files.maxUpload)
	}
	claimed := ""
	if in.Type != nil {
		if err := checkFileType(*in.Type); err != nil {
			return nil, err
		}
		claimed = *in.Type
	}
	id := randomID()
	now := c.svc.now()
	expires := now.Add(UploadTicketTTL).UnixMilli()
	err := c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.actorNow(ctx, tx, call.Member, PermPost, "uploading"); err != nil {
			return err
		}
		var open int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM uploads WHERE community_id = $1 AND user_id = $2 AND expires_at > $3`,
			c.ID, call.Member.UserID, now.UnixMilli()).Scan(&open); err != nil {
			return fmt.Errorf("community: count tickets: %w", err)
		}
		if open >= MaxOpenTickets {
			return fmt.Errorf("%w: at most %d upload tickets at once", ErrConflict, MaxOpenTickets)
		}
		used, err := c.usedBytes(ctx, tx, call.Member.UserID)
		if err != nil {
			return err
		}
		if used+*in.Size > c.svc.files.quota {
			return fmt.Errorf("%w: %d of %d bytes used", ErrQuota, used, c.svc.files.quota)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO uploads(id, community_id, user_id, name, size, claimed_type, expires_at)
			VALUES($1, $2, $3, $4, $5, $6, $7)`, id, c.ID, call.Member.UserID, *in.Name, *in.Size, claimed, expires)
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	return &Result{Result: ResultUploadTicket, Payload: map[string]any{
		"upload_id": id, "url": "/api/upload/" + id, "expires_at": expires}}, nil
}

// Ticket is a claimed upload ticket.
type Ticket struct {
	ID     string
	UserID string
	Name   string
	Size   int64
}

// UploadTicket reads the ticket id of this community without spending it,
// so that the PUT can be turned away (too many at once) and retried with
// the same ticket: ErrNotFound when it is unknown, expired or another
// community's, ErrConflict when used.
func (c *Community) UploadTicket(ctx context.Context, id string) (Ticket, error) {
	return c.readTicket(ctx, c.svc.db.Read, id)
}

func (c *Community) readTicket(ctx context.Context, q queryer, id string) (Ticket, error) {
	t := Ticket{ID: id}
	var expires int64
	var claimed sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT user_id, name, size, expires_at, claimed_at FROM uploads WHERE id = $1 AND community_id = $2`,
		id, c.ID).Scan(&t.UserID, &t.Name, &t.Size, &expires, &claimed)
	if errors.Is(err, sql.ErrNoRows) || err == nil && expires <= c.svc.now().UnixMilli() {
		return Ticket{}, fmt.Errorf("%w: no upload ticket %q (unknown or expired)", ErrNotFound, id)
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("community: read ticket: %w", err)
	}
	if claimed.Valid {
		return Ticket{}, fmt.Errorf("%w: the upload ticket was used already", ErrConflict)
	}
	return t, nil
}

// ClaimUpload spends the ticket id of this community: ErrNotFound when it
// is unknown, expired or another community's, ErrConflict when used.
func (c *Community) ClaimUpload(ctx context.Context, id string) (Ticket, error) {
	var t Ticket
	err := c.svc.w.do(ctx, func(tx *sql.Tx) error {
		var err error
		if t, err = c.readTicket(ctx, tx, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE uploads SET claimed_at = $1 WHERE id = $2 AND claimed_at IS NULL`, c.svc.now().UnixMilli(), id)
		if err != nil {
			return fmt.Errorf("community: claim ticket: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: the upload ticket was used already", ErrConflict)
		}
		return nil
	}, nil)
	return t, err
}

// DropTicket deletes a claimed ticket whose upload failed: it is spent,
// and a PUT that tries it again is told so (404) rather than that it is
// still uploading (409).
func (c *Community) DropTicket(ctx context.Context, id string) {
	ctx = context.WithoutCancel(ctx)
	err := c.svc.w.do(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = $1`, id)
		return err
	}, nil)
	if err != nil {
		slog.Error("community: drop a failed upload's ticket", slog.String("community", c.ID), slog.Any("err", err))
	}
}

// sniffer keeps the first 512 bytes written through it.
type sniffer struct{ head []byte }

func (s *sniffer) Write(p []byte) (int, error) {
	if n := 512 - len(s.head); n > 0 {
		s.head = append(s.head, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

// StoreUpload reads the ticket's bytes from body, exactly t.Size of them,
// and stores them: a temp file, synced, renamed to its content address,
// the directory synced, then the row committed. Until that commit nothing
// names the file; a crash leaves a temp file or an unnamed blob.
//
// Whatever the outcome, the ticket is spent: a failed upload deletes it.
func (c *Community) StoreUpload(ctx context.Context, t Ticket, body io.Reader) (_ File, err error) {
	defer func() {
		if err != nil {
			c.DropTicket(ctx, t.ID)
		}
	}()
	fs := c.svc.files
	tmp, err := os.CreateTemp(fs.tmpDir(), "up-*")
	if err != nil {
		return File{}, fmt.Errorf("community: temp file: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	h, sn := sha256.New(), &sniffer{}
	n, err := io.Copy(io.MultiWriter(tmp, h, sn), io.LimitReader(body, t.Size+1))
	if err != nil {
		return File{}, fmt.Errorf("community: read upload: %w", err)
	}
	if n > t.Size {
		return File{}, fmt.Errorf("%w: the ticket is for %d bytes", ErrTooLarge, t.Size)
	}
	if n < t.Size {
		return File{}, fmt.Errorf("%w: %d bytes of the ticket's %d arrived", ErrInvalidData, n, t.Size)
	}
	if err := tmp.Sync(); err != nil {
		return File{}, fmt.Errorf("community: sync upload: %w", err)
	}
	f := File{SHA256: hex.EncodeToString(h.Sum(nil))}
	f.FileID, f.Name, f.Size = randomID(), t.Name, t.Size
	f.Type = http.DetectContentType(sn.head)
	if isImageType(f.Type) {
		if _, err := tmp.Seek(0, io.SeekStart); err == nil {
			f.Width, f.Height = imageSize(tmp, f.Type)
		}
	}
	f.URL, f.Path = FileURL(f.FileID, f.Name), fs.blobPath(f.SHA256)
	now := c.svc.now().UnixMilli()
	// The row first, then the blob: a sweep on any node that may remove
	// this content's blob asks the database after it moved the blob aside,
	// and then sees this row (see removeBlob).
	err = c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.actorNow(ctx, tx, Member{UserID: t.UserID}, PermPost, "uploading"); err != nil {
			return err
		}
		used, err := c.usedBytes(ctx, tx, t.UserID)
		if err != nil {
			return err
		}
		var have int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM files WHERE community_id = $1 AND uploader_id = $2 AND sha256 = $3`,
			c.ID, t.UserID, f.SHA256).Scan(&have); err != nil {
			return fmt.Errorf("community: upload quota: %w", err)
		}
		if have == 0 && used+f.Size > fs.quota {
			return fmt.Errorf("%w: %d of %d bytes used", ErrQuota, used, fs.quota)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = $1`, t.ID); err != nil {
			return fmt.Errorf("community: spend ticket: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO files(id, community_id, uploader_id, sha256, name, size, type, width, height, created_at, last_used)
			VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
			f.FileID, c.ID, t.UserID, f.SHA256, f.Name, f.Size, f.Type, nullInt(f.Width), nullInt(f.Height), now)
		if err != nil {
			return fmt.Errorf("community: store file: %w", err)
		}
		return nil
	}, nil)
	if err != nil {
		return File{}, err
	}
	if err := placeBlob(tmp.Name(), f.Path); err != nil {
		// Nobody has the id yet: the row goes, and with it the quota used.
		c.svc.w.do(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM files WHERE id = $1`, f.FileID)
			return err
		}, nil)
		return File{}, err
	}
	return f, nil
}

// placeBlob renames a synced temp file to its content address, durably.
// Another blob of the same content may be there already: the rename
// replaces it with the same bytes.
func placeBlob(tmp, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("community: files directory: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("community: store upload: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func nullInt(v int) any {
	if v == 0 {
		return nil
	}
	return v
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("community: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("community: sync %s: %w", dir, err)
	}
	return nil
}

// named reports whether a files row names the content sum; an error
// counts as named, so that a blob is kept when in doubt.
func (s *Service) named(ctx context.Context, sum string) bool {
	var n int
	err := s.db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM files WHERE sha256 = $1`, sum).Scan(&n)
	return err != nil || n > 0
}

// removeBlob removes the blob of content sum if no files row names it,
// safely against an upload of the same content on any node sharing the
// directory and the database. An upload commits its row, then renames its
// blob in place. The sweep moves the blob aside, then asks the database:
// a row committed before that answer is seen, and the blob goes back (an
// upload that renamed its own in meanwhile put the same bytes there); a
// row committed after it belongs to an upload whose rename comes later
// still, so removing what was moved aside takes nothing from it.
func (s *Service) removeBlob(ctx context.Context, sum string) {
	fs := s.files
	if s.named(ctx, sum) {
		return
	}
	fs.step("unnamed", sum)
	trash := filepath.Join(fs.tmpDir(), trashPrefix+sum+"-"+randomID())
	if err := os.Rename(fs.blobPath(sum), trash); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			slog.Error("community: move an unused file aside", slog.String("sha256", sum), slog.Any("err", err))
		}
		return
	}
	fs.step("moved", sum)
	if s.named(ctx, sum) {
		if err := os.Rename(trash, fs.blobPath(sum)); err != nil {
			slog.Error("community: put back a file in use", slog.String("sha256", sum), slog.Any("err", err))
		}
		return
	}
	if err := os.Remove(trash); err != nil && !errors.Is(err, os.ErrNotExist) {
		slog.Error("community: remove unused file", slog.String("sha256", sum), slog.Any("err", err))
	}
}

func (fs *fileStore) step(name, sum string) {
	if fs.hook != nil {
		fs.hook(name, sum)
	}
}

// safeImageTypes are the types served inline: images browsers decode
// without running anything. SVG is not one of them.
var safeImageTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

func isImageType(t string) bool { return safeImageTypes[t] }

// IsInlineType reports whether a sniffed type is served inline, as itself.
func IsInlineType(t string) bool { return safeImageTypes[t] }

// imageSize reads an image's dimensions from its header only: a
// decompression bomb costs nothing here.
func imageSize(r io.Reader, typ string) (int, int) {
	if typ == "image/webp" {
		var head [30]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return 0, 0
		}
		return webpSize(head[:])
	}
	cfg, _, err := image.DecodeConfig(r)
	if err != nil {
		return 0, 0
	}
	return cfg.Width, cfg.Height
}

// webpSize reads a WebP's canvas size (the standard library has no WebP
// decoder): the VP8X, VP8L or VP8 chunk's header.
func webpSize(b []byte) (int, int) {
	if len(b) < 30 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return 0, 0
	}
	le24 := func(p []byte) int { return int(p[0]) | int(p[1])<<8 | int(p[2])<<16 }
	switch string(b[12:16]) {
	case "VP8X":
		return 1 + le24(b[24:27]), 1 + le24(b[27:30])
	case "VP8L":
		if b[20] != 0x2f {
			return 0, 0
		}
		bits := binary.LittleEndian.Uint32(b[21:25])
		return 1 + int(bits&0x3fff), 1 + int(bits>>14&0x3fff)
	case "VP8 ":
		if !bytes.Equal(b[23:26], []byte{0x9d, 0x01, 0x2a}) {
			return 0, 0
		}
		return int(binary.LittleEndian.Uint16(b[26:28]) & 0x3fff), int(binary.LittleEndian.Uint16(b[28:30]) & 0x3fff)
	}
	return 0, 0
}

// File finds a file of this community by id, for download.
func (c *Community) File(ctx context.Context, id string) (File, error) {
	if !isFileID(id) {
		return File{}, fmt.Errorf("%w: no file %q", ErrNotFound, id)
	}
	var f File
	var w, h sql.NullInt64
	err := c.svc.db.Read.QueryRowContext(ctx, `SELECT sha256, name, size, type, width, height FROM files WHERE id = $1 AND community_id = $2`,
		id, c.ID).Scan(&f.SHA256, &f.Name, &f.Size, &f.Type, &w, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, fmt.Errorf("%w: no file %q", ErrNotFound, id)
	}
	if err != nil {
		return File{}, fmt.Errorf("community: read file: %w", err)
	}
	f.FileID, f.Width, f.Height = id, int(w.Int64), int(h.Int64)
	f.URL, f.Path = FileURL(id, f.Name), c.svc.files.blobPath(f.SHA256)
	return f, nil
}

// ParseAttachments reads send_message's attachments: absent or null is
// none; otherwise an array of at most MaxAttachments distinct file ids.
func ParseAttachments(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, fmt.Errorf("%w: payload.attachments is an array of file ids", ErrInvalidData)
	}
	if len(ids) > MaxAttachments {
		return nil, fmt.Errorf("%w: at most %d attachments", ErrInvalidData, MaxAttachments)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !isFileID(id) {
			return nil, fmt.Errorf("%w: no file %q", ErrNotFound, id)
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: file %s is attached twice", ErrInvalidData, id)
		}
		seen[id] = true
	}
	return ids, nil
}

// attach records a new message's attachments inside its transaction:
// each file must be one the sender uploaded to this community.
func (c *Community) attach(ctx context.Context, tx *sql.Tx, userID string, channelID, seq int64, ids []string) ([]Attachment, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	now := c.svc.now().UnixMilli()
	out := make([]Attachment, 0, len(ids))
	for i, id := range ids {
		if err := c.lockFile(ctx, tx, id, now); err != nil {
			return nil, err
		}
		var a Attachment
		var uploader string
		var w, h sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT uploader_id, name, size, type, width, height FROM files WHERE id = $1 AND community_id = $2`,
			id, c.ID).Scan(&uploader, &a.Name, &a.Size, &a.Type, &w, &h)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: no file %s", ErrNotFound, id)
		}
		if err != nil {
			return nil, fmt.Errorf("community: read file: %w", err)
		}
		if uploader != userID {
			return nil, fmt.Errorf("%w: only the uploader may attach file %s", ErrPermission, id)
		}
		a.FileID, a.Width, a.Height, a.URL = id, int(w.Int64), int(h.Int64), FileURL(id, a.Name)
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_files(channel_id, seq, position, file_id) VALUES($1, $2, $3, $4)`,
			channelID, seq, i, id); err != nil {
			return nil, fmt.Errorf("community: attach file: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// lockFile marks file id of this community used now, first thing in a
// write that is about to use it: on PostgreSQL the update holds the row
// until the commit, so a sweep on another node either deleted it already
// (ErrNotFound here) or waits and then finds it used.
func (c *Community) lockFile(ctx context.Context, tx *sql.Tx, id string, now int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE files SET last_used = $1 WHERE id = $2 AND community_id = $3`, now, id, c.ID)
	if err != nil {
		return fmt.Errorf("community: use file: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: no file %s", ErrNotFound, id)
	}
	return nil
}

// releaseFiles marks a message's files used now, before the message (and
// with it their message_files rows) is deleted: the grace hour starts.
func (c *Community) releaseFiles(ctx context.Context, tx *sql.Tx, channelID, seq int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE files SET last_used = $1 WHERE id IN
		(SELECT file_id FROM message_files WHERE channel_id = $2 AND seq = $3)`, c.svc.now().UnixMilli(), channelID, seq)
	if err != nil {
		return fmt.Errorf("community: release files: %w", err)
	}
	return nil
}

// loadAttachments fills in the attachments of a page of messages.
func (c *Community) loadAttachments(ctx context.Context, ch *Channel, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	lo, hi := msgs[0].Seq, msgs[0].Seq
	bySeq := make(map[int64]int, len(msgs))
	for i, m := range msgs {
		lo, hi = min(lo, m.Seq), max(hi, m.Seq)
		bySeq[m.Seq] = i
	}
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT mf.seq, f.id, f.name, f.size, f.type, f.width, f.height
		FROM message_files mf JOIN files f ON f.id = mf.file_id
		WHERE mf.channel_id = $1 AND mf.seq >= $2 AND mf.seq <= $3 ORDER BY mf.seq, mf.position`, ch.ID, lo, hi)
	if err != nil {
		return fmt.Errorf("community: read attachments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var a Attachment
		var w, h sql.NullInt64
		if err := rows.Scan(&seq, &a.FileID, &a.Name, &a.Size, &a.Type, &w, &h); err != nil {
			return fmt.Errorf("community: read attachments: %w", err)
		}
		a.Width, a.Height, a.URL = int(w.Int64), int(h.Int64), FileURL(a.FileID, a.Name)
		if i, ok := bySeq[seq]; ok {
			msgs[i].Attachments = append(msgs[i].Attachments, a)
		}
	}
	return rows.Err()
}

// CollectFiles is the sweep: tickets past their time, and files no message
// or avatar has used for FileGrace, rows first, then the blobs no row
// names any more. It returns how many files it deleted.
func (s *Service) CollectFiles(ctx context.Context) (int, error) {
	now := s.now()
	cutoff := now.Add(-FileGrace).UnixMilli()
	var gone []string
	err := s.w.do(ctx, func(tx *sql.Tx) error {
		gone = nil
		// A claimed ticket's upload may still be arriving: it is kept an
		// hour past its expiry, longer than any upload's read deadline.
		if _, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE expires_at <= $1 AND (claimed_at IS NULL OR expires_at <= $2)`,
			now.UnixMilli(), cutoff); err != nil {
			return fmt.Errorf("community: expire tickets: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, sha256 FROM files WHERE last_used <= $1`+unusedFile+` LIMIT 1000`, cutoff)
		if err != nil {
			return fmt.Errorf("community: find unused files: %w", err)
		}
		var ids, sums []string
		for rows.Next() {
			var id, sum string
			if err := rows.Scan(&id, &sum); err != nil {
				rows.Close()
				return fmt.Errorf("community: find unused files: %w", err)
			}
			ids, sums = append(ids, id), append(sums, sum)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i, id := range ids {
			// The conditions again, in the DELETE itself: on PostgreSQL an
			// attach on another node that touched the row since the SELECT
			// (or holds it, see lockFile) makes this delete nothing.
			res, err := tx.ExecContext(ctx, `DELETE FROM files WHERE id = $1 AND last_used <= $2`+unusedFile, id, cutoff)
			if err != nil {
				return fmt.Errorf("community: delete unused file: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				gone = append(gone, sums[i])
			}
		}
		return nil
	}, nil)
	if err != nil {
		return 0, err
	}
	for _, sum := range gone {
		s.removeBlob(ctx, sum)
	}
	return len(gone), nil
}

// unusedFile is the condition, on a files row, that no message and no
// avatar uses it.
const unusedFile = `
	AND NOT EXISTS (SELECT 1 FROM message_files mf WHERE mf.file_id = files.id)
	AND NOT EXISTS (SELECT 1 FROM members m WHERE m.avatar_file_id = files.id)`

// sweepFiles runs CollectFiles every FileSweepInterval until Close.
func (s *Service) sweepFiles() {
	defer close(s.files.done)
	t := time.NewTicker(FileSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.files.stop:
			return
		case <-t.C:
			if _, err := s.CollectFiles(context.Background()); err != nil {
				slog.Error("community: collect unused files", slog.Any("err", err))
			}
		}
	}
}

func (s *Service) startFileSweep() {
	s.files.stop, s.files.done = make(chan struct{}), make(chan struct{})
	go s.sweepFiles()
}

func (s *Service) stopFileSweep() {
	if s.files != nil && s.files.stop != nil {
		s.files.stopOnce.Do(func() { close(s.files.stop) })
		<-s.files.done
	}
}

// ContentDisposition is RFC 6266's header for name: an ASCII fallback in
// filename and the UTF-8 name in filename* (RFC 8187's encoding).
func ContentDisposition(kind, name string) string {
	var ascii, ext strings.Builder
	for _, r := range name {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' {
			ascii.WriteByte('_')
		} else {
			ascii.WriteRune(r)
		}
	}
	const attrChar = "!#$&+-.^_`|~"
	for _, b := range []byte(name) {
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte(attrChar, b) >= 0 {
			ext.WriteByte(b)
		} else {
			fmt.Fprintf(&ext, "%%%02X", b)
		}
	}
	return fmt.Sprintf(`%s; filename="%s"; filename*=UTF-8''%s`, kind, ascii.String(), ext.String())
}
