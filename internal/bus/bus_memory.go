package bus

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is the Bus of a node alone: a publish is a slice append per
// subscriber, no encoding and no copy, and each subscription drains its
// queue in a goroutine of its own.
type Memory struct {
	mu     sync.RWMutex
	subs   map[string][]*queue
	closed bool

	// holding counts Holds not yet Released; deferred are the queues
	// whose delivery goroutine waits for the last Release.
	holdMu   sync.Mutex
	holding  atomic.Int32
	deferred []*queue
}

// Hold defers the delivery of what is published until Release: a
// publisher about to publish several messages at once (one commit's
// events) makes them reach each subscriber as one run (see Drained), not
// the first alone because its delivery goroutine started at once. Holds
// nest; delivery starts at the last Release, and a Hold must be short.
func (b *Memory) Hold() {
	b.holdMu.Lock()
	b.holding.Add(1)
	b.holdMu.Unlock()
}

// Release ends a Hold.
func (b *Memory) Release() {
	b.holdMu.Lock()
	var start []*queue
	if b.holding.Add(-1) == 0 {
		start, b.deferred = b.deferred, nil
	}
	b.holdMu.Unlock()
	for _, q := range start {
		go q.run()
	}
}

// deferStart reports whether q's delivery goroutine waits for Release;
// q.mu is held and q marked running.
func (b *Memory) deferStart(q *queue) bool {
	if b.holding.Load() == 0 {
		return false
	}
	b.holdMu.Lock()
	defer b.holdMu.Unlock()
	if b.holding.Load() == 0 {
		return false
	}
	b.deferred = append(b.deferred, q)
	return true
}

// NewMemory returns an empty in-process bus.
func NewMemory() *Memory { return &Memory{subs: map[string][]*queue{}} }

// Publish implements Bus.
func (b *Memory) Publish(subject string, m Message) error {
	b.mu.RLock()
	qs := b.subs[subject]
	closed := b.closed
	b.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	for _, q := range qs {
		q.push(m)
	}
	return nil
}

// Subscribe implements Bus; decode is unused.
func (b *Memory) Subscribe(subject string, _ Decoder, fn func(Message)) (Subscription, error) {
	q := newQueue(fn)
	q.bus = b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		q.close()
		return nil, ErrClosed
	}
	b.subs[subject] = append(b.subs[subject], q)
	return &memorySub{b: b, subject: subject, q: q}, nil
}

// Reconnected implements Bus: a node alone never loses its link.
func (b *Memory) Reconnected(func()) {}

// Close implements Bus: it delivers what is queued, then stops.
func (b *Memory) Close() error {
	b.mu.Lock()
	all := b.subs
	b.subs, b.closed = map[string][]*queue{}, true
	b.mu.Unlock()
	for _, qs := range all {
		for _, q := range qs {
			q.close()
		}
	}
	for _, qs := range all {
		for _, q := range qs {
			q.wait()
		}
	}
	return nil
}

type memorySub struct {
	b       *Memory
	subject string
	q       *queue
	once    sync.Once
}

func (s *memorySub) Unsubscribe() error {
	s.once.Do(func() {
		s.b.mu.Lock()
		qs := s.b.subs[s.subject]
		for i, q := range qs {
			if q == s.q {
				// A new slice: Publish iterates the old one without a lock.
				qs = append(append([]*queue(nil), qs[:i]...), qs[i+1:]...)
				break
			}
		}
		if len(qs) == 0 {
			delete(s.b.subs, s.subject)
		} else {
			s.b.subs[s.subject] = qs
		}
		s.b.mu.Unlock()
		s.q.close()
	})
	return nil
}

// queue feeds one subscriber in publish order from a goroutine of its own,
// started when a message arrives and gone once the queue is empty: an idle
// subscription (an Iota user's, one per logged-in user) costs no goroutine
// stack. At most one runs at a time, which keeps the order. The queue is
// unbounded so that publishing never blocks; what bounds it is that
// fan-out (encode once, a channel send per socket) is cheaper than the
// commit that produced each message.
type queue struct {
	mu      sync.Mutex
	items   []Message
	spare   []Message // the last batch's array, reused
	running bool
	closed  bool
	wg      sync.WaitGroup
	deliver func(Message)
	bus     *Memory // nil for a queue of no bus (tests)
}

func newQueue(deliver func(Message)) *queue { return &queue{deliver: deliver} }

func (q *queue) push(m Message) { q.pushAll([]Message{m}) }

// pushAll queues ms at once: they are delivered as one run, with no
// Drained between them.
func (q *queue) pushAll(ms []Message) {
	if len(ms) == 0 {
		return
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, ms...)
	start := !q.running
	if start {
		q.running = true
		q.wg.Add(1)
		if q.bus != nil && q.bus.deferStart(q) {
			start = false
		}
	}
	q.mu.Unlock()
	if start {
		go q.run()
	}
}

func (q *queue) run() {
	defer q.wg.Done()
	drained := false
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			if drained {
				q.running = false
				q.mu.Unlock()
				return
			}
			q.mu.Unlock()
			q.deliver(Drained)
			drained = true
			continue
		}
		drained = false
		batch := q.items
		q.items, q.spare = q.spare[:0], nil
		q.mu.Unlock()
		for _, m := range batch {
			q.deliver(m)
		}
		clear(batch) // the messages are garbage once delivered
		q.mu.Lock()
		q.spare = batch[:0]
		q.mu.Unlock()
	}
}

// close drops later pushes; what is queued is still delivered. It does not
// wait, so a subscriber may unsubscribe from inside its handler.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// wait blocks until what was queued has been delivered.
func (q *queue) wait() { q.wg.Wait() }

// MemoryClaims are the Claims of a node alone.
type MemoryClaims struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]claim
}

type claim struct {
	owner   string
	expires time.Time
}

// NewMemoryClaims returns empty claims on clock now (nil: time.Now).
func NewMemoryClaims(now func() time.Time) *MemoryClaims {
	if now == nil {
		now = time.Now
	}
	return &MemoryClaims{now: now, m: map[string]claim{}}
}

// sweep drops expired claims; called with c.mu held, so the map stays as
// small as the claims alive.
func (c *MemoryClaims) sweep(now time.Time) {
	for k, v := range c.m {
		if !now.Before(v.expires) {
			delete(c.m, k)
		}
	}
}

// Once implements Claims.
func (c *MemoryClaims) Once(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[key]; ok && now.Before(v.expires) {
		return false, nil
	}
	if len(c.m) > 1024 {
		c.sweep(now)
	}
	c.m[key] = claim{expires: now.Add(ttl)}
	return true, nil
}

// Lease implements Claims.
func (c *MemoryClaims) Lease(_ context.Context, key, owner string, ttl time.Duration) (string, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[key]; ok && now.Before(v.expires) && v.owner != owner {
		return v.owner, nil
	}
	c.m[key] = claim{owner: owner, expires: now.Add(ttl)}
	return owner, nil
}

// Release implements Claims.
func (c *MemoryClaims) Release(_ context.Context, key, owner string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[key]; ok && v.owner == owner {
		delete(c.m, key)
	}
	return nil
}
