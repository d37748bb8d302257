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
type idGen struct {
	mu     sync.Mutex
	lastMs int64
	seq    uint16
}

func (g *idGen) next(now time.Time) uuid.UUID {
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
	return u
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
