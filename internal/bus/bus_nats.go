package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is the Bus of a node in a cluster: a publish reaches this node's
// subscribers as the value (as Memory does) and every other node's through
// one NATS message. The connection never echoes a node's own publishes
// back to it, so each event is delivered once per node.
//
// When the link to NATS drops, nats.go reconnects forever (every
// ReconnectWait, to any server of the URL list) and buffers publishes
// meanwhile (up to its reconnect buffer, 8 MiB); messages other nodes
// published while this one was away are lost to it, so Reconnected
// handlers resynchronise from the database.
type NATS struct {
	local *Memory
	nc    *nats.Conn
	log   *slog.Logger

	mu          sync.Mutex
	reconnected []func()

	// While this node holds its deliveries (Hold), its publishes to the
	// other nodes wait too, per subject in publish order, and the last
	// Release sends each subject's as one NATS message (batches): a
	// commit's events then reach another node as one run, as they reach
	// this node's subscribers, and its sockets write them in one call.
	// holdMu also orders a publish after the held ones it follows.
	holdMu    sync.Mutex
	holds     int
	held      map[string][][]byte
	heldOrder []string
}

// NATSOptions configure DialNATS.
type NATSOptions struct {
	// Name names the connection in NATS monitoring (the node's name).
	Name string
	// Log gets connection state changes; nil means slog.Default().
	Log *slog.Logger
	// ReconnectWait is the pause between reconnect attempts; 0 means 250ms.
	ReconnectWait time.Duration
}

// DialNATS connects to the NATS servers of url (comma-separated
// nats://host:port, as nats.Connect takes them). It fails if none answers
// now; once connected it reconnects by itself.
func DialNATS(url string, o NATSOptions) (*NATS, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.ReconnectWait == 0 {
		o.ReconnectWait = 250 * time.Millisecond
	}
	b := &NATS{local: NewMemory(), log: o.Log, held: map[string][][]byte{}}
	nc, err := nats.Connect(url,
		nats.Name(o.Name),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(o.ReconnectWait),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.log.Warn("nats disconnected; reconnecting", slog.Any("err", err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("nats reconnected", slog.String("server", nc.ConnectedUrlRedacted()))
			b.mu.Lock()
			fns := append([]func(){}, b.reconnected...)
			b.mu.Unlock()
			for _, fn := range fns {
				fn()
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			b.log.Error("nats", slog.String("subject", subj), slog.Any("err", err))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("bus: connect to nats: %w", err)
	}
	b.nc = nc
	return b, nil
}

// checkSubject refuses what NATS would read as wildcards or separators
// inside one token.
func checkSubject(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\r\n*>") {
		return fmt.Errorf("bus: %q is not a subject", s)
	}
	return nil
}

// Publish implements Bus.
func (b *NATS) Publish(subject string, m Message) error {
	if err := b.local.Publish(subject, m); err != nil {
		return err
	}
	data, err := m.Encode()
	if err != nil {
		return fmt.Errorf("bus: encode for %s: %w", subject, err)
	}
	b.holdMu.Lock()
	defer b.holdMu.Unlock()
	if b.holds > 0 {
		if _, ok := b.held[subject]; !ok {
			b.heldOrder = append(b.heldOrder, subject)
		}
		b.held[subject] = append(b.held[subject], data)
		return nil
	}
	if err := b.nc.Publish(subject, data); err != nil {
		return fmt.Errorf("bus: publish %s: %w", subject, err)
	}
	return nil
}

// Hold holds this node's deliveries, as Memory's does, and its publishes
// to the other nodes.
func (b *NATS) Hold() {
	b.holdMu.Lock()
	b.holds++
	b.holdMu.Unlock()
	b.local.Hold()
}

// Release ends a Hold; the last one sends what was held. A publish that
// fails then is logged: its publisher has returned.
func (b *NATS) Release() {
	b.holdMu.Lock()
	if b.holds--; b.holds == 0 {
		b.sendHeldLocked()
	}
	b.holdMu.Unlock()
	b.local.Release()
}

// sendHeldLocked publishes the held encodings; b.holdMu is held.
func (b *NATS) sendHeldLocked() {
	if len(b.heldOrder) == 0 {
		return
	}
	maxPayload := int(b.nc.MaxPayload())
	if maxPayload <= 0 { // not yet told by a server
		maxPayload = 1 << 20
	}
	for _, subject := range b.heldOrder {
		for _, data := range batches(b.held[subject], maxPayload) {
			if err := b.nc.Publish(subject, data); err != nil {
				b.log.Error("bus: publish held events", slog.String("subject", subject), slog.Any("err", err))
			}
		}
		delete(b.held, subject)
	}
	clear(b.heldOrder)
	b.heldOrder = b.heldOrder[:0]
}

// Subscribe implements Bus: local publishes and other nodes' share the
// subscription's one queue, so fn never runs concurrently with itself.
func (b *NATS) Subscribe(subject string, decode Decoder, fn func(Message)) (Subscription, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	ls, err := b.local.Subscribe(subject, nil, fn)
	if err != nil {
		return nil, err
	}
	q := ls.(*memorySub).q
	ns, err := b.nc.Subscribe(subject, func(msg *nats.Msg) {
		if len(msg.Data) > 0 && msg.Data[0] == batchMark {
			b.pushBatch(q, subject, msg.Data, decode)
			return
		}
		m, err := decode(msg.Data)
		if err != nil {
			b.log.Error("bus: drop undecodable message", slog.String("subject", subject), slog.Any("err", err))
			return
		}
		q.push(m)
	})
	if err != nil {
		ls.Unsubscribe()
		return nil, fmt.Errorf("bus: subscribe %s: %w", subject, err)
	}
	// Other nodes' first publishes after this must find the interest in
	// place: Flush waits until the server has the subscription.
	if err := b.nc.FlushTimeout(5 * time.Second); err != nil && !errors.Is(err, nats.ErrConnectionReconnecting) {
		b.log.Warn("bus: subscription not confirmed", slog.String("subject", subject), slog.Any("err", err))
	}
	return &natsSub{local: ls, remote: ns}, nil
}

// pushBatch queues the messages of another node's batch as one run.
func (b *NATS) pushBatch(q *queue, subject string, data []byte, decode Decoder) {
	items, err := splitBatch(data)
	if err != nil {
		b.log.Error("bus: drop malformed batch", slog.String("subject", subject), slog.Int("bytes", len(data)))
		return
	}
	ms := make([]Message, 0, len(items))
	for _, it := range items {
		m, err := decode(it)
		if err != nil {
			b.log.Error("bus: drop undecodable message", slog.String("subject", subject), slog.Any("err", err))
			continue
		}
		ms = append(ms, m)
	}
	q.pushAll(ms)
}

type natsSub struct {
	local  Subscription
	remote *nats.Subscription
}

func (s *natsSub) Unsubscribe() error {
	err := s.remote.Unsubscribe()
	s.local.Unsubscribe()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("bus: unsubscribe %s: %w", s.remote.Subject, err)
	}
	return nil
}

// Reconnected implements Bus.
func (b *NATS) Reconnected(fn func()) {
	b.mu.Lock()
	b.reconnected = append(b.reconnected, fn)
	b.mu.Unlock()
}

// Conn is the NATS connection, for Claims on the same link.
func (b *NATS) Conn() *nats.Conn { return b.nc }

// Close implements Bus: it flushes what this node published, then closes
// the link and the local queues.
func (b *NATS) Close() error {
	b.holdMu.Lock()
	b.sendHeldLocked() // a Hold still open at Close: its publishes were made
	b.holdMu.Unlock()
	b.nc.FlushTimeout(2 * time.Second)
	b.nc.Close()
	return b.local.Close()
}

// NATSClaims are Claims kept in NATS JetStream key-value buckets, one per
// kind and lifetime (iotad_once_<seconds>, iotad_lease_<seconds>), whose
// max age makes keys lapse by themselves. The server needs JetStream
// (nats-server -js).
type NATSClaims struct {
	js jetstream.JetStream

	mu      sync.Mutex
	buckets map[string]jetstream.KeyValue
}

// NewNATSClaims keeps claims over nc.
func NewNATSClaims(nc *nats.Conn) (*NATSClaims, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	return &NATSClaims{js: js, buckets: map[string]jetstream.KeyValue{}}, nil
}

func (c *NATSClaims) bucket(ctx context.Context, kind string, ttl time.Duration) (jetstream.KeyValue, error) {
	secs := max(int64((ttl+time.Second-1)/time.Second), 1)
	name := "iotad_" + kind + "_" + strconv.FormatInt(secs, 10)
	c.mu.Lock()
	defer c.mu.Unlock()
	if kv := c.buckets[name]; kv != nil {
		return kv, nil
	}
	kv, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: name, TTL: time.Duration(secs) * time.Second, History: 1, Storage: jetstream.MemoryStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: key-value bucket %s: %w", name, err)
	}
	c.buckets[name] = kv
	return kv, nil
}

// Once implements Claims with a create-if-absent.
func (c *NATSClaims) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	kv, err := c.bucket(ctx, "once", ttl)
	if err != nil {
		return false, err
	}
	_, err = kv.Create(ctx, key, nil)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	}
	return false, fmt.Errorf("bus: claim once: %w", err)
}

// Lease implements Claims: create if absent, renew (compare-and-set on the
// revision read) if owner's, else answer the holder.
func (c *NATSClaims) Lease(ctx context.Context, key, owner string, ttl time.Duration) (string, error) {
	kv, err := c.bucket(ctx, "lease", ttl)
	if err != nil {
		return "", err
	}
	for range 3 {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := kv.Create(ctx, key, []byte(owner)); err == nil {
				return owner, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return "", fmt.Errorf("bus: lease %s: %w", key, err)
			}
			continue // someone claimed it first: read who
		}
		if err != nil {
			return "", fmt.Errorf("bus: lease %s: %w", key, err)
		}
		if holder := string(e.Value()); holder != owner {
			return holder, nil
		}
		if _, err := kv.Update(ctx, key, []byte(owner), e.Revision()); err == nil {
			return owner, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", fmt.Errorf("bus: renew lease %s: %w", key, err)
		}
	}
	return "", fmt.Errorf("bus: lease %s: contended", key)
}

// Release implements Claims.
func (c *NATSClaims) Release(ctx context.Context, key, owner string) error {
	c.mu.Lock()
	var kvs []jetstream.KeyValue
	for name, kv := range c.buckets {
		if strings.HasPrefix(name, "iotad_lease_") {
			kvs = append(kvs, kv)
		}
	}
	c.mu.Unlock()
	for _, kv := range kvs {
		e, err := kv.Get(ctx, key)
		if err != nil || string(e.Value()) != owner {
			continue
		}
		if err := kv.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("bus: release %s: %w", key, err)
		}
	}
	return nil
}

// Handle answers requests on subject (one node's own subject) with fn.
func (b *NATS) Handle(subject string, fn func(data []byte) ([]byte, error)) (Subscription, error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	s, err := b.nc.Subscribe(subject, func(msg *nats.Msg) {
		out, err := fn(msg.Data)
		if err != nil {
			b.log.Warn("bus: request failed", slog.String("subject", subject), slog.Any("err", err))
			out = nil // an empty answer is a refusal
		}
		msg.Respond(out)
	})
	if err != nil {
		return nil, fmt.Errorf("bus: handle %s: %w", subject, err)
	}
	b.nc.FlushTimeout(5 * time.Second)
	return &remoteSub{s}, nil
}

// Request asks the node that handles subject and waits for its answer.
func (b *NATS) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	msg, err := b.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return nil, fmt.Errorf("bus: request %s: %w", subject, err)
	}
	if len(msg.Data) == 0 {
		return nil, fmt.Errorf("bus: request %s: refused", subject)
	}
	return msg.Data, nil
}

type remoteSub struct{ s *nats.Subscription }

func (r *remoteSub) Unsubscribe() error { return r.s.Unsubscribe() }
