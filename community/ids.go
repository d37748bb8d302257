package community

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/google/uuid"
)

// idGen makes UUIDv7s that strictly increase across the process, even many
// within one millisecond or when the clock steps back: the 12-bit rand_a
// field counts, and when it overflows the timestamp borrows from the future.
//
// A message id also carries the message's seq in its channel, so that the
// id alone finds the row on the (channel_id, seq) key, with no second index
// to keep on every insert (one more B-tree page per commit, a third more
// CPU per message on SQLite, measured):
//
//	bytes 0–5   unix_ts_ms (48 bits)
//	bytes 6–7   version 7 (4 bits), the in-process counter (12 bits)
//	byte  8     variant 10 (2 bits), random (6 bits)
//	bytes 9–13  seq (40 bits)
//	bytes 14–15 random (16 bits)
//
// RFC 9562 leaves the layout of rand_b to the implementation; a seq is
// unique in its channel, so ids stay unique however many nodes make them.
// Ids made before migration 0004 have random bytes there: for those,
// message_ids (the migration's table) maps id to seq.
type idGen struct {
	mu     sync.Mutex
	lastMs int64
	seq    uint16
}

func (g *idGen) next(now time.Time, msgSeq int64) uuid.UUID {
	g.mu.Lock()
	ms := now.UnixMilli()
	if ms <= g.lastMs {
		ms = g.lastMs
		g.seq++
		if g.seq > 0xfff {
			ms++
			g.seq = 0
		}
	} else {
		g.seq = 0
	}
	g.lastMs = ms
	seq := g.seq
	g.mu.Unlock()

	var u uuid.UUID
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(ms))
	copy(u[0:6], ts[2:8])
	u[6] = 0x70 | byte(seq>>8)
	u[7] = byte(seq)
	rand.Read(u[8:])
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], uint64(msgSeq))
	copy(u[9:14], s[3:8])
	return u
}

// maxIDSeq is the largest seq an id can carry (40 bits).
const maxIDSeq = 1<<40 - 1

// idSeq is the seq an id made by next carries. For an id made before
// migration 0004 it is noise, which no row matches together with the id.
func idSeq(id uuid.UUID) int64 {
	var s [8]byte
	copy(s[3:8], id[9:14])
	return int64(binary.BigEndian.Uint64(s[:]))
}

// seed makes the ids that follow sort after newest, the newest id stored.
// The generator's memory ends with the process; without the seed, a
// restart with the clock stepped back would issue ids that sort before
// messages already sent. Paging goes by seq (migration 0004), which the
// database assigns; the seed keeps one node's ids in that same order for
// clients that sort by id.
func (g *idGen) seed(newest uuid.UUID) {
	ms := int64(binary.BigEndian.Uint64(append([]byte{0, 0}, newest[0:6]...)))
	seq := uint16(newest[6]&0x0f)<<8 | uint16(newest[7])
	g.mu.Lock()
	if ms > g.lastMs || ms == g.lastMs && seq > g.seq {
		g.lastMs, g.seq = ms, seq
	}
	g.mu.Unlock()
}
