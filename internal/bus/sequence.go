package bus

import (
	"log/slog"
	"sync"
)

// Sequencer puts a stream of numbered items (a channel's messages, by the
// sequence the database assigned at commit) back in order and fills the
// holes. Items of one key arrive from several nodes in no particular order
// between nodes, and an item may be lost (see Bus): Next delivers each
// sequence number once, in increasing order. On a gap (seq ahead of the
// last delivered + 1) it asks Backfill for the missing ones first — the
// database has them, since an item is published after its commit and a
// later number commits after an earlier one — and an item that arrives
// after its number was delivered (by backfill) is dropped.
//
// Start says where a key stands when the node begins to listen (the
// newest number the database holds); a key not started begins at 0, as a
// channel made after the node began to listen does. Next runs in one
// goroutine (a subscription's); Start may run in another.
type Sequencer[T any] struct {
	mu sync.Mutex
	// Backfill returns the items of key numbered from after+1 to
	// before-1, in order. Nil, or an error, skips the gap with a warning.
	Backfill func(key string, after, before int64) ([]T, error)
	// Seq reads an item's number, for what Backfill returns.
	Seq  func(T) int64
	last map[string]int64
	// Filled counts items delivered by backfill, Dropped items already
	// delivered; tests and metrics read them.
	Filled, Dropped int
}

// Next delivers v (numbered seq) and any items missing before it.
func (s *Sequencer[T]) Next(key string, seq int64, v T, deliver func(T)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]int64{}
	}
	last := s.last[key]
	switch {
	case seq <= last:
		s.Dropped++
		return
	case seq > last+1:
		s.fill(key, last, seq, deliver)
	}
	s.last[key] = seq
	deliver(v)
}

func (s *Sequencer[T]) fill(key string, last, seq int64, deliver func(T)) {
	if s.Backfill == nil {
		slog.Warn("bus: gap in a sequence and no backfill", slog.String("key", key), slog.Int64("after", last), slog.Int64("before", seq))
		return
	}
	items, err := s.Backfill(key, last, seq)
	if err != nil {
		slog.Warn("bus: backfill a gap", slog.String("key", key), slog.Int64("after", last), slog.Int64("before", seq), slog.Any("err", err))
		return
	}
	for _, it := range items {
		n := s.Seq(it)
		if n <= s.last[key] || n >= seq {
			continue
		}
		s.last[key] = n
		s.Filled++
		deliver(it)
	}
}

// Start sets where key stands (its last delivered number) before any
// item of it arrives, from what the database holds when the node starts
// listening.
func (s *Sequencer[T]) Start(key string, last int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]int64{}
	}
	s.last[key] = last
}
