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
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/atomicfile"
	"github.com/iotad/iotad/internal/bus"
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
	search *searchIndexer
	ids    idGen
	// seqs numbers messages without a query (seqs.go); nil when joined or
	// on PostgreSQL.
	seqs   seqCache
	codecs *Registry
	perms  Permissions
	files  *fileStore

	iceServers   func(userID string) []ICEServer
	ticketSecret []byte
	// bus carries events; joined says it reaches other nodes, ownBus that
	// Close closes it. claims spends tickets once, cluster-wide when joined.
	bus    bus.Bus
	ownBus bool
	joined bool
	claims bus.Claims
	// members keeps member rows for logins (membercache.go); nil when
	// joined.
	members  *memberCache
	backfill func(c *Community, key string, after, before int64) ([]*Event, error)

	// node is this node; nodeJSON its lease value. held are the calls
	// whose lease this node renews (see keepCall).
	node     Node
	nodeJSON string
	leaseTTL time.Duration
	requests Requests
	iceSub   bus.Subscription
	heldMu   sync.Mutex
	held     map[string]*heldCall
	keepers  sync.WaitGroup

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
	// Bus carries the communities' events; nil means a bus.Memory of the
	// Service's own (closed by Close). A caller's bus is the caller's to
	// close, after the Service.
	Bus bus.Bus
	// Claims spend call tickets once; nil means in memory. Nodes sharing
	// a bus share claims (bus.NATSClaims).
	Claims bus.Claims
	// TicketSecret signs call tickets (at least 32 bytes); nil means a
	// random one per start. Nodes of a cluster share one.
	TicketSecret []byte
	// Node is this node (an empty ID gets a random one); with a bus that
	// joins nodes, a voice channel's call lives on the node holding its
	// lease, renewed every LeaseTTL/3 (0: DefaultLeaseTTL).
	Node     Node
	LeaseTTL time.Duration
	// Requests let a join ask the call's node for its ICE servers.
	Requests Requests
	// FilesDir holds uploaded files (PROTOCOL §9 "Files and images"); ""
	// means KeyDir/files. MaxUpload and UploadQuota are the largest file
	// and a member's bytes; 0 means DefaultMaxUpload, DefaultUploadQuota.
	FilesDir               string
	MaxUpload, UploadQuota int64
	// CommitWindow is how long a write that finds the store's writer idle
	// waits for others to share its transaction; 0 (or less) waits for
	// none. serve's default is DefaultCommitWindow.
	CommitWindow time.Duration
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
	secret := opts.TicketSecret
	if secret == nil {
		secret = make([]byte, 32)
		rand.Read(secret)
	} else if len(secret) < 32 {
		return nil, fmt.Errorf("%w: a ticket secret is at least 32 bytes", ErrInvalidData)
	}
	s := &Service{
		db: d, keyDir: opts.KeyDir, now: opts.Now, codecs: opts.Codecs, perms: opts.Permissions,
		iceServers: opts.ICEServers, ticketSecret: secret, bus: opts.Bus, claims: opts.Claims,
		backfill: backfillMessages,
		byID:     map[string]*Community{},
	}
	if s.bus == nil {
		s.bus, s.ownBus = bus.NewMemory(), true
	}
	_, alone := s.bus.(*bus.Memory)
	s.joined = !alone
	if s.claims == nil {
		s.claims = bus.NewMemoryClaims(opts.Now)
	}
	s.bus.Reconnected(s.resync)
	s.node, s.leaseTTL, s.requests, s.held = opts.Node, opts.LeaseTTL, opts.Requests, map[string]*heldCall{}
	if s.node.ID == "" {
		s.node.ID = uuid.NewString()
	}
	if s.leaseTTL <= 0 {
		s.leaseTTL = DefaultLeaseTTL
	}
	nodeJSON, _ := json.Marshal(s.node)
	s.nodeJSON = string(nodeJSON)
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
		s.closeBus()
		return nil, err
	}
	// The statements every write runs: its actor's row, and for a message
	// the insert; and a join's. Prepared now, while no transaction holds
	// the writer.
	if err := d.PrepareWrites(ctx, memberQuery, nextSeq(d), insertMessage, savepoint, rollbackTo, release, dataVersionQuery,
		useInvite, insertMember, startMarkers, insertAudit); err != nil {
		s.closeBus()
		return nil, err
	}
	if err := s.serveICE(); err != nil {
		s.closeBus()
		return nil, err
	}
	if opts.FilesDir == "" {
		opts.FilesDir = filepath.Join(opts.KeyDir, "files")
	}
	if s.files, err = openFileStore(opts.FilesDir, opts.MaxUpload, opts.UploadQuota); err != nil {
		s.closeBus()
		return nil, err
	}
	events, _ := s.bus.(bus.Holder)
	var committed, foreign func()
	if !s.joined {
		s.members = newMemberCache()
		committed = s.members.committed
		if d.Dialect == db.SQLite {
			s.seqs = seqCache{}
			foreign = func() {
				s.members.dropAll()
				clear(s.seqs)
			}
		}
	}
	s.w = newWriter(d, opts.CommitWindow, events, committed, foreign)
	if s.search, err = newSearchIndexer(ctx, d, s.w); err != nil {
		s.w.close()
		s.closeBus()
		return nil, err
	}
	s.startFileSweep()
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
		if err := c.loadUnreadCache(ctx); err != nil {
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

// Close stops the writer after the writes already queued, then (when the
// bus is the Service's own) delivers the events already published; events
// published later are dropped.
func (s *Service) Close() {
	s.stopKeepers(true)
	s.stopFileSweep()
	if s.iceSub != nil {
		s.iceSub.Unsubscribe()
	}
	s.search.close()
	s.w.close()
	s.closeBus()
}

func (s *Service) closeBus() {
	if s.ownBus {
		s.bus.Close()
	}
}

// resync runs when the bus's link to the other nodes came back: what they
// published meanwhile is lost to this node, so every community it listens
// to reads its caches again.
func (s *Service) resync() {
	for _, c := range s.All() {
		c.listenersMu.RLock()
		on := c.sub != nil
		c.listenersMu.RUnlock()
		if on {
			c.resync()
		}
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
	c.computeAccessLocked()
	if !s.joined {
		c.unread = newUnreadCache() // no channels yet
	}
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
	// treeJSON is the encoded tree per role that sees it (TreeJSONAs);
	// private says some channel hides from some role, overridden that
	// some channel has an override.
	treeJSON   map[Role][]byte
	private    atomic.Bool
	overridden atomic.Bool

	offsets offsetIndexes
	// unread answers logins' unread counts from memory (unreadcache.go);
	// nil on a cluster.
	unread *unreadCache

	subject string
	// listenersMu guards listeners and sub; listeners is replaced, never
	// changed, so delivery reads it without holding it.
	listenersMu sync.RWMutex
	listeners   []*listener
	sub         bus.Subscription
	// seq orders a channel's message_live events by their Seq; used only
	// from the subscription's goroutine.
	seq bus.Sequencer[*Event]
}

func (c *Community) init() {
	c.voice = map[int64]*voiceRoom{}
	c.subject = Subject(c.ID)
	c.seq.Seq = func(e *Event) int64 { return e.Seq }
	c.seq.Backfill = c.backfill
}

// backfill is the Sequencer's hook into the store: the message_live
// events of a channel numbered after+1 to before-1.
func (c *Community) backfill(key string, after, before int64) ([]*Event, error) {
	if c.svc.backfill == nil {
		return nil, fmt.Errorf("community: no message sequence in this store to backfill %s (%d, %d) from", key, after, before)
	}
	return c.svc.backfill(c, key, after, before)
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
	// Only names the one user who is told (a read marker's move).
	Only string
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
	// Seq is a message_live's number in its channel, assigned by the
	// store at commit (0: the store assigns none); a node that sees a gap
	// in it backfills from the store.
	Seq int64
	// Published is when the event was queued for the listeners: for a
	// write, right after its commit (api measures fan-out from it).
	Published time.Time
	// remote marks an event another node committed and published.
	remote bool
}

// ChannelRef is how the wire addresses a channel.
type ChannelRef struct {
	// ID is the channel's, which a rename or move keeps: how a node
	// finds the channel of an event (it crosses nodes, not the wire to
	// clients).
	ID    int64  `json:"id,omitempty"`
	Codec string `json:"codec"`
	Name  string `json:"name"`
	Path  string `json:"path"`
}

// Permissions is the role table in force.
func (c *Community) Permissions() Permissions { return c.svc.perms }
