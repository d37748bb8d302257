package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/iotad/iotad/api"
	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/db"
	iotasvc "github.com/iotad/iotad/iota"
)

// app is what a data directory holds, opened.
type app struct {
	dir  string
	db   *db.DB
	iota *iotasvc.Store
}

func openApp(ctx context.Context, dir string, sync db.Sync) (*app, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	d, err := db.Open(ctx, filepath.Join(dir, "iotad.db"), sync)
	if err != nil {
		return nil, err
	}
	store, err := iotasvc.Open(ctx, d)
	if err != nil {
		d.Close()
		return nil, err
	}
	return &app{dir: dir, db: d, iota: store}, nil
}

func (a *app) Close() error { return a.db.Close() }

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := api.DefaultConfig()
	fs := newFlags("serve", stderr)
	data := fs.String("data", "iotad-data", "data directory (database, keys)")
	addr := fs.String("addr", ":1984", "listen address (the seed's community port is 1984)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	syncMode := fs.String("sync", "full", "SQLite synchronous mode: full (survives power loss) or normal (survives a crash of iotad)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "most open sockets; more get HTTP 503")
	fs.IntVar(&cfg.Socket.SendQueue, "send-queue", cfg.Socket.SendQueue, "frames queued per socket before a slow reader is dropped")
	fs.Float64Var(&cfg.Socket.RequestRate, "request-rate", cfg.Socket.RequestRate, "requests per second per socket")
	fs.IntVar(&cfg.Socket.RequestBurst, "request-burst", cfg.Socket.RequestBurst, "request burst per socket")
	fs.Float64Var(&cfg.LoginRate, "login-rate", cfg.LoginRate, "logins per second per remote address")
	fs.IntVar(&cfg.LoginBurst, "login-burst", cfg.LoginBurst, "login burst per remote address")
	origins := fs.String("allowed-origins", "", "comma-separated browser origins allowed besides the page's own (* for any)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *origins != "" {
		cfg.AllowedOrigins = strings.Split(*origins, ",")
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, *data, db.Sync(strings.ToUpper(*syncMode)))
	if err != nil {
		return err
	}
	defer a.Close()
	if err := firstRun(ctx, a, stdout); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := api.New(cfg, logger, a.iota)
	fmt.Fprintf(stdout, "iotad is listening on http://%s/ (Iota socket: ws://%s/ws/iota)\n", displayAddr(ln.Addr()), displayAddr(ln.Addr()))
	logger.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("data", *data))
	return srv.Serve(ctx, ln)
}

// firstRun gives an empty data directory its first user, so that the
// person who started iotad has a key to log in with.
func firstRun(ctx context.Context, a *app, stdout io.Writer) error {
	users, err := a.iota.Users(ctx)
	if err != nil || len(users) > 0 {
		return err
	}
	keyFile := filepath.Join(a.dir, "owner.tu")
	u, _, err := addUser(ctx, a, "owner", keyFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "first start: created user %s; its key file is %s (keep it secret)\n", u.ID, keyFile)
	return nil
}

// addUser makes a key pair, stores the public half and writes the key file
// (to DATA/<user id>.tu when keyFile is empty).
func addUser(ctx context.Context, a *app, name, keyFile string) (iotasvc.User, string, error) {
	pub, priv, err := icrypto.GenerateKey(randReader)
	if err != nil {
		return iotasvc.User{}, "", err
	}
	u, err := a.iota.CreateUser(ctx, name, pub)
	if err != nil {
		return iotasvc.User{}, "", err
	}
	if keyFile == "" {
		keyFile = filepath.Join(a.dir, u.ID+".tu")
	}
	if err := writeKeyFile(keyFile, icrypto.FormatKeyFile(u.ID, priv)); err != nil {
		a.iota.DeleteUser(ctx, u.ID)
		return iotasvc.User{}, "", err
	}
	return u, keyFile, nil
}

// writeKeyFile writes a private key readable by its owner alone, and never
// over an existing file.
func writeKeyFile(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return fmt.Errorf("key file: %w", err)
	}
	return f.Close()
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
