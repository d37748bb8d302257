package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/iotad/iotad/internal/db"
)

var randReader = rand.Reader

func dataFlag(fs interface {
	String(name, value, usage string) *string
}) *string {
	return fs.String("data", "iotad-data", "data directory")
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
	a, err := openApp(ctx, *data, db.SyncFull)
	if err != nil {
		return err
	}
	defer a.Close()
	switch verb {
	case "add":
		u, path, err := addUser(ctx, a, *name, *out)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, u.ID)
		fmt.Fprintf(stderr, "key file written to %s\n", path)
	case "list":
		users, err := a.iota.Users(ctx)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", u.ID, u.CreatedAt.UTC().Format(time.RFC3339), u.PublicKey, u.Name)
		}
	case "remove":
		if *id == "" {
			return fmt.Errorf("--id is required")
		}
		if err := a.iota.DeleteUser(ctx, *id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", *id)
	}
	return nil
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
	a, err := openApp(ctx, *data, db.SyncFull)
	if err != nil {
		return err
	}
	defer a.Close()
	switch verb {
	case "create":
		secret, t, err := a.iota.CreateToken(ctx, *uses, *expires)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "token %s: %d use(s), expires %s\n", t.ID, t.MaxUses, t.ExpiresAt.UTC().Format(time.RFC3339))
	case "list":
		tokens, err := a.iota.Tokens(ctx)
		if err != nil {
			return err
		}
		for _, t := range tokens {
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
		if err := a.iota.RevokeToken(ctx, *id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", *id)
	}
	return nil
}
