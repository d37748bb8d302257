package community

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/iotad/iotad/internal/db"
)

// Limits of PROTOCOL §2 and §5.3.
const (
	MaxMessageLength = 4000
	MaxPage          = 100
)

// Results of the text codec (PROTOCOL §5.3).
const (
	ResultMessageReceived = "message_received"
	ResultMessageChunk    = "message_chunk"
	ResultMessageLive     = "message_live"
	ResultMessageEdited   = "message_edited"
	ResultMessageDeleted  = "message_deleted"
	ResultTyping          = "typing"
)

// Every send runs these, so they are prepared. The next seq gives the
// message its place in the channel (migration 0004): the database, not
// this process, decides the order, and a seq is never handed out twice,
// not even the newest one's after its message was deleted.
//
// The one query here that differs between the backends. On PostgreSQL
// several nodes write: the bump of channels.last_seq locks the channel's
// row until the commit, so seqs also follow commit order. On SQLite the
// single writer already orders everything, and the bump would cost every
// commit one more page written to the WAL (a third more CPU per
// acknowledged message, measured): the seq follows the newest stored one,
// and last_seq is only a floor that deleting the newest message raises
// (raiseLastSeq).
//
// Both return the newest message's id too, which the new id must sort
// after however far behind this node's clock is (PROTOCOL §9). A node
// alone on SQLite asks once per channel and then counts on (seqs.go).
const (
	nextSeqPostgres = `UPDATE channels SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq, last_id`
	nextSeqSQLite   = `SELECT MAX(c.last_seq, COALESCE(n.seq, 0)) + 1, n.id
		FROM channels c LEFT JOIN (SELECT seq, id FROM messages WHERE channel_id = $1 ORDER BY seq DESC LIMIT 1) n ON 1
		WHERE c.id = $1`
	// recordLastID is nextSeqPostgres' second half, once the id is made;
	// the row is locked already.
	recordLastID  = `UPDATE channels SET last_id = $2 WHERE id = $1`
	insertMessage = `INSERT INTO messages(channel_id, seq, id, sender_id, body, send_time) VALUES($1, $2, $3, $4, $5, $6)`
	insertReply   = `INSERT INTO messages(channel_id, seq, id, sender_id, body, send_time, reply_to, reply_seq) VALUES($1, $2, $3, $4, $5, $6, $7, $8)`
	// raiseLastSeq keeps a deleted message's seq from coming back; on
	// PostgreSQL last_seq is always past it already and nothing changes.
	raiseLastSeq = `UPDATE channels SET last_seq = $2 WHERE id = $1 AND last_seq < $2`
)

// nextSeq is the query that numbers a message on d's backend.
func nextSeq(d *db.DB) string {
	if d.Dialect == db.Postgres {
		return nextSeqPostgres
	}
	return nextSeqSQLite
}

// Message is a text message as the wire shows it.
type Message struct {
	ID       string `json:"message_id"`
	Body     string `json:"message"`
	SendTime int64  `json:"send_time"`
	SenderID string `json:"sender_id"`
	EditedAt *int64 `json:"edited_at,omitempty"`
	// Mentions are the members the message names (mentions.go).
	Mentions        []string `json:"mentions,omitempty"`
	MentionEveryone bool     `json:"mention_everyone,omitempty"`
	// Attachments are the message's files (PROTOCOL §9 "Files and images").
	Attachments []Attachment `json:"attachments,omitempty"`
	// ReplyTo and Reply: see replies.go.
	ReplyTo   string      `json:"reply_to,omitempty"`
	Reply     *ReplyQuote `json:"reply,omitempty"`
	Reactions []Reaction  `json:"reactions,omitempty"`
	// Seq is the message's place in its channel's order (1, 2, …, with
	// gaps where messages were deleted), assigned by the database. It is
	// not on the wire: message_live carries it inside the process, for a
	// node to notice a message it missed.
	Seq int64 `json:"-"`
}

// TypingInterval is how often one user's typing in one channel is passed
// on: a client sends typing on every key press, and each one would be a
// frame to every member.
const TypingInterval = 3 * time.Second

// maxTypingKeys is the size at which typingGate first forgets old keys.
const maxTypingKeys = 4096

type textCodec struct {
	typing typingGate
}

type typingKey struct {
	community string
	channel   int64
	user      string
}

// typingGate remembers when each (community, channel, user) last had a
// typing passed on.
type typingGate struct {
	mu        sync.Mutex
	last      map[typingKey]time.Time
	nextSweep int
}

// pass reports whether a typing at now is the first of its key within
// TypingInterval, and if so records it. A clock that stepped back counts
// as the interval having passed, so typing is not silenced until it
// catches up.
func (g *typingGate) pass(k typingKey, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d := now.Sub(g.last[k]); d >= 0 && d < TypingInterval {
		return false
	}
	if g.last == nil {
		g.last, g.nextSweep = map[typingKey]time.Time{}, maxTypingKeys
	}
	if len(g.last) >= g.nextSweep {
		for key, at := range g.last {
			if d := now.Sub(at); d < 0 || d >= TypingInterval {
				delete(g.last, key)
			}
		}
		g.nextSweep = max(maxTypingKeys, 2*len(g.last))
	}
	g.last[k] = now
	return true
}

func (tc *textCodec) Call(ctx context.Context, call *Call) (*Result, error) {
	switch call.Function {
	case "send_message":
		return sendMessage(ctx, call)
	case "get_messages":
		return getMessages(ctx, call)
	case "edit_message":
		return editMessage(ctx, call)
	case "delete_message":
		return deleteMessage(ctx, call)
	case "typing":
		return nil, tc.typed(ctx, call)
	case "mark_read":
		return markRead(ctx, call)
	case "upload":
		return createUpload(ctx, call)
	case "add_reaction", "remove_reaction":
		return react(ctx, call, call.Function == "add_reaction")
	case "pin_message", "unpin_message":
		return pin(ctx, call, call.Function == "pin_message")
	case "list_pins":
		return listPins(ctx, call)
	}
	return nil, UnknownFunction(CodecText, call.Function)
}

// typed passes a typing on to the others, at most once per user and
// channel per TypingInterval; the rest are dropped without a word, as
// typing has no reply. Only what passes costs a read of the member.
func (tc *textCodec) typed(ctx context.Context, call *Call) error {
	c, m := call.Community, call.Member
	if !call.Allowed(PermPost) {
		return fmt.Errorf("%w: typing needs a higher role", ErrPermission)
	}
	if !tc.typing.pass(typingKey{c.ID, call.Channel.ID, m.UserID}, c.svc.now()) {
		return nil
	}
	if _, err := c.actorIn(ctx, c.svc.db.Read, m, call.Channel, PermPost, "typing"); err != nil {
		return err
	}
	c.publish(Event{Channel: call.Channel.Ref(), Result: ResultTyping,
		Payload: map[string]string{"user_id": m.UserID}, Except: m.UserID})
	return nil
}

func checkBody(body *string) error {
	if body == nil {
		return fmt.Errorf("%w: payload.message is required", ErrInvalidData)
	}
	n := utf8.RuneCountInString(*body)
	if n < 1 || n > MaxMessageLength {
		return fmt.Errorf("%w: a message is 1 to %d characters", ErrInvalidData, MaxMessageLength)
	}
	if !utf8.ValidString(*body) {
		return fmt.Errorf("%w: a message must be valid UTF-8", ErrInvalidData)
	}
	// PostgreSQL's text cannot hold U+0000; refused on both backends, a
	// client sees one behaviour whichever the server uses.
	if strings.IndexByte(*body, 0) >= 0 {
		return fmt.Errorf("%w: a message must not contain U+0000", ErrInvalidData)
	}
	return nil
}

// decodeMessageID reads a payload that is {message_id} alone (delete,
// pin, unpin, mark_read).
func decodeMessageID(call *Call) (uuid.UUID, error) {
	var in struct {
		MessageID *string `json:"message_id"`
	}
	if err := call.Decode(&in); err != nil {
		return uuid.UUID{}, err
	}
	return parseMessageID(in.MessageID)
}

func parseMessageID(s *string) (uuid.UUID, error) {
	if s == nil {
		return uuid.UUID{}, fmt.Errorf("%w: payload.message_id is required", ErrInvalidData)
	}
	id, err := uuid.Parse(*s)
	if err != nil {
		return uuid.UUID{}, fmt.Errorf("%w: no message %q", ErrNotFound, *s)
	}
	return id, nil
}

func sendMessage(ctx context.Context, call *Call) (*Result, error) {
	if !call.Allowed(PermPost) {
		return nil, fmt.Errorf("%w: posting needs a higher role", ErrPermission)
	}
	var in struct {
		Message         *string         `json:"message"`
		Mentions        []string        `json:"mentions"`
		MentionEveryone bool            `json:"mention_everyone"`
		Attachments     json.RawMessage `json:"attachments"`
		ReplyTo         *string         `json:"reply_to"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	attachments, err := ParseAttachments(in.Attachments)
	if err != nil {
		return nil, err
	}
	// A message with files may have no text (PROTOCOL §5.3).
	if len(attachments) > 0 && (in.Message == nil || *in.Message == "") {
		in.Message = new(string)
	} else if err := checkBody(in.Message); err != nil {
		return nil, err
	}
	mentions, err := checkMentions(in.Mentions)
	if err != nil {
		return nil, err
	}
	var replyTo *uuid.UUID
	if in.ReplyTo != nil {
		r, err := parseMessageID(in.ReplyTo)
		if err != nil {
			return nil, err
		}
		replyTo = &r
	}
	c, ch := call.Community, call.Channel
	msg := Message{Body: *in.Message, SenderID: call.Member.UserID, Mentions: mentions, MentionEveryone: in.MentionEveryone}
	var id uuid.UUID
	var replyID []byte
	var replySeq sql.NullInt64
	// The id and time are taken inside the transaction, so on one node ids
	// increase in the order messages are stored and published, as seqs do.
	err = c.svc.w.do(ctx, func(tx *sql.Tx) error {
		actor, err := c.actorIn(ctx, tx, call.Member, ch, PermPost, "posting")
		if err != nil {
			return err
		}
		if err := c.slowModeWait(ctx, tx, ch, actor); err != nil {
			return err
		}
		if replyTo != nil {
			q, seq, err := quoteOf(ctx, tx, ch, *replyTo)
			if err != nil {
				return err
			}
			msg.ReplyTo, msg.Reply = replyTo.String(), q
			replyID, replySeq = replyTo[:], sql.NullInt64{Int64: seq, Valid: true}
		}
		if msg.Seq, err = c.svc.number(ctx, tx, ch.ID); err != nil {
			return err
		}
		if msg.Seq > maxIDSeq {
			return fmt.Errorf("%w: the channel is full", ErrInvalidData)
		}
		now := c.svc.now()
		id = c.svc.ids.next(now, msg.Seq)
		msg.ID, msg.SendTime = id.String(), now.UnixMilli()
		if c.svc.db.Dialect == db.Postgres {
			if _, err := tx.ExecContext(ctx, recordLastID, ch.ID, id[:]); err != nil {
				return fmt.Errorf("community: number message: %w", err)
			}
		}
		if replyTo != nil {
			_, err = c.svc.db.Exec(ctx, tx, insertReply, ch.ID, msg.Seq, id[:], msg.SenderID, msg.Body, msg.SendTime, replyID, replySeq)
		} else {
			_, err = c.svc.db.Exec(ctx, tx, insertMessage, ch.ID, msg.Seq, id[:], msg.SenderID, msg.Body, msg.SendTime)
		}
		if err != nil {
			return fmt.Errorf("community: store message: %w", err)
		}
		if err := c.storeMentions(ctx, tx, ch, actor, &msg); err != nil {
			return err
		}
		msg.Attachments, err = c.attach(ctx, tx, msg.SenderID, ch.ID, msg.Seq, attachments)
		return err
	}, func() {
		c.offsets.added(ch.ID, msg.Seq)
		c.unread.stored(ch.ID, msg.Seq)
		c.svc.search.added()
		c.publish(Event{Channel: ch.Ref(), Result: ResultMessageLive, Payload: &msg, Seq: msg.Seq})
	})
	if err != nil {
		return nil, err
	}
	return &Result{Result: ResultMessageReceived, Payload: map[string]any{"message_id": msg.ID, "send_time": msg.SendTime}}, nil
}

func getMessages(ctx context.Context, call *Call) (*Result, error) {
	var in struct {
		LoadedMessages *int    `json:"loaded_messages"`
		Amount         *int    `json:"amount"`
		Before         *string `json:"before"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if in.Amount == nil || *in.Amount < 1 || *in.Amount > MaxPage {
		return nil, fmt.Errorf("%w: amount must be an integer 1..%d", ErrInvalidData, MaxPage)
	}
	if in.LoadedMessages != nil && in.Before != nil {
		return nil, fmt.Errorf("%w: give loaded_messages or before, not both", ErrInvalidData)
	}
	if in.LoadedMessages != nil && *in.LoadedMessages < 0 {
		return nil, fmt.Errorf("%w: loaded_messages must be an integer >= 0", ErrInvalidData)
	}
	var msgs []Message
	var more bool
	var err error
	if in.Before != nil {
		var before uuid.UUID
		if before, err = parseMessageID(in.Before); err != nil {
			return nil, err
		}
		msgs, more, err = call.Community.messagesBefore(ctx, call.Channel, before, *in.Amount)
	} else {
		offset := 0
		if in.LoadedMessages != nil {
			offset = *in.LoadedMessages
		}
		msgs, more, err = call.Community.messagesAt(ctx, call.Channel, offset, *in.Amount)
	}
	if err != nil {
		return nil, err
	}
	if err := call.Community.attachMentions(ctx, call.Channel, msgs); err != nil {
		return nil, err
	}
	if err := call.Community.loadAttachments(ctx, call.Channel, msgs); err != nil {
		return nil, err
	}
	if err := call.Community.addReactions(ctx, call.Channel, msgs, call.Member.UserID); err != nil {
		return nil, err
	}
	return &Result{Result: ResultMessageChunk, Payload: map[string]any{"messages": msgs, "has_more": more}}, nil
}

// messageColumns are read FROM messageSource: the message m and, when it
// is a reply, the message r it quotes, in the same query.
const (
	messageColumns = `m.seq, m.id, m.sender_id, m.body, m.send_time, m.edited_at, m.reply_to, r.sender_id, r.body`
	messageSource  = `messages m ` + quotedJoin
	quotedJoin     = `LEFT JOIN messages r ON r.channel_id = m.channel_id AND r.seq = m.reply_seq`
)

func scanMessages(rows *sql.Rows, amount int) ([]Message, bool, error) {
	defer rows.Close()
	out := make([]Message, 0, amount)
	for rows.Next() {
		var m Message
		var id []byte
		var edited sql.NullInt64
		var replyTo []byte
		var replySender, replyBody sql.NullString
		if err := rows.Scan(&m.Seq, &id, &m.SenderID, &m.Body, &m.SendTime, &edited, &replyTo, &replySender, &replyBody); err != nil {
			return nil, false, fmt.Errorf("community: read messages: %w", err)
		}
		u, err := uuid.FromBytes(id)
		if err != nil {
			return nil, false, fmt.Errorf("community: stored message id: %w", err)
		}
		m.ID = u.String()
		if edited.Valid {
			m.EditedAt = &edited.Int64
		}
		if err := m.setReply(replyTo, replySender, replyBody); err != nil {
			return nil, false, err
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	out, more := page(out, amount)
	return out, more, nil
}

// page turns up to amount+1 rows read newest first into a page of at most
// amount, newest last, and whether older rows exist.
func page[T any](rows []T, amount int) ([]T, bool) {
	more := len(rows) > amount
	if more {
		rows = rows[:amount]
	}
	slices.Reverse(rows)
	return rows, more
}

func (c *Community) messagesBefore(ctx context.Context, ch *Channel, before uuid.UUID, amount int) ([]Message, bool, error) {
	seq, err := seqOf(ctx, c.svc.db.Read, ch, before)
	if err != nil {
		return nil, false, err
	}
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT `+messageColumns+` FROM `+messageSource+`
		WHERE m.channel_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3`, ch.ID, seq, amount+1)
	if err != nil {
		return nil, false, fmt.Errorf("community: read messages: %w", err)
	}
	return scanMessages(rows, amount)
}

func (c *Community) messagesAt(ctx context.Context, ch *Channel, offset, amount int) ([]Message, bool, error) {
	if offset >= deepOffset {
		idx, err := c.offsetIndex(ctx, ch.ID)
		if err != nil {
			return nil, false, err
		}
		newest, ok := idx.newestAt(offset)
		if !ok {
			return []Message{}, false, nil
		}
		rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT `+messageColumns+` FROM `+messageSource+`
			WHERE m.channel_id = $1 AND m.seq <= $2 ORDER BY m.seq DESC LIMIT $3`, ch.ID, newest, amount+1)
		if err != nil {
			return nil, false, fmt.Errorf("community: read messages: %w", err)
		}
		return scanMessages(rows, amount)
	}
	rows, err := c.svc.db.Read.QueryContext(ctx, `SELECT `+messageColumns+` FROM `+messageSource+`
		WHERE m.channel_id = $1 ORDER BY m.seq DESC LIMIT $2 OFFSET $3`, ch.ID, amount+1, offset)
	if err != nil {
		return nil, false, fmt.Errorf("community: read messages: %w", err)
	}
	return scanMessages(rows, amount)
}

// seqOf finds the seq of the message with id: the one the id carries
// (ids.go), or for an id made before migration 0004, message_ids'.
func seqOf(ctx context.Context, q db.Queryer, ch *Channel, id uuid.UUID) (int64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `SELECT seq FROM messages WHERE channel_id = $1 AND seq = $2 AND id = $3`, ch.ID, idSeq(id), id[:]).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		err = q.QueryRowContext(ctx, `SELECT seq FROM message_ids WHERE channel_id = $1 AND id = $2`, ch.ID, id[:]).Scan(&seq)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: no message %s in this channel", ErrNotFound, id)
	}
	if err != nil {
		return 0, fmt.Errorf("community: find message: %w", err)
	}
	return seq, nil
}

// senderOf reads who sent a message and its seq, inside a write
// transaction.
func senderOf(ctx context.Context, tx *sql.Tx, ch *Channel, id uuid.UUID) (string, int64, error) {
	seq, err := seqOf(ctx, tx, ch, id)
	if err != nil {
		return "", 0, err
	}
	var sender string
	err = tx.QueryRowContext(ctx, `SELECT sender_id FROM messages WHERE channel_id = $1 AND seq = $2`, ch.ID, seq).Scan(&sender)
	if err != nil {
		return "", 0, fmt.Errorf("community: read message: %w", err)
	}
	return sender, seq, nil
}

func editMessage(ctx context.Context, call *Call) (*Result, error) {
	if !call.Allowed(PermPost) {
		return nil, fmt.Errorf("%w: editing needs a higher role", ErrPermission)
	}
	var in struct {
		MessageID *string `json:"message_id"`
		Message   *string `json:"message"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	id, err := parseMessageID(in.MessageID)
	if err != nil {
		return nil, err
	}
	if err := checkBody(in.Message); err != nil {
		return nil, err
	}
	c, ch := call.Community, call.Channel
	var editedAt int64
	err = c.svc.w.do(ctx, func(tx *sql.Tx) error {
		if _, err := c.actorIn(ctx, tx, call.Member, ch, PermPost, "editing"); err != nil {
			return err
		}
		sender, seq, err := senderOf(ctx, tx, ch, id)
		if err != nil {
			return err
		}
		if sender != call.Member.UserID {
			return fmt.Errorf("%w: only the sender may edit a message", ErrPermission)
		}
		editedAt = c.svc.now().UnixMilli()
		_, err = tx.ExecContext(ctx, `UPDATE messages SET body = $1, edited_at = $2 WHERE channel_id = $3 AND seq = $4`,
			*in.Message, editedAt, ch.ID, seq)
		return err
	}, func() {
		c.publish(Event{Channel: ch.Ref(), Result: ResultMessageEdited,
			Payload: map[string]any{"message_id": id.String(), "message": *in.Message, "edited_at": editedAt}})
	})
	if err != nil {
		return nil, err
	}
	return &Result{Result: ResultMessageEdited, Payload: map[string]any{"message_id": id.String(), "edited_at": editedAt}}, nil
}

func deleteMessage(ctx context.Context, call *Call) (*Result, error) {
	if !call.Allowed(PermPost) {
		return nil, fmt.Errorf("%w: deleting needs a higher role", ErrPermission)
	}
	id, err := decodeMessageID(call)
	if err != nil {
		return nil, err
	}
	c, ch := call.Community, call.Channel
	var seq int64
	var unpinned bool
	err = c.svc.w.do(ctx, func(tx *sql.Tx) error {
		actor, err := c.actorIn(ctx, tx, call.Member, ch, PermPost, "deleting")
		if err != nil {
			return err
		}
		var sender string
		sender, seq, err = senderOf(ctx, tx, ch, id)
		if err != nil {
			return err
		}
		others := sender != call.Member.UserID
		if others && !c.svc.perms.Allows(actor.Role, PermDeleteAny) {
			return fmt.Errorf("%w: only moderators may delete others' messages", ErrPermission)
		}
		if err := c.releaseFiles(ctx, tx, ch.ID, seq); err != nil {
			return err
		}
		if unpinned, err = dropReactionsAndPin(ctx, tx, ch, seq); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE channel_id = $1 AND seq = $2`, ch.ID, seq); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM message_ids WHERE channel_id = $1 AND id = $2`, ch.ID, id[:]); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, raiseLastSeq, ch.ID, seq); err != nil {
			return err
		}
		if others {
			return c.audit(ctx, tx, call.Member.UserID, "delete_message", id.String())
		}
		return nil
	}, func() {
		c.offsets.removed(ch.ID, seq)
		c.publish(Event{Channel: ch.Ref(), Result: ResultMessageDeleted, Payload: map[string]string{"message_id": id.String()}, Seq: seq})
		if unpinned {
			c.publish(Event{Channel: ch.Ref(), Result: ResultPinsChanged, Payload: pinsChanged{MessageID: id.String(), PinnedBy: call.Member.UserID}})
		}
	})
	if err != nil {
		return nil, err
	}
	return &Result{Result: ResultMessageDeleted, Payload: map[string]string{"message_id": id.String()}}, nil
}
