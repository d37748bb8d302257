package community

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/iotad/iotad/internal/db"
)

// Limits of search (PROTOCOL §9 "Search"). Together with the socket's
// request limiter they bound what one member's searching costs.
const (
	MaxSearchQuery      = 200 // code points
	MaxSearchTerms      = 16
	MaxSearchAmount     = 50
	DefaultSearchAmount = 25
	// searchTimeout ends a search that would read too much of the index
	// (a common word by an author who rarely uses it); it runs on the read
	// pool, so it never holds the writer meanwhile.
	searchTimeout = 2 * time.Second
)

// SearchHit is one message a search found, with the channel it is in.
type SearchHit struct {
	Message
	Path string `json:"path"`
	Name string `json:"name"`
}

// searchTerms splits a query into the words it searches for: runs of
// letters, marks and digits, each once. Everything else separates words and
// is never passed on as query syntax. Both engines split stored text at
// least as finely (FTS5's unicode61, PostgreSQL's parser), and a word that
// one of them splits further still matches as a phrase.
func searchTerms(query string) ([]string, error) {
	if !utf8.ValidString(query) {
		return nil, fmt.Errorf("%w: query must be valid UTF-8", ErrInvalidData)
	}
	if n := utf8.RuneCountInString(query); n < 1 || n > MaxSearchQuery {
		return nil, fmt.Errorf("%w: query is 1 to %d characters", ErrInvalidData, MaxSearchQuery)
	}
	var terms []string
	for _, word := range strings.FieldsFunc(query, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) && !unicode.IsNumber(r)
	}) {
		// A word of marks alone (a stray combining accent) is no word.
		if strings.IndexFunc(word, func(r rune) bool { return !unicode.IsMark(r) }) < 0 {
			continue
		}
		if !slices.Contains(terms, word) {
			terms = append(terms, word)
		}
	}
	if len(terms) == 0 {
		return nil, fmt.Errorf("%w: query has no words to search for", ErrInvalidData)
	}
	if len(terms) > MaxSearchTerms {
		return nil, fmt.Errorf("%w: query has more than %d words", ErrInvalidData, MaxSearchTerms)
	}
	return terms, nil
}

// ftsQuery is the FTS5 expression matching every term: each term a quoted
// string, so nothing a member types is ever FTS5 syntax.
func ftsQuery(terms []string) string {
	quoted := make([]string, len(terms))
	for i, t := range terms {
		quoted[i] = `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
	}
	return strings.Join(quoted, " AND ")
}

// readableChannels is every text channel member may read, in id order.
// This is the one place that decides it: the text channels member's role
// may view (overrides.go).
func (c *Community) readableChannels(member Member) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := slices.DeleteFunc(c.textChannelsLocked(), func(id int64) bool { return !c.channels[id].viewers.Has(member.Role) })
	slices.Sort(ids)
	return ids
}

// The queries of search, one per engine: FTS5 against SQLite's
// message_search rids, a tsvector against PostgreSQL's search_id (the
// migration 0006 pair). Both read newest first by that order and stop at
// amount+1 rows; the channel set is a JSON array on SQLite and an array
// on PostgreSQL. CROSS JOIN keeps SQLite walking the index newest first
// rather than starting from the channel list.
const (
	searchSQLite = `SELECT s.rid, s.channel_id, m.seq, m.id, m.sender_id, m.body, m.send_time, m.edited_at
		FROM messages_fts
		CROSS JOIN message_search s ON s.rid = messages_fts.rowid
		CROSS JOIN messages m ON m.channel_id = s.channel_id AND m.seq = s.seq
		WHERE messages_fts MATCH $1 AND messages_fts.rowid < $2
			AND s.channel_id IN (SELECT value FROM json_each($3))
			AND ($4 = '' OR m.sender_id = $4)
		ORDER BY messages_fts.rowid DESC LIMIT $5`
	searchPostgres = `SELECT m.search_id, m.channel_id, m.seq, m.id, m.sender_id, m.body, m.send_time, m.edited_at
		FROM messages m
		WHERE m.search_words @@ plainto_tsquery('simple', $1) AND m.search_id < $2
			AND m.channel_id = ANY($3) AND ($4 = '' OR m.sender_id = $4)
		ORDER BY m.search_id DESC LIMIT $5`
	// The order of the message id names: by the seq it carries, or for an
	// id made before migration 0004, message_ids'.
	searchOrderSQLite = `SELECT s.rid FROM messages m JOIN message_search s ON s.channel_id = m.channel_id AND s.seq = m.seq
		WHERE m.channel_id IN (SELECT value FROM json_each($1)) AND m.seq = $2 AND m.id = $3`
	searchOrderOldSQLite = `SELECT s.rid FROM message_ids i JOIN message_search s ON s.channel_id = i.channel_id AND s.seq = i.seq
		WHERE i.channel_id IN (SELECT value FROM json_each($1)) AND i.id = $2`
	searchOrderPostgres    = `SELECT search_id FROM messages WHERE channel_id = ANY($1) AND seq = $2 AND id = $3`
	searchOrderOldPostgres = `SELECT m.search_id FROM message_ids i JOIN messages m ON m.channel_id = i.channel_id AND m.seq = i.seq
		WHERE i.channel_id = ANY($1) AND i.id = $2`
)

// channelSet is ids as the search queries of d's engine take a set.
func channelSet(d *db.DB, ids []int64) any {
	if d.Dialect == db.Postgres {
		return ids
	}
	b, _ := json.Marshal(ids)
	return string(b)
}

// Search runs the root function search (PROTOCOL §9 "Search") for actor:
// the messages, newest last, of the channels actor may read whose text has
// every word of the query, and whether older ones exist.
func (c *Community) Search(ctx context.Context, actor Member, payload json.RawMessage) ([]SearchHit, bool, error) {
	var in struct {
		Query    *string `json:"query"`
		Path     *string `json:"path"`
		Name     *string `json:"name"`
		AuthorID *string `json:"author_id"`
		Before   *string `json:"before"`
		Amount   *int    `json:"amount"`
	}
	if err := (&Call{Payload: payload}).Decode(&in); err != nil {
		return nil, false, err
	}
	if in.Query == nil {
		return nil, false, fmt.Errorf("%w: payload.query is required", ErrInvalidData)
	}
	terms, err := searchTerms(*in.Query)
	if err != nil {
		return nil, false, err
	}
	amount := DefaultSearchAmount
	if in.Amount != nil {
		if *in.Amount < 1 || *in.Amount > MaxSearchAmount {
			return nil, false, fmt.Errorf("%w: amount must be an integer 1..%d", ErrInvalidData, MaxSearchAmount)
		}
		amount = *in.Amount
	}
	author := ""
	if in.AuthorID != nil {
		author = *in.AuthorID
		if author == "" || len(author) > 128 || strings.IndexByte(author, 0) >= 0 {
			return nil, false, fmt.Errorf("%w: author_id must be 1 to 128 characters", ErrInvalidData)
		}
	}
	actor, err = c.actorNow(ctx, c.svc.db.Read, actor, "", "searching")
	if err != nil {
		return nil, false, err
	}
	channels := c.readableChannels(actor)
	path := ""
	if in.Path != nil {
		path = *in.Path
	}
	if in.Name != nil {
		ch, err := c.FindAs(actor.Role, path, *in.Name)
		if err != nil || !slices.Contains(channels, ch.ID) {
			if err == nil && ch.Codec != CodecText {
				return nil, false, fmt.Errorf("%w: only text channels can be searched", ErrInvalidData)
			}
			return nil, false, fmt.Errorf("%w: no channel %q in %q", ErrNotFound, *in.Name, path)
		}
		channels = []int64{ch.ID}
	} else if path != "" {
		return nil, false, fmt.Errorf("%w: path needs name", ErrInvalidData)
	}
	if len(channels) == 0 {
		return []SearchHit{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, searchTimeout)
	defer cancel()
	if err := c.svc.search.catchUp(ctx); err != nil {
		return nil, false, searchFailed(ctx, err)
	}
	set := channelSet(c.svc.db, channels)
	before := int64(1<<63 - 1)
	if in.Before != nil {
		if before, err = c.searchOrder(ctx, set, *in.Before); err != nil {
			return nil, false, err
		}
	}
	q, match := searchSQLite, ftsQuery(terms)
	if c.svc.db.Dialect == db.Postgres {
		q, match = searchPostgres, strings.Join(terms, " ")
	}
	rows, err := c.svc.db.Read.QueryContext(ctx, q, c.svc.db.PlannedPerCall(match, before, set, author, amount+1)...)
	if err != nil {
		return nil, false, searchFailed(ctx, err)
	}
	hits, err := c.scanHits(rows, amount)
	if err != nil {
		return nil, false, searchFailed(ctx, err)
	}
	hits, more := page(hits, amount)
	return hits, more, nil
}

// searchFailed words a failed search: one that ran out of time is the
// member's to narrow, anything else is the server's.
func searchFailed(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: the search took too long; add words, a channel or an author", ErrInvalidData)
	}
	return fmt.Errorf("community: search: %w", err)
}

// searchOrder is the place in search order of the message whose id is
// before, in one of the channels of set.
func (c *Community) searchOrder(ctx context.Context, set any, before string) (int64, error) {
	id, err := uuid.Parse(before)
	if err != nil {
		return 0, fmt.Errorf("%w: no message %q", ErrNotFound, before)
	}
	byID, old := searchOrderSQLite, searchOrderOldSQLite
	if c.svc.db.Dialect == db.Postgres {
		byID, old = searchOrderPostgres, searchOrderOldPostgres
	}
	var order int64
	err = c.svc.db.Read.QueryRowContext(ctx, byID, set, idSeq(id), id[:]).Scan(&order)
	if errors.Is(err, sql.ErrNoRows) {
		err = c.svc.db.Read.QueryRowContext(ctx, old, set, id[:]).Scan(&order)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: no message %s", ErrNotFound, id)
	}
	if err != nil {
		return 0, searchFailed(ctx, err)
	}
	return order, nil
}

func (c *Community) scanHits(rows *sql.Rows, amount int) ([]SearchHit, error) {
	defer rows.Close()
	out := make([]SearchHit, 0, amount+1)
	for rows.Next() {
		var h SearchHit
		var order, channel int64
		var id []byte
		var edited sql.NullInt64
		if err := rows.Scan(&order, &channel, &h.Seq, &id, &h.SenderID, &h.Body, &h.SendTime, &edited); err != nil {
			return nil, err
		}
		u, err := uuid.FromBytes(id)
		if err != nil {
			return nil, fmt.Errorf("stored message id: %w", err)
		}
		h.ID = u.String()
		if edited.Valid {
			h.EditedAt = &edited.Int64
		}
		c.mu.Lock()
		ch := c.channels[channel]
		if ch != nil {
			h.Path, h.Name = ch.Path(), ch.Name
		}
		c.mu.Unlock()
		if ch == nil {
			continue // deleted since the query began
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
