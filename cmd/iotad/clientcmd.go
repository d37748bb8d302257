package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/atomicfile"
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
	kf, err := icrypto.ReadKeyFile(raw)
	if err != nil {
		return err
	}
	priv := kf.Private
	wsURL, err := iotaURL(*server)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := loginIota(ctx, wsURL, *keyFile, kf, stderr)
	if err != nil {
		return err
	}
	defer c.Close()
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
		// Sealed as given (invite and tls=1 included), but only once it reads
		// as an address: a typo would be found only by the next client.
		if _, err := client.ParseAddress(*address); err != nil {
			return fmt.Errorf("--address: %w", err)
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

// loginIota logs in with the Iota key pinned in the key file's second line,
// else the one known_iotas beside the key file remembers for this URL,
// else the one the Iota names, which is then remembered (trust on first
// use, like SSH). A challenge bound to another key is never answered.
func loginIota(ctx context.Context, wsURL, keyFile string, kf icrypto.KeyFile, stderr io.Writer) (*client.Client, error) {
	knownFile := filepath.Join(filepath.Dir(keyFile), knownIotasFile)
	known, err := readKnownIotas(knownFile)
	if err != nil {
		return nil, err
	}
	pinned, where := kf.IotaKey, keyFile
	if pinned == nil {
		if k, ok := known[wsURL]; ok {
			pinned, where = &k, knownFile
		}
	}
	c, err := client.Dial(ctx, wsURL, &client.Options{ServerKey: pinned})
	if err != nil {
		return nil, err
	}
	if _, err := c.Login(ctx, kf.Private, map[string]any{"user_id": kf.UserID}); err != nil {
		c.Close()
		if errors.Is(err, client.ErrServerIdentity) {
			return nil, fmt.Errorf("login refused: %s is not the Iota pinned in %s, so its challenge was not answered "+
				"(it may be relaying another server's login). If that Iota's key really changed, remove its line from %s: %w",
				wsURL, where, knownFile, err)
		}
		return nil, fmt.Errorf("login: %w", err)
	}
	if pinned == nil {
		known[wsURL] = c.ServerKey()
		if err := writeKnownIotas(knownFile, known); err != nil {
			c.Close()
			return nil, err
		}
		fmt.Fprintf(stderr, "first login to %s: its key %s is now pinned in %s\n", wsURL, c.ServerKey(), knownFile)
	}
	return c, nil
}

// knownIotasFile, beside the key file, holds "<Iota URL> <base64 key>"
// lines: the Iota keys this user has pinned on first use.
const knownIotasFile = "known_iotas"

func readKnownIotas(path string) (map[string]icrypto.PublicKey, error) {
	known := map[string]icrypto.PublicKey{}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return known, nil
	}
	if err != nil {
		return nil, fmt.Errorf("known Iotas: %w", err)
	}
	for n, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, k, ok := strings.Cut(line, " ")
		pub, err := icrypto.ParsePublicKey(strings.TrimSpace(k))
		if !ok || err != nil {
			return nil, fmt.Errorf("known Iotas %s line %d: want \"<url> <base64 key>\"", path, n+1)
		}
		known[u] = pub
	}
	return known, nil
}

func writeKnownIotas(path string, known map[string]icrypto.PublicKey) error {
	urls := make([]string, 0, len(known))
	for u := range known {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	var b strings.Builder
	b.WriteString("# Iota keys pinned on first login (PROTOCOL §3); a changed key is refused.\n")
	for _, u := range urls {
		fmt.Fprintf(&b, "%s %s\n", u, known[u])
	}
	if err := atomicfile.Write(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("known Iotas: %w", err)
	}
	return nil
}

// iotaURL turns what a person types into the Iota socket's URL. A
// tensamin:// address names the Iota too (it shares the first
// community's listener): wss:// with tls=1.
func iotaURL(server string) (string, error) {
	if strings.HasPrefix(strings.ToLower(server), "tensamin:") {
		a, err := client.ParseAddress(server)
		if err != nil {
			return "", fmt.Errorf("--server: %w", err)
		}
		return a.SocketURL() + "ws/iota", nil
	}
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
