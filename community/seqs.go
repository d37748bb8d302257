package community

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// seqCache is each channel's next seq as this process's writer last handed
// it out, so that numbering a message needs no query: the numbering query
// was 8 % of the room of 100's CPU (docs/BENCHMARKS.md,
// "Numbering without a query"). Only a node alone on SQLite keeps one, and
// only the writer's goroutine touches it; the writer's transaction holds
// SQLite's write lock, so nobody else can store a message while it runs.
//
// A seq handed out to a write that is then rolled back is not taken back:
// seqs have gaps already (deleted messages), and a number too high only
// widens one. A number too low would repeat a seq, which only a message
// stored by another connection could cause: another process's commit
// clears the cache (the writer's data_version check). Deleting a channel
// drops its entry, so that a message racing the deletion still finds the
// channel gone (ErrNotFound) instead of taking a number.
type seqCache map[int64]int64

// number gives ch's next message its seq, in the writer's transaction tx.
// A channel deleted before tx is ErrNotFound.
func (s *Service) number(ctx context.Context, tx *sql.Tx, ch int64) (int64, error) {
	if next, ok := s.seqs[ch]; ok {
		s.seqs[ch] = next + 1
		return next, nil
	}
	var seq int64
	var last []byte
	err := s.db.Row(ctx, tx, nextSeq(s.db), ch).Scan(&seq, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: the channel was deleted", ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("community: number message: %w", err)
	}
	if len(last) == 16 {
		s.ids.seed(uuid.UUID(last))
	}
	if s.seqs != nil {
		s.seqs[ch] = seq + 1
	}
	return seq, nil
}

// forgetSeq drops ch's next seq, in the writer's transaction that deletes ch.
func (s *Service) forgetSeq(ch int64) { delete(s.seqs, ch) }
