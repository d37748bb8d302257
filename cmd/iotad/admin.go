package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/iotad/iotad/api"
	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/atomicfile"
	"github.com/iotad/iotad/internal/db"
)

var randReader = rand.Reader

func dataFlag(fs interface {
	StringVar(p *string, name, value, usage string)
}) *dataDir {
	d := &dataDir{}
	fs.StringVar(&d.dir, "data", "iotad-data", "data directory")
	fs.StringVar(&d.db, "db", "", dbUsage)
	return d
}

// dbUsage is the --db flag's help, the same on serve and the CLI commands
// (which must name the same database as the serve they stand in for).
const dbUsage = "PostgreSQL database as a postgres:// URL, for the Iota and every community (default: SQLite in the data directory)"

// dataDir is where a command finds iotad's state: the data directory
// (keys, the admin socket and, by default, the SQLite database) and, with
// --db, the PostgreSQL database that holds the rest.
type dataDir struct{ dir, db string }

func (d dataDir) String() string { return d.dir }

// target is the database to open: --db, or the SQLite file in the data
// directory.
func (d dataDir) target() (string, error) {
	if d.db == "" {
		return filepath.Join(d.dir, "iotad.db"), nil
	}
	if !db.IsPostgres(d.db) {
		return "", errors.New("--db must be a postgres:// URL (without --db, iotad keeps SQLite in the data directory)")
	}
	return d.db, nil
}

// operate runs an operator command. When iotad serve runs on the data
// directory, the command goes through its admin socket, so that the
// server's caches and open sockets see the change at once (a ban closes
// the member's socket, a demotion takes the role away from their open
// session); when none runs, the CLI opens the database itself.
func operate(ctx context.Context, data dataDir, req api.ControlRequest) (api.ControlReply, error) {
	rep, err := api.CallControl(ctx, filepath.Join(data.dir, api.ControlSocket), req)
	if !errors.Is(err, api.ErrNoServer) {
		return rep, err
	}
	a, err := openApp(ctx, data, db.SyncFull)
	if err != nil {
		return api.ControlReply{}, err
	}
	defer a.Close()
	ctl := api.NewControl(api.Services{Iota: a.iota, Communities: a.communities, IotaKey: a.iotaKey}, nil, slog.New(slog.DiscardHandler))
	return ctl.Do(ctx, req)
}

// listenControl opens the admin socket of the data directory; serve then
// carries out the operator's commands on it with the running server's
// services until ctx ends, waits for the command under way and removes
// the socket.
func listenControl(data string, svc api.Services, srv *api.Server, logger *slog.Logger) (serve func(context.Context) error, err error) {
	ln, err := api.ListenControl(filepath.Join(data, api.ControlSocket))
	if err != nil {
		return nil, err
	}
	ctl := api.NewControl(svc, srv, logger)
	return func(ctx context.Context) error { return api.ServeControl(ctx, ln, ctl) }, nil
}

// controlTakeover is how often a node of a cluster that does not hold its
// data directory's admin socket checks whether the node that holds it is
// still there.
const controlTakeover = time.Second

// standbyControl is the admin socket of a node whose data directory's
// socket another node holds: every controlTakeover it tries to take the
// socket over, which succeeds once that node is gone, so that CLI commands
// keep reaching a running node (and through the bus every node) instead
// of writing the database behind the caches of the nodes still running.
// Of two nodes taking over at once, the one whose socket file was
// replaced notices and goes back to standby.
func standbyControl(data string, svc api.Services, srv *api.Server, logger *slog.Logger) func(context.Context) error {
	path := filepath.Join(data, api.ControlSocket)
	return func(ctx context.Context) error {
		tick := time.NewTicker(controlTakeover)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			ln, err := api.ListenControl(path)
			if errors.Is(err, api.ErrControlInUse) {
				continue
			}
			if err != nil {
				logger.Warn("take over the admin socket", slog.Any("err", err))
				continue
			}
			logger.Info("took over the admin socket of this data directory", slog.String("path", path))
			if err := serveWhileOwned(ctx, ln, api.NewControl(svc, srv, logger), logger); ctx.Err() != nil {
				return err
			}
		}
	}
}

// serveWhileOwned serves the admin socket ln until ctx ends, serving
// fails, or another node's socket file replaces ln's.
func serveWhileOwned(ctx context.Context, ln net.Listener, ctl *api.Control, logger *slog.Logger) error {
	owner, _ := ln.(interface{ OwnsPath() bool })
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- api.ServeControl(sctx, ln, ctl) }()
	check := time.NewTicker(controlTakeover)
	defer check.Stop()
	for {
		select {
		case err := <-done:
			if ctx.Err() == nil {
				logger.Warn("admin socket", slog.Any("err", err))
			}
			return err
		case <-check.C:
			if owner != nil && !owner.OwnsPath() {
				logger.Info("another node took over the admin socket; standing by")
				stop()
				return <-done
			}
		}
	}
}

func userCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, rest, err := sub(args, "add", "list", "remove")
	if err != nil {
		return err
	}
	fs := newFlags("user "+verb, stderr)
	data := dataFlag(fs)
	var name, out, id *string
	switch verb {
	case "add":
		name = fs.String("name", "", "a name for the operator's own records")
		out = fs.String("out", "", "where to write the .tu key file (default DATA/<user id>.tu)")
	case "remove":
		id = fs.String("id", "", "the user id to remove")
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	switch verb {
	case "add":
		id, path, err := addUserKey(ctx, *data, *name, *out)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, id)
		fmt.Fprintf(stderr, "key file written to %s\n", path)
	case "list":
		rep, err := operate(ctx, *data, api.ControlRequest{Op: "user.list"})
		if err != nil {
			return err
		}
		for _, u := range rep.Users {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", u.ID, u.CreatedAt.UTC().Format(time.RFC3339), u.PublicKey, u.Name)
		}
	case "remove":
		if *id == "" {
			return fmt.Errorf("--id is required")
		}
		if _, err := operate(ctx, *data, api.ControlRequest{Op: "user.remove", ID: *id}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", *id)
	}
	return nil
}

// addUserKey makes a key pair and writes the key file durably (to
// DATA/<user id>.tu when keyFile is empty), naming this Iota's key on its
// second line, and only then has the public half stored: an account never
// exists without its key file, and the private half never leaves this
// process.
func addUserKey(ctx context.Context, data dataDir, name, keyFile string) (id, path string, err error) {
	if err := os.MkdirAll(data.dir, 0o700); err != nil {
		return "", "", fmt.Errorf("data directory: %w", err)
	}
	// The same file the server reads its identity from (made here first if
	// no server ever ran).
	iotaKey, err := keptIotaKey(filepath.Join(data.dir, "iota.key"))
	if err != nil {
		return "", "", err
	}
	pub, priv, err := icrypto.GenerateKey(randReader)
	if err != nil {
		return "", "", err
	}
	id = uuid.NewString()
	if keyFile == "" {
		keyFile = filepath.Join(data.dir, id+".tu")
	}
	if err := atomicfile.Create(keyFile, icrypto.FormatKeyFileWithIota(id, priv, iotaKey.Public()), 0o600); err != nil {
		return "", "", fmt.Errorf("key file: %w", err)
	}
	if _, err := operate(ctx, data, api.ControlRequest{Op: "user.add", ID: id, Name: name, PublicKey: pub.String()}); err != nil {
		os.Remove(keyFile)
		return "", "", err
	}
	return id, keyFile, nil
}

func tokenCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, rest, err := sub(args, "create", "list", "revoke")
	if err != nil {
		return err
	}
	fs := newFlags("token "+verb, stderr)
	data := dataFlag(fs)
	var uses *int
	var expires *time.Duration
	var id *string
	switch verb {
	case "create":
		uses = fs.Int("uses", 1, "how many accounts the token may create")
		expires = fs.Duration("expires", 72*time.Hour, "how long the token is valid")
	case "revoke":
		id = fs.String("id", "", "the token id to revoke")
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	switch verb {
	case "create":
		rep, err := operate(ctx, *data, api.ControlRequest{Op: "token.create", Uses: *uses, Expires: *expires})
		if err != nil {
			return err
		}
		t := rep.Token
		fmt.Fprintln(stdout, rep.Secret)
		fmt.Fprintf(stderr, "token %s: %d use(s), expires %s\n", t.ID, t.MaxUses, t.ExpiresAt.UTC().Format(time.RFC3339))
	case "list":
		rep, err := operate(ctx, *data, api.ControlRequest{Op: "token.list"})
		if err != nil {
			return err
		}
		for _, t := range rep.Tokens {
			state := "active"
			switch {
			case t.Revoked:
				state = "revoked"
			case t.Uses >= t.MaxUses:
				state = "spent"
			case time.Now().After(t.ExpiresAt):
				state = "expired"
			}
			fmt.Fprintf(stdout, "%s\t%d/%d\t%s\t%s\n", t.ID, t.Uses, t.MaxUses, t.ExpiresAt.UTC().Format(time.RFC3339), state)
		}
	case "revoke":
		if strings.TrimSpace(*id) == "" {
			return fmt.Errorf("--id is required")
		}
		if _, err := operate(ctx, *data, api.ControlRequest{Op: "token.revoke", ID: *id}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", *id)
	}
	return nil
}
