package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/internal/db"
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
	a, err := openApp(ctx, *data, db.SyncFull)
	if err != nil {
		return err
	}
	defer a.Close()
	switch verb {
	case "create":
		first := len(a.communities.All()) == 0
		if !first && *listen == "" {
			*listen = a.communities.NextListenAddr()
		}
		c, err := a.communities.Create(ctx, *name)
		if err != nil {
			return err
		}
		if err := a.communities.SetAddresses(ctx, c, *listen, *public); err != nil {
			return err
		}
		if err := c.CreateDefaultChannels(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, c.ID)
		if first {
			fmt.Fprintln(stderr, "served on iotad's main address (serve --addr)")
		} else {
			fmt.Fprintf(stderr, "served on its own address %s once iotad serve restarts; open that port too\n", c.ListenAddr)
		}
	case "addr":
		c, err := a.communities.Get(*id)
		if err != nil {
			return err
		}
		if err := a.communities.SetAddresses(ctx, c, *listen, *public); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "takes effect when iotad serve restarts")
	case "list":
		for _, c := range a.communities.All() {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", c.ID, c.Public, listenText(c), c.Name)
		}
	}
	return nil
}

func listenText(c *community.Community) string {
	if c.ListenAddr == "" {
		return "main"
	}
	return c.ListenAddr
}

// invitePublicAddr is what an invite printed by the CLI names: the
// community's public address, else the one the running server uses for
// it, else localhost and its port.
func invitePublicAddr(c *community.Community) string {
	switch {
	case c.PublicAddr != "":
		return c.PublicAddr
	case c.ServedAddr != "":
		return c.ServedAddr
	case c.ListenAddr != "":
		if _, port, err := net.SplitHostPort(c.ListenAddr); err == nil {
			return net.JoinHostPort("localhost", port)
		}
	}
	return "localhost:1984"
}

// pickCommunity finds --community, or the first community when it is empty.
func pickCommunity(a *app, id string) (*community.Community, error) {
	if id != "" {
		return a.communities.Get(id)
	}
	all := a.communities.All()
	if len(all) == 0 {
		return nil, fmt.Errorf("there is no community yet: run `iotad serve` once or `iotad community create`")
	}
	return all[0], nil
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
	switch verb {
	case "create":
		uses = fs.Int("uses", community.DefaultInviteUses, "how many people may join with it")
		expires = fs.Duration("expires", community.DefaultInviteTTL, "how long it is valid")
		user = fs.String("user", "", "bind the invite to this user id")
		role = fs.String("role", "member", "what joining makes you: member, moderator, admin or owner")
		publicAddr = fs.String("public-addr", "", "host:port the invite names (default: where iotad serve serves the community)")
	case "revoke":
		id = fs.String("id", "", "the invite id")
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	a, err := openApp(ctx, *data, db.SyncFull)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := pickCommunity(a, *communityID)
	if err != nil {
		return err
	}
	operator := community.OperatorMember()
	switch verb {
	case "create":
		r, err := community.ParseRole(*role)
		if err != nil {
			return err
		}
		secret, inv, err := c.CreateOperatorInvite(ctx, community.InviteOptions{MaxUses: *uses, TTL: *expires, UserID: *user, Role: r})
		if err != nil {
			return err
		}
		if *publicAddr == "" {
			*publicAddr = invitePublicAddr(c)
		}
		fmt.Fprintln(stdout, api.InviteText(*publicAddr, secret, c.Public))
		fmt.Fprintf(stderr, "invite %s: %d use(s) as %s, expires %s\n", inv.ID, inv.MaxUses, inv.Role, inv.ExpiresAt.UTC().Format(time.RFC3339))
	case "list":
		invites, err := c.Invites(ctx, operator)
		if err != nil {
			return err
		}
		for _, inv := range invites {
			fmt.Fprintf(stdout, "%s\t%d/%d\t%s\t%s\t%s\trevoked=%t\n", inv.ID, inv.Uses, inv.MaxUses, inv.Role,
				inv.ExpiresAt.UTC().Format(time.RFC3339), inv.UserID, inv.Revoked)
		}
	case "revoke":
		if err := c.RevokeInvite(ctx, operator, *id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", *id)
	}
	return nil
}

func memberCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb, rest, err := sub(args, "list", "role")
	if err != nil {
		return err
	}
	fs := newFlags("member "+verb, stderr)
	data := dataFlag(fs)
	communityID := fs.String("community", "", "community id (default: the first)")
	var user, role *string
	if verb == "role" {
		user = fs.String("user", "", "the member's user id")
		role = fs.String("role", "", "owner, admin, moderator or member")
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	a, err := openApp(ctx, *data, db.SyncFull)
	if err != nil {
		return err
	}
	defer a.Close()
	c, err := pickCommunity(a, *communityID)
	if err != nil {
		return err
	}
	switch verb {
	case "list":
		members, err := c.Members(ctx, community.OperatorMember())
		if err != nil {
			return err
		}
		for _, m := range members {
			fmt.Fprintf(stdout, "%s\t%s\tbanned=%t\t%s\n", m.UserID, m.Role, m.Banned, m.JoinedAt.UTC().Format(time.RFC3339))
		}
	case "role":
		r, err := community.ParseRole(*role)
		if err != nil {
			return err
		}
		if err := c.OperatorSetRole(ctx, *user, r); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is now %s\n", *user, r)
	}
	return nil
}
