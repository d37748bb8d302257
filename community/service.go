// Package community is the direct community of the seed: members and their
// roles, invites, the channel tree ("interactables"), text channels, voice
// state and the audit log. It knows nothing of WebSockets: the api package
// turns its calls and events into frames.
package community

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/atomicfile"
	"github.com/iotad/iotad/internal/db"
)

// Errors of this package; api maps them to wire error types.
var (
	ErrNotFound      = errors.New("not found")
	ErrInvalidData   = errors.New("invalid data")
	ErrConflict      = errors.New("conflict")
	ErrPermission    = errors.New("not allowed")
	ErrNotMember     = errors.New("not a member of this community")
	ErrBanned        = errors.New("banned from this community")
	ErrBadInvite     = errors.New("invite is spent, expired, revoked, meant for someone else or unknown")
	ErrKeyMismatch   = errors.New("this user id is a member with another key")
	ErrNotInCall     = errors.New("not in a call")
	ErrBadCallTicket = errors.New("call ticket is forged, expired, used or for another channel")
)

//go:embed migrations/*.sql
var migrations embed.FS

// Service holds every community of this process.
type Service struct {
	db     *db.DB
	keyDir string
	now    func() time.Time
	w      *writer
	ids    idGen
	codecs *Registry
	perms  Permissions

	iceServers   func(userID string) []ICEServer
	ticketSecret []byte
	ticketsMu    sync.Mutex
	usedTickets  map[[16]byte]time.Time

	mu    sync.RWMutex
	byID  map[string]*Community
	order []*Community
}

// Options configure a Service.
type Options struct {
	// KeyDir holds each community's private key file.
	KeyDir string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Codecs are the channel codecs; nil means NewRegistry() (the built-ins).
	Codecs *Registry
	// Permissions is the role table; nil means DefaultPermissions().
	Permissions Permissions
	// ICEServers lists the STUN/TURN servers handed to a user joining a
	// call (TURN credentials may be per user).
	ICEServers func(userID string) []ICEServer
}

// Open migrates the community tables in d and loads every community.
func Open(ctx context.Context, d *db.DB, opts Options) (*Service, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx, "community", sub); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Codecs == nil {
		opts.Codecs = NewRegistry()
	}
	if opts.Permissions == nil {
		opts.Permissions = DefaultPermissions()
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	s := &Service{
		db: d, keyDir: opts.KeyDir, now: opts.Now, codecs: opts.Codecs, perms: opts.Permissions,
		iceServers: opts.ICEServers, ticketSecret: secret, usedTickets: map[[16]byte]time.Time{},
		byID: map[string]*Community{},
	}
	rows, err := d.Read.QueryContext(ctx, `SELECT id, name, public_key, listen_addr, public_addr, served_addr FROM communities ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("community: load: %w", err)
	}
	var loaded []*Community
	for rows.Next() {
		c := &Community{svc: s}
		var pub []byte
		if err := rows.Scan(&c.ID, &c.Name, &pub, &c.ListenAddr, &c.PublicAddr, &c.ServedAddr); err != nil {
			rows.Close()
			return nil, fmt.Errorf("community: load: %w", err)
		}
		copy(c.Public[:], pub)
		loaded = append(loaded, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := s.load(ctx, loaded); err != nil {
		for _, c := range s.order {
			c.events.close()
		}
		return nil, err
	}
	// The statements every write runs: its actor's row, and for a message
	// the insert. Prepared now, while no transaction holds the writer.
	if err := d.PrepareWrites(ctx, memberQuery, nextSeq(d), insertMessage, savepoint, rollbackTo, release); err != nil {
		for _, c := range s.order {
			c.events.close()
		}
		return nil, err
	}
	s.w = newWriter(d)
	return s, nil
}

func (s *Service) load(ctx context.Context, loaded []*Community) error {
	for _, c := range loaded {
		var err error
		if c.priv, err = s.readKey(c.ID); err != nil {
			return err
		}
		if c.priv.Public() != c.Public {
			return fmt.Errorf("community: the key file of %s does not match its public key", c.ID)
		}
		if err := c.loadTree(ctx); err != nil {
			return err
		}
		c.init()
		s.byID[c.ID] = c
		s.order = append(s.order, c)
	}
	return s.seedIDs(ctx)
}

// seedIDs starts the message id generator after the newest stored id, so
// that on one node ids keep increasing with seq across a restart with the
// clock stepped back. One index seek per channel: the messages key is
// (channel_id, seq).
func (s *Service) seedIDs(ctx context.Context) error {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT (SELECT m.id FROM messages m WHERE m.channel_id = c.id ORDER BY m.seq DESC LIMIT 1)
		FROM channels c`)
	if err != nil {
		return fmt.Errorf("community: newest message id: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return fmt.Errorf("community: newest message id: %w", err)
		}
		if len(raw) == 16 {
			s.ids.seed(uuid.UUID(raw))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("community: newest message id: %w", err)
	}
	return nil
}

// Collectors are the store's metrics (group commit latency and batch
// size), for the server's registry.
func (s *Service) Collectors() []prometheus.Collector { return s.w.collectors() }

// SetICEServers sets what call tickets hand out as ice_servers.
func (s *Service) SetICEServers(fn func(userID string) []ICEServer) { s.iceServers = fn }

// Close stops the writer after the writes already queued, then each
// community's dispatcher after the events already published; events
// published later are dropped.
func (s *Service) Close() {
	s.w.close()
	for _, c := range s.All() {
		c.events.close()
	}
}

// Permissions is the role table in force.
func (s *Service) Permissions() Permissions { return s.perms }

// Codecs is the codec registry.
func (s *Service) Codecs() *Registry { return s.codecs }

func (s *Service) keyFile(id string) string { return filepath.Join(s.keyDir, "community-"+id+".key") }

func (s *Service) readKey(id string) (icrypto.PrivateKey, error) {
	raw, err := os.ReadFile(s.keyFile(id))
	if err != nil {
		return icrypto.PrivateKey{}, fmt.Errorf("community: key of %s: %w", id, err)
	}
	_, priv, err := icrypto.ParseKeyFile(raw)
	if err != nil {
		return icrypto.PrivateKey{}, fmt.Errorf("community: key of %s: %w", id, err)
	}
	return priv, nil
}

// Create makes a new community with a fresh identity key, whose private
// half goes to a 0600 file in the key directory, written durably (see
// atomicfile) before the community's row commits.
func (s *Service) Create(ctx context.Context, name string) (*Community, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	pub, priv, err := icrypto.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &Community{svc: s, ID: uuid.NewString(), Name: name, Public: pub, priv: priv}
	if err := os.MkdirAll(s.keyDir, 0o700); err != nil {
		return nil, fmt.Errorf("community: key directory: %w", err)
	}
	// The key is on disk, whole, before the row that names it commits:
	// a crash in between leaves an unused key file, never a community
	// whose key is missing or torn.
	if err := atomicfile.Create(s.keyFile(c.ID), icrypto.FormatKeyFile(c.ID, priv), 0o600); err != nil {
		return nil, fmt.Errorf("community: key file: %w", err)
	}
	err = s.w.do(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO communities(id, name, public_key, created_at) VALUES($1, $2, $3, $4)`,
			c.ID, c.Name, pub[:], s.now().UnixMilli())
		return err
	}, nil)
	if err != nil {
		os.Remove(s.keyFile(c.ID))
		return nil, fmt.Errorf("community: create: %w", err)
	}
	c.root = &Channel{Codec: CodecCategory}
	c.channels = map[int64]*Channel{}
	c.init()
	s.mu.Lock()
	s.byID[c.ID] = c
	s.order = append(s.order, c)
	s.mu.Unlock()
	return c, nil
}

// SetAddresses sets where c listens and what its invites name (see the
// Community fields). Call it before serving: a running server reads the
// fields without a lock.
func (s *Service) SetAddresses(ctx context.Context, c *Community, listen, public string) error {
	for _, a := range []string{listen, public} {
		if a == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("%w: %q is not host:port", ErrInvalidData, a)
		}
	}
	s.mu.RLock()
	first := len(s.order) > 0 && s.order[0] == c
	var taken string
	for _, o := range s.order {
		if o != c && listen != "" && sameListenAddr(o.ListenAddr, listen) {
			taken = o.Name
		}
	}
	s.mu.RUnlock()
	if listen != "" && first {
		return fmt.Errorf("%w: the first community is served on iotad's main address (serve --addr)", ErrInvalidData)
	}
	if listen == "" && !first {
		return fmt.Errorf("%w: only the first community shares iotad's main address; %q needs an address of its own", ErrInvalidData, c.Name)
	}
	if taken != "" {
		return fmt.Errorf("%w: %q already listens on %s", ErrConflict, taken, listen)
	}
	err := s.w.do(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE communities SET listen_addr = $1, public_addr = $2 WHERE id = $3`, listen, public, c.ID)
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("community: set addresses: %w", err)
	}
	c.ListenAddr, c.PublicAddr = listen, public
	return nil
}

// SetServedAddr records the address invites name while iotad serve runs,
// so that the CLI prints the same invite text.
func (s *Service) SetServedAddr(ctx context.Context, c *Community, addr string) error {
	if c.ServedAddr == addr {
		return nil
	}
	err := s.w.do(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE communities SET served_addr = $1 WHERE id = $2`, addr, c.ID)
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("community: record served address: %w", err)
	}
	c.ServedAddr = addr
	return nil
}

// NextListenAddr proposes a port for a new community: the first from 1985
// (next to the seed's 1984) that no community listens on.
func (s *Service) NextListenAddr() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	used := map[string]bool{}
	for _, c := range s.order {
		if _, p, err := net.SplitHostPort(c.ListenAddr); err == nil {
			used[p] = true
		}
	}
	port := 1985
	for used[strconv.Itoa(port)] {
		port++
	}
	return ":" + strconv.Itoa(port)
}

// sameListenAddr: ":1985" and "0.0.0.0:1985" bind the same port, so two
// addresses clash when their ports match and either host is a wildcard
// or the hosts are equal.
func sameListenAddr(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ah == bh || wild(ah) || wild(bh)
}

// Get returns a community by id.
func (s *Service) Get(id string) (*Community, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.byID[id]
	if c == nil {
		return nil, fmt.Errorf("%w: no community %q", ErrNotFound, id)
	}
	return c, nil
}

// All lists the communities, oldest first.
func (s *Service) All() []*Community {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Community(nil), s.order...)
}

// Community is one direct community.
type Community struct {
	svc    *Service
	ID     string
	Name   string
	Public icrypto.PublicKey
	priv   icrypto.PrivateKey
	// ListenAddr is the community's own host:port; "" means iotad's main
	// listener, which only the first community may share.
	ListenAddr string
	// PublicAddr is the host:port invites name; "" lets iotad serve derive
	// it. ServedAddr is the one the running (or last) iotad serve used.
	PublicAddr, ServedAddr string

	// treeMu orders tree mutations; mu guards the tree, voice state and
	// the encoded-tree cache.
	treeMu   sync.Mutex
	mu       sync.Mutex
	root     *Channel
	channels map[int64]*Channel
	voice    map[int64]*voiceRoom
	treeJSON []byte

	offsets offsetIndexes

	events      *dispatcher
	listenersMu sync.RWMutex
	listeners   []func(Event)
}

func (c *Community) init() {
	c.voice = map[int64]*voiceRoom{}
	c.events = newDispatcher(c.deliver)
}

// Subscribe registers fn for every event of the community. fn runs in the
// community's dispatcher goroutine, one event at a time, in the order the
// events were published (for writes, their commit order), possibly after
// the write that published it has returned. A slow fn delays the
// community's later events, never its writes.
func (c *Community) Subscribe(fn func(Event)) {
	c.listenersMu.Lock()
	c.listeners = append(c.listeners, fn)
	c.listenersMu.Unlock()
}

// publish queues e for the listeners and returns at once: the writer
// publishes from its after-commit hooks and must not wait for fan-out.
func (c *Community) publish(e Event) { c.events.publish(e) }

func (c *Community) deliver(e Event) {
	c.listenersMu.RLock()
	ls := c.listeners
	c.listenersMu.RUnlock()
	for _, fn := range ls {
		fn(e)
	}
}

// dispatcher runs a community's fan-out in a goroutine of its own, fed in
// publish order. Its queue is unbounded so that publishing never blocks;
// what bounds it is that fan-out (encode once, a channel send per socket,
// see api) is cheaper than the commit that produced each event.
type dispatcher struct {
	mu      sync.Mutex
	queue   []Event
	closed  bool
	wake    chan struct{} // one pending signal is enough: run drains it all
	done    chan struct{}
	deliver func(Event)
}

func newDispatcher(deliver func(Event)) *dispatcher {
	d := &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{}), deliver: deliver}
	go d.run()
	return d
}

func (d *dispatcher) publish(e Event) {
	e.Published = time.Now()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, e)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	defer close(d.done)
	var batch []Event
	for {
		d.mu.Lock()
		batch, d.queue = d.queue, batch[:0]
		closed := d.closed
		d.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			<-d.wake
			continue
		}
		for _, e := range batch {
			d.deliver(e)
		}
		clear(batch) // the payloads are garbage once delivered
	}
}

// close delivers what is queued and stops; later publishes are dropped.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	<-d.done
}

// Event is something members should hear about.
type Event struct {
	// Channel is the channel it concerns; nil for community-wide events.
	Channel *ChannelRef
	// Result and Payload become an update frame's data.result and payload.
	Result  string
	Payload any
	// Except names a user who is not told (the typist of a typing event).
	Except string
	// TreeChanged asks every session to be sent its view of the tree.
	TreeChanged bool
	// Disconnect names a user whose sockets close with CloseCode.
	Disconnect string
	CloseCode  int
	// RoleChanged names a user whose role is now Role.
	RoleChanged string
	Role        Role
	// EndCall names a user whose call socket for Channel is to close.
	EndCall string
	// MuteCall names a user whose audio the SFU should (Muted) or should
	// no longer drop.
	MuteCall string
	Muted    bool
	// Published is when the event was queued for the listeners: for a
	// write, right after its commit (api measures fan-out from it).
	Published time.Time
}

// ChannelRef is how the wire addresses a channel.
type ChannelRef struct {
	Codec string `json:"codec"`
	Name  string `json:"name"`
	Path  string `json:"path"`
}

// Permissions is the role table in force.
func (c *Community) Permissions() Permissions { return c.svc.perms }
