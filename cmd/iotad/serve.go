package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/community/notes"
	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/atomicfile"
	"github.com/iotad/iotad/internal/db"
	"github.com/iotad/iotad/internal/sysmon"
	iotasvc "github.com/iotad/iotad/iota"
)

// app is what a data directory holds, opened.
type app struct {
	dir string
	// iotaKey is the Iota's identity for version-2 logins (PROTOCOL §3).
	iotaKey     icrypto.PrivateKey
	db          *db.DB
	iota        *iotasvc.Store
	communities *community.Service
}

// openApp opens the data directory and the database it names (--db, or
// SQLite in it); tune (serve's cluster flags) adjusts the community
// service's options.
func openApp(ctx context.Context, data dataDir, sync db.Sync, tune ...func(*community.Options)) (*app, error) {
	target, err := data.target()
	if err != nil {
		return nil, err
	}
	dir := data.dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	iotaKey, err := keptIotaKey(filepath.Join(dir, "iota.key"))
	if err != nil {
		return nil, err
	}
	d, err := db.Open(ctx, target, sync)
	if err != nil {
		return nil, err
	}
	store, err := iotasvc.Open(ctx, d)
	if err != nil {
		d.Close()
		return nil, err
	}
	codecs := community.NewRegistry()
	notes.Register(codecs)
	opts := community.Options{KeyDir: dir, Codecs: codecs}
	for _, t := range tune {
		if t != nil {
			t(&opts)
		}
	}
	svc, err := community.Open(ctx, d, opts)
	if err != nil {
		d.Close()
		return nil, err
	}
	return &app{dir: dir, iotaKey: iotaKey, db: d, iota: store, communities: svc}, nil
}

// keptIotaKey reads the Iota's identity key, making it the first time. It
// is written durably before anything that names it (a key file's iota_key
// line, a client's pin) can exist.
func keptIotaKey(path string) (icrypto.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err := icrypto.GenerateKey(randReader)
		if err != nil {
			return priv, err
		}
		err = atomicfile.Create(path, icrypto.FormatKeyFile("iota", priv), 0o600)
		if errors.Is(err, atomicfile.ErrExists) {
			// Another iotad process made it first: use theirs.
			return keptIotaKey(path)
		}
		return priv, err
	}
	if err != nil {
		return icrypto.PrivateKey{}, fmt.Errorf("iota key: %w", err)
	}
	_, priv, err := icrypto.ParseKeyFile(raw)
	if err != nil {
		return icrypto.PrivateKey{}, fmt.Errorf("iota key %s: %w", path, err)
	}
	return priv, nil
}

func (a *app) Close() error {
	a.communities.Close()
	return a.db.Close()
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := api.DefaultConfig()
	fs := newFlags("serve", stderr)
	data := fs.String("data", "iotad-data", "data directory (database, keys)")
	dbURL := fs.String("db", "", dbUsage)
	addr := fs.String("addr", ":1984", "listen address (the seed's community port is 1984)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	syncMode := fs.String("sync", "full", "SQLite synchronous mode: full (survives power loss) or normal (survives a crash of iotad)")
	commitWindow := fs.Duration("commit-window", community.DefaultCommitWindow, "how long a write that finds the store idle waits for others to share its commit, at most 1s (0: none)")
	monitorBatch := fs.Bool("monitor-batch", true, "on Linux, run the Go runtime's monitor thread as SCHED_BATCH while the server uses under half its CPUs, so that it does not preempt the server's threads (docs/BENCHMARKS.md)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "most open sockets; more get HTTP 503")
	fs.IntVar(&cfg.Socket.SendQueue, "send-queue", cfg.Socket.SendQueue, "frames queued per socket before a slow reader is dropped")
	fs.IntVar(&cfg.Socket.SendQueueBytes, "send-queue-bytes", cfg.Socket.SendQueueBytes, "bytes queued per socket before a slow reader is dropped (0: no bound)")
	fs.IntVar(&cfg.MaxConnectionsPerAddr, "max-connections-per-addr", cfg.MaxConnectionsPerAddr, "most open sockets per remote address, IPv6 per /64; more get HTTP 429 (0: no cap)")
	fs.IntVar(&cfg.MaxUnauthenticatedPerAddr, "max-unauthenticated-per-addr", cfg.MaxUnauthenticatedPerAddr, "most sockets not logged in per remote address, IPv6 per /64; more get HTTP 429 (0: no cap)")
	fs.IntVar(&cfg.MaxConnectionsPerUser, "max-connections-per-user", cfg.MaxConnectionsPerUser, "most logged-in sockets per user; more logins get error_rate_limited (0: no cap)")
	fs.Float64Var(&cfg.UserRequestRate, "user-request-rate", cfg.UserRequestRate, "requests per second per user, across all of the user's sockets (0: no limit)")
	fs.IntVar(&cfg.UserRequestBurst, "user-request-burst", cfg.UserRequestBurst, "request burst per user, across all of the user's sockets")
	fs.Float64Var(&cfg.Socket.RequestRate, "request-rate", cfg.Socket.RequestRate, "requests per second per socket")
	fs.IntVar(&cfg.Socket.RequestBurst, "request-burst", cfg.Socket.RequestBurst, "request burst per socket")
	fs.Float64Var(&cfg.LoginRate, "login-rate", cfg.LoginRate, "logins per second per remote address")
	fs.IntVar(&cfg.LoginBurst, "login-burst", cfg.LoginBurst, "login burst per remote address")
	fs.BoolVar(&cfg.LegacyLogin, "legacy-login", false, "also accept login version 1 (Tensamin's), which a malicious community can relay to log in as its visitors elsewhere")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go profiles at /debug/pprof/ of the admin listener (for benchmarking; do not expose)")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9184", "listen address for /metrics (and --pprof); keep it private; empty disables")
	origins := fs.String("allowed-origins", "", "comma-separated browser origins allowed besides the page's own (* for any)")
	publicAddr := fs.String("public-addr", "", "host:port that invites name (default: localhost and the --addr port)")
	owner := fs.String("owner", "", "on first start, the Iota user id who may claim the first community (default: the first user)")
	communityName := fs.String("community-name", "Home", "on first start, the first community's name")
	maxUpload := fs.Int64("max-upload", community.DefaultMaxUpload, "largest uploaded file in bytes")
	uploadQuota := fs.Int64("upload-quota", community.DefaultUploadQuota, "bytes of distinct files each member may keep uploaded, per community")
	var vf voiceFlags
	vf.register(fs)
	var tf tlsFlags
	tf.register(fs)
	var pf proxyFlags
	pf.register(fs)
	var bf busFlags
	bf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *commitWindow < 0 || *commitWindow > time.Second {
		return fmt.Errorf("--commit-window must be between 0 and 1s")
	}
	if *origins != "" {
		cfg.AllowedOrigins = strings.Split(*origins, ",")
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	if *monitorBatch {
		sysmon.Watch(ctx, logger)
	}
	ts, err := tf.start(ctx, *data, logger)
	if err != nil {
		return err
	}
	cfg.TLS = ts.config
	if err := pf.apply(&cfg, logger); err != nil {
		return err
	}
	ln, err := listenTCP(ctx, *addr)
	if err != nil {
		return err
	}
	cfg.PublicAddr = *publicAddr
	if cfg.PublicAddr == "" {
		cfg.PublicAddr = ts.defaultPublicAddr(ln.Addr())
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cl, err := bf.start(cfg.PublicAddr, cfg.TLS != nil, port, logger)
	if err != nil {
		ln.Close()
		return err
	}
	// The bus closes after the stores (deferred first, runs last): the
	// community service's last events still go out.
	defer cl.Close()
	if *maxUpload < 1 || *uploadQuota < 1 {
		ln.Close()
		return fmt.Errorf("--max-upload and --upload-quota must be at least 1 byte")
	}
	store := func(o *community.Options) {
		o.MaxUpload, o.UploadQuota, o.CommitWindow = *maxUpload, *uploadQuota, *commitWindow
	}
	a, err := openApp(ctx, dataDir{dir: *data, db: *dbURL}, db.Sync(strings.ToUpper(*syncMode)), cl.tune, store)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	if err := firstRun(ctx, a, stdout, firstRunOptions{owner: *owner, communityName: *communityName, publicAddr: cfg.PublicAddr, tls: cfg.TLS != nil}); err != nil {
		ln.Close()
		return err
	}
	if all := a.communities.All(); *publicAddr == "" && len(all) > 0 && all[0].PublicAddr != "" {
		cfg.PublicAddr = all[0].PublicAddr
	}
	own, err := listenCommunities(ctx, a, cfg.PublicAddr, logger)
	closeAll := func() {
		ln.Close()
		for _, cl := range own {
			cl.Listener.Close()
		}
	}
	if err != nil {
		closeAll()
		return err
	}
	vf.tls, vf.tlsHost = ts.config, ts.host(cfg.PublicAddr)
	sfu, turnSrv, err := vf.start(a, logger)
	if err != nil {
		closeAll()
		return err
	}
	defer sfu.Close()
	if turnSrv != nil {
		defer turnSrv.Close()
	}
	services := cl.services(api.Services{Iota: a.iota, Communities: a.communities, SFU: sfu, IotaKey: a.iotaKey})
	srv := api.New(cfg, logger, services)
	if err := registerMetrics(srv, turnSrv); err != nil {
		closeAll()
		return err
	}
	var aln net.Listener
	if *adminAddr != "" {
		if aln, err = net.Listen("tcp", *adminAddr); err != nil {
			closeAll()
			return fmt.Errorf("admin listener (--admin-addr, empty disables it): %w", err)
		}
		logger.Info("admin listening", slog.String("addr", aln.Addr().String()))
	}
	stopHTTP, err := ts.serveHTTP(ctx, srv, cfg.PublicAddr, logger)
	if err != nil {
		closeAll()
		if aln != nil {
			aln.Close()
		}
		return err
	}
	defer stopHTTP()
	page, sock := ts.schemes()
	// The admin socket opens before the "listening" line, so that a CLI
	// started after it finds the server.
	control, err := listenControl(*data, services, srv, logger)
	if errors.Is(err, api.ErrControlInUse) && bf.nats != "" {
		// Nodes on one machine share the data directory; the first holds
		// its admin socket, and what the CLI does through it reaches every
		// node over the bus.
		logger.Info("another node holds the admin socket of this data directory; CLI commands go through it")
		control, err = standbyControl(*data, services, srv, logger), nil
	}
	if err != nil {
		closeAll()
		if aln != nil {
			aln.Close()
		}
		return err
	}
	fmt.Fprintf(stdout, "iotad is listening on %s://%s/ (Iota socket: %s://%s/ws/iota)\n", page, displayAddr(ln.Addr()), sock, displayAddr(ln.Addr()))
	for _, cl := range own {
		fmt.Fprintf(stdout, "community %q is listening on %s://%s/ (invites name %s)\n", cl.Community.Name, sock, displayAddr(cl.Listener.Addr()), cl.PublicAddr)
	}
	logger.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("data", *data), slog.String("db", a.db.Dialect.String()), slog.Int("community_listeners", len(own)))
	// The serving parts run as one group: the first to fail stops the
	// others, and serve returns only when every one has, so that the parts
	// under them, deferred above (TURN, the SFU, then the stores), stop
	// after the last handler.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx, ln, own...) })
	g.Go(func() error { return control(gctx) })
	if aln != nil {
		g.Go(func() error { return srv.ServeAdmin(gctx, aln) })
	}
	return g.Wait()
}

// listenCommunities opens the own listener of every community after the
// first (which shares the main one), and records the address each one's
// invites name, so that `iotad invite create` prints the same text.
func listenCommunities(ctx context.Context, a *app, mainPublic string, logger *slog.Logger) (own []api.CommunityListener, err error) {
	all := a.communities.All()
	if len(all) == 0 {
		return nil, nil
	}
	if err := a.communities.SetServedAddr(ctx, all[0], mainPublic); err != nil {
		return nil, err
	}
	publicHost, _, err := net.SplitHostPort(mainPublic)
	if err != nil {
		publicHost = "localhost"
	}
	defer func() {
		if err != nil {
			for _, cl := range own {
				cl.Listener.Close()
			}
			own = nil
		}
	}()
	for _, c := range all[1:] {
		if c.ListenAddr == "" {
			logger.Warn("a community has no address of its own and is not served; give it one with `iotad community addr`",
				slog.String("community", c.ID))
			continue
		}
		ln, err := listenTCP(ctx, c.ListenAddr)
		if err != nil {
			return own, fmt.Errorf("community %q: %w", c.Name, err)
		}
		public := c.PublicAddr
		if public == "" {
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			public = net.JoinHostPort(publicHost, port)
		}
		own = append(own, api.CommunityListener{Listener: ln, Community: c, PublicAddr: public})
		if err := a.communities.SetServedAddr(ctx, c, public); err != nil {
			return own, err
		}
	}
	return own, nil
}

type firstRunOptions struct {
	owner, communityName, publicAddr string
	tls                              bool
}

// firstRun gives an empty data directory its first user (so the person who
// started iotad has a key to log in with) and its first community, with an
// owner invite bound to that user and an invite for friends.
func firstRun(ctx context.Context, a *app, stdout io.Writer, opts firstRunOptions) error {
	users, err := a.iota.Users(ctx)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		keyFile := filepath.Join(a.dir, "owner.tu")
		u, _, err := addUser(ctx, a, "owner", keyFile)
		if err != nil {
			return err
		}
		users = append(users, u)
		fmt.Fprintf(stdout, "first start: created user %s; its key file is %s (keep it secret)\n", u.ID, keyFile)
	}
	if len(a.communities.All()) > 0 {
		return nil
	}
	c, err := a.communities.Create(ctx, opts.communityName)
	if err != nil {
		return err
	}
	if err := c.CreateDefaultChannels(ctx); err != nil {
		return err
	}
	owner := opts.owner
	if owner == "" {
		owner = users[0].ID
	}
	secret, _, err := c.CreateOperatorInvite(ctx, community.InviteOptions{UserID: owner, Role: community.RoleOwner})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "first start: created community %q (%s)\n", c.Name, c.ID)
	friends, _, err := c.CreateOperatorInvite(ctx, community.InviteOptions{MaxUses: 10})
	if err != nil {
		return err
	}
	invites := fmt.Sprintf("owner invite for user %s (single use, 7 days):\n%s\ninvite for friends (10 uses, 7 days):\n%s\n",
		owner, api.InviteText(opts.publicAddr, secret, c.Public, opts.tls), api.InviteText(opts.publicAddr, friends, c.Public, opts.tls))
	return showFirstInvites(stdout, isTerminal(stdout), a.dir, invites)
}

// firstInvitesFile is where the first start's invites go when stdout is
// not a terminal.
const firstInvitesFile = "first-invites.txt"

// showFirstInvites prints the first start's invites to a person at a
// terminal. Anywhere else (a service's journal, a log file, a pipe) they
// would be kept, and read, by more than the operator: they go to a 0600
// file in the data directory, and only its path is printed.
func showFirstInvites(stdout io.Writer, terminal bool, dir, invites string) error {
	if terminal {
		_, err := io.WriteString(stdout, invites)
		return err
	}
	path := filepath.Join(dir, firstInvitesFile)
	if err := atomicfile.Write(path, []byte(invites), 0o600); err != nil {
		return fmt.Errorf("first invites: %w", err)
	}
	fmt.Fprintf(stdout, "first start: the owner's and the friends' invites are in %s (keep it secret; delete it once they are used)\n", path)
	return nil
}

// isTerminal reports whether w is a terminal. /dev/null is a character
// device too, but invites written there would be lost.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	if err != nil || info.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(info, null)
}

// addUser makes a key pair, writes the key file durably (to
// DATA/<user id>.tu when keyFile is empty), naming this Iota's key on its
// second line, and only then stores the public half: an account never
// exists without its key file.
func addUser(ctx context.Context, a *app, name, keyFile string) (iotasvc.User, string, error) {
	pub, priv, err := icrypto.GenerateKey(randReader)
	if err != nil {
		return iotasvc.User{}, "", err
	}
	id := uuid.NewString()
	if keyFile == "" {
		keyFile = filepath.Join(a.dir, id+".tu")
	}
	if err := atomicfile.Create(keyFile, icrypto.FormatKeyFileWithIota(id, priv, a.iotaKey.Public()), 0o600); err != nil {
		return iotasvc.User{}, "", fmt.Errorf("key file: %w", err)
	}
	u, err := a.iota.CreateUserAs(ctx, id, name, pub)
	if err != nil {
		os.Remove(keyFile)
		return iotasvc.User{}, "", err
	}
	return u, keyFile, nil
}

func displayAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format must be text or json, not %q", format)
}

// listenTCP listens without TCP keepalive on the accepted connections:
// sockets find dead peers by their WebSocket pings and plain HTTP by its
// idle and header timeouts, and the four setsockopt calls Go makes per
// connection for keepalive were a visible part of a login's system time.
func listenTCP(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(ctx, "tcp", addr)
}
