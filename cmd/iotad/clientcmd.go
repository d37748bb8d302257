package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

// clientCmd lets a person use their Iota from a terminal: entries are sealed
// and opened here, with the key file, and the server sees only ciphertext.
func clientCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "communities" {
		return fmt.Errorf("usage: iotad client communities list|add|remove --key FILE --server URL")
	}
	verb, rest, err := sub(args[1:], "list", "add", "remove")
	if err != nil {
		return err
	}
	fs := newFlags("client communities "+verb, stderr)
	keyFile := fs.String("key", "", "your .tu key file")
	server := fs.String("server", "ws://localhost:1984", "the Iota's address (ws://, wss://, http:// or https://)")
	var address, title, position, entry *string
	switch verb {
	case "add":
		address = fs.String("address", "", "the community's address, e.g. a tensamin:// invite link")
		title = fs.String("title", "", "the name to show for it")
		position = fs.String("position", "0", "where it goes in your list (x.y.z)")
		entry = fs.String("entry", "", "replace this entry instead of adding one")
	case "remove":
		entry = fs.String("entry", "", "the entry id to remove")
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	raw, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	userID, priv, err := icrypto.ParseKeyFile(raw)
	if err != nil {
		return err
	}
	wsURL, err := iotaURL(*server)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, wsURL, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Login(ctx, priv, map[string]any{"user_id": userID}); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	switch verb {
	case "list":
		list, version, err := c.Communities(ctx, priv)
		if err != nil {
			return err
		}
		for _, com := range list {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", com.EntryID, com.Position, com.Title, com.Address)
		}
		fmt.Fprintf(stderr, "%d communities, version %d\n", len(list), version)
	case "add":
		if *address == "" || *title == "" {
			return fmt.Errorf("--address and --title are required")
		}
		id, version, err := c.AddCommunity(ctx, priv, client.Community{EntryID: *entry, Address: *address, Title: *title, Position: *position})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, id)
		fmt.Fprintf(stderr, "version %d\n", version)
	case "remove":
		if *entry == "" {
			return fmt.Errorf("--entry is required")
		}
		version, err := c.RemoveCommunity(ctx, *entry)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "removed, version %d\n", version)
	}
	return nil
}

// iotaURL turns what a person types into the Iota socket's URL.
func iotaURL(server string) (string, error) {
	if !strings.Contains(server, "://") {
		server = "ws://" + server
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("--server: %w", err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("--server: unsupported scheme %q", u.Scheme)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws/iota"
	}
	return u.String(), nil
}
