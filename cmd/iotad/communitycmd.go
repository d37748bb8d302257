package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/community"
)

func communityCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, rest, err := sub(args, "create", "list", "addr")
	if err != nil {
		return err
	}
	fs := newFlags("community "+verb, stderr)
	data := dataFlag(fs)
	var name, id, listen, public *string
	switch verb {
	case "create":
		name = fs.String("name", "", "the community's name")
	case "addr":
		id = fs.String("community", "", "community id")
	}
	if verb != "list" {
		listen = fs.String("addr", "", "the community's own listen address, host:port (default for a second community: the next port after 1984 that no community uses)")
		public = fs.String("public-addr", "", "host:port its invites name (default: the host of serve --public-addr and the port of --addr)")
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	switch verb {
	case "create":
		rep, err := operate(ctx, *data, api.ControlRequest{Op: "community.create", Name: *name, Addr: *listen, PublicAddr: *public})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, rep.Community.ID)
		if rep.First {
			fmt.Fprintln(stderr, "served on iotad's main address (serve --addr)")
		} else {
			fmt.Fprintf(stderr, "served on its own address %s once iotad serve restarts; open that port too\n", rep.Community.ListenAddr)
		}
	case "addr":
		if _, err := operate(ctx, *data, api.ControlRequest{Op: "community.addr", Community: *id, Addr: *listen, PublicAddr: *public}); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "takes effect when iotad serve restarts")
	case "list":
		rep, err := operate(ctx, *data, api.ControlRequest{Op: "community.list"})
		if err != nil {
			return err
		}
		for _, c := range rep.Communities {
			listen := c.ListenAddr
			if listen == "" {
				listen = "main"
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", c.ID, c.PublicKey, listen, c.Name)
		}
	}
	return nil
}

func inviteCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, rest, err := sub(args, "create", "list", "revoke")
	if err != nil {
		return err
	}
	fs := newFlags("invite "+verb, stderr)
	data := dataFlag(fs)
	communityID := fs.String("community", "", "community id (default: the first)")
	var uses *int
	var expires *time.Duration
	var user, role, publicAddr, id *string
	var tls *bool
	switch verb {
	case "create":
		uses = fs.Int("uses", community.DefaultInviteUses, "how many people may join with it")
		expires = fs.Duration("expires", community.DefaultInviteTTL, "how long it is valid")
		user = fs.String("user", "", "bind the invite to this user id")
		role = fs.String("role", "member", "what joining makes you: member, moderator, admin or owner")
		publicAddr = fs.String("public-addr", "", "host:port the invite names (default: where iotad serve serves the community)")
		tls = fs.Bool("tls", false, "the invite says tls=1 although iotad serves plain http: a reverse proxy in front of it ends TLS")
	case "revoke":
		id = fs.String("id", "", "the invite id")
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	req := api.ControlRequest{Op: "invite." + verb, Community: *communityID}
	switch verb {
	case "create":
		req.Uses, req.Expires, req.User, req.Role, req.PublicAddr, req.TLS = *uses, *expires, *user, *role, *publicAddr, *tls
	case "revoke":
		req.ID = *id
	}
	rep, err := operate(ctx, *data, req)
	if err != nil {
		return err
	}
	switch verb {
	case "create":
		inv := rep.Invite
		fmt.Fprintln(stdout, rep.Secret)
		fmt.Fprintf(stderr, "invite %s: %d use(s) as %s, expires %s\n", inv.ID, inv.MaxUses, inv.Role, inv.ExpiresAt.UTC().Format(time.RFC3339))
	case "list":
		for _, inv := range rep.Invites {
			fmt.Fprintf(stdout, "%s\t%d/%d\t%s\t%s\t%s\trevoked=%t\n", inv.ID, inv.Uses, inv.MaxUses, inv.Role,
				inv.ExpiresAt.UTC().Format(time.RFC3339), inv.UserID, inv.Revoked)
		}
	case "revoke":
		fmt.Fprintf(stdout, "revoked %s\n", *id)
	}
	return nil
}

func memberCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, rest, err := sub(args, "list", "role", "ban", "unban", "kick")
	if err != nil {
		return err
	}
	fs := newFlags("member "+verb, stderr)
	data := dataFlag(fs)
	communityID := fs.String("community", "", "community id (default: the first)")
	var user, role *string
	if verb != "list" {
		user = fs.String("user", "", "the member's user id")
	}
	if verb == "role" {
		role = fs.String("role", "", "owner, admin, moderator or member")
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	req := api.ControlRequest{Op: "member." + verb, Community: *communityID}
	if user != nil {
		req.User = *user
	}
	if role != nil {
		req.Role = *role
	}
	rep, err := operate(ctx, *data, req)
	if err != nil {
		return err
	}
	switch verb {
	case "list":
		for _, m := range rep.Members {
			fmt.Fprintf(stdout, "%s\t%s\tbanned=%t\t%s\n", m.UserID, m.Role, m.Banned, m.JoinedAt.UTC().Format(time.RFC3339))
		}
	case "role":
		fmt.Fprintf(stdout, "%s is now %s\n", req.User, req.Role)
	case "ban":
		fmt.Fprintf(stdout, "banned %s\n", req.User)
	case "unban":
		fmt.Fprintf(stdout, "unbanned %s\n", req.User)
	case "kick":
		fmt.Fprintf(stdout, "kicked %s\n", req.User)
	}
	return nil
}
