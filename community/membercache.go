package community

import (
	"slices"
	"sync"
)

// memberCache keeps members' rows as Member read them, so that a login's
// re-read of the member at the answer (which a ban, kick or role change
// during the challenge must reach) does not go to the database: that read
// was a twentieth of a returning member's login. It is as fresh as the
// store because on a node alone this process commits every change to a
// member's row, and each such write marks the row (changing, inside its
// transaction); once the transaction is over the writer drops the marked
// rows (committed), before any after hook tells sockets of the change.
//
// A read that raced a change cannot leave a stale row behind: Member notes
// the epoch before its query and keeps the row only if no change ended
// since. A query that saw the row before the commit either stored it
// before committed ran, which drops it, or is refused after. Only a node
// alone has one; on a cluster other nodes write members too.
//
// On SQLite the writes read their actor from it as well (getInWrite):
// each write transaction first asks SQLite whether another connection
// committed since the last one (data_version, see writer), and if one did,
// the cache is dropped before any write reads it. Logins do not ask: a row
// another process changed reaches them at the writer's next transaction.
type memberCache struct {
	mu    sync.Mutex
	rows  map[memberRef]Member
	epoch uint64
	// changed and changedAll are the marks of the transaction in flight.
	changed    []memberRef
	changedAll []string // communities whose members' rows changed at large
}

type memberRef struct{ community, user string }

func newMemberCache() *memberCache {
	return &memberCache{rows: map[memberRef]Member{}}
}

// get is the cached row and the epoch a read that misses must store with.
func (m *memberCache) get(community, user string) (Member, uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	row, ok := m.rows[memberRef{community, user}]
	return row, m.epoch, ok
}

// put keeps a row read from the store after get said epoch.
func (m *memberCache) put(community string, row Member, epoch uint64) {
	m.mu.Lock()
	if epoch == m.epoch {
		m.rows[memberRef{community, row.UserID}] = row
	}
	m.mu.Unlock()
}

// changing marks user's row as written by the transaction in flight.
func (m *memberCache) changing(community, user string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.changed = append(m.changed, memberRef{community, user})
	m.mu.Unlock()
}

// changingAll marks every member row of community (a statement that
// updates rows by role).
func (m *memberCache) changingAll(community string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.changedAll = append(m.changedAll, community)
	m.mu.Unlock()
}

// getInWrite is get for a write transaction of the writer: a row that
// transaction marked is not answered, as the transaction may have changed
// it; the caller reads it inside the transaction.
func (m *memberCache) getInWrite(community, user string) (Member, uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ref := memberRef{community, user}
	if slices.Contains(m.changed, ref) || slices.Contains(m.changedAll, community) {
		return Member{}, m.epoch, false
	}
	row, ok := m.rows[ref]
	return row, m.epoch, ok
}

// dropAll forgets every row: another connection wrote to the store (a
// second process on the same file), and it marks nothing here.
func (m *memberCache) dropAll() {
	m.mu.Lock()
	m.epoch++
	clear(m.rows)
	m.mu.Unlock()
}

// committed drops what the transaction that just ended marked, whether it
// committed or not.
func (m *memberCache) committed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.changed) == 0 && len(m.changedAll) == 0 {
		return
	}
	m.epoch++
	for _, r := range m.changed {
		delete(m.rows, r)
	}
	for _, community := range m.changedAll {
		for r := range m.rows {
			if r.community == community {
				delete(m.rows, r)
			}
		}
	}
	clear(m.changed)
	m.changed, m.changedAll = m.changed[:0], m.changedAll[:0]
}
