package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotad/iotad/internal/bustest"
)

// TestServeClusterFlagsBadInput: the cluster flags refuse what would make
// a cluster that half works, with a message naming the flag.
func TestServeClusterFlagsBadInput(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("too short\n"), 0o600)
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte(strings.Repeat("s", 32)), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nats without a ticket secret", []string{"--nats", "nats://127.0.0.1:1"}, "--ticket-secret-file"},
		{"short ticket secret", []string{"--ticket-secret-file", short}, "at least 32"},
		{"missing ticket secret file", []string{"--ticket-secret-file", filepath.Join(dir, "none")}, "--ticket-secret-file"},
		{"node id with a dot", []string{"--nats", "nats://127.0.0.1:1", "--ticket-secret-file", good, "--node-id", "a.b"}, "--node-id"},
		{"nats unreachable", []string{"--nats", "nats://127.0.0.1:1", "--ticket-secret-file", good}, "connect to nats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--media-addr", "127.0.0.1:0", "--admin-addr", ""}, tc.args...)
			err := run(t.Context(), args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serve %v: %v; want an error naming %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestServeNodesShareADataDirectory: two `serve --nats` nodes on one data
// directory (the SQLite file, keys, ticket secret): the second starts
// although the first holds the admin socket, a member joins on the second
// with an invite the CLI made, and a ban from the CLI (through the first
// node's admin socket) closes that member's socket on the second node.
func TestServeNodesShareADataDirectory(t *testing.T) {
	nats := bustest.Start(t)
	data := t.TempDir()
	secret := filepath.Join(data, "ticket.secret")
	os.WriteFile(secret, []byte(strings.Repeat("k", 44)), 0o600)
	node := func(id string) string {
		addr := freePort(t)
		startServeWith(t, io.Discard, "--data", data, "--addr", addr, "--log-level", "warn",
			"--nats", nats.URL(), "--node-id", id, "--ticket-secret-file", secret)
		return addr
	}
	node("a")
	b := node("b")
	mallory, _ := joinAs(t, b, "mallory", firstInvites(t, data)[1])
	mustRun(t, "member", "ban", "--data", data, "--user", "mallory")
	waitBanned(t, mallory, "the member banned through node a still has a socket on node b")
}
