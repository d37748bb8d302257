package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
	icrypto "github.com/iotad/iotad/crypto"
	"github.com/iotad/iotad/internal/bustest"
	"github.com/iotad/iotad/internal/db/dbtest"
)

// buildIotad builds the binary the process tests run.
func buildIotad(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "iotad")
	if out, err := exec.Command(filepath.Join(goroot(), "bin", "go"), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// clusterData is a data directory for the nodes of a cluster on one
// machine, with the ticket secret they share.
func clusterData(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	secret := make([]byte, 32)
	rand.Read(secret)
	if err := os.WriteFile(filepath.Join(data, "ticket.secret"), []byte(base64.StdEncoding.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

// processNode is one `iotad serve` of a cluster, a real process.
type processNode struct {
	cmd  *exec.Cmd
	addr string
}

// startClusterNode starts a node on the cluster's data directory and
// waits for its /healthz. dbArgs names the shared database (none: the
// data directory's SQLite file, shared by the processes).
func startClusterNode(t *testing.T, bin, data, natsURL, name string, dbArgs []string) *processNode {
	t.Helper()
	n := &processNode{addr: freePort(t)}
	args := append([]string{"serve", "--data", data, "--addr", n.addr, "--public-addr", n.addr,
		"--media-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "warn",
		"--nats", natsURL, "--node-id", name, "--ticket-secret-file", filepath.Join(data, "ticket.secret")}, dbArgs...)
	n.cmd = exec.Command(bin, args...)
	stdout, _ := n.cmd.StdoutPipe()
	n.cmd.Stderr = os.Stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.cmd.Process.Kill(); n.cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "iotad is listening") {
	}
	go io.Copy(io.Discard, stdout)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + n.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no /healthz: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type clusterMember struct {
	id   string
	priv icrypto.PrivateKey
	c    *client.Client
}

func joinNode(t *testing.T, ctx context.Context, n *processNode, id string, priv icrypto.PrivateKey, invite string, opts *client.Options) *clusterMember {
	t.Helper()
	c, err := client.Dial(ctx, "ws://"+n.addr+"/", opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoginCommunity(ctx, id, priv, invite, nil); err != nil {
		t.Fatalf("%s on %s: %v", id, n.addr, err)
	}
	return &clusterMember{id: id, priv: priv, c: c}
}

// TestClusterKill9UnderWriteLoad is issue 12's test with real processes:
// three nodes on one store and one NATS server, a member writing through
// node B, a member listening on node A. B is killed with SIGKILL while
// writes are in flight.
// The writer goes on through node C; the listener on A sees every
// acknowledged message exactly once, in the order the store keeps, and a
// member who was on B pages every one of them from C.
func TestClusterKill9UnderWriteLoad(t *testing.T) {
	bin := buildIotad(t)
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		var dbArgs []string
		if b.Name == "postgres" {
			dbArgs = []string{"--db", b.New(t)}
		}
		nats := bustest.Start(t)
		data := clusterData(t)
		// One at a time: the first makes the community, the others find it.
		a := startClusterNode(t, bin, data, nats.URL(), "node-a", dbArgs)
		bNode := startClusterNode(t, bin, data, nats.URL(), "node-b", dbArgs)
		c := startClusterNode(t, bin, data, nats.URL(), "node-c", dbArgs)
		invite := firstInvites(t, data)[1]
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		var mu sync.Mutex
		var live []string
		gap := make(chan struct{}, 1)
		onFrame := func(frame []byte) bool {
			var f struct {
				Type string `json:"type"`
				Data struct {
					Result  string `json:"result"`
					Payload struct {
						ID      string `json:"message_id"`
						Message string `json:"message"`
					} `json:"payload"`
				} `json:"data"`
			}
			if json.Unmarshal(frame, &f) != nil || f.Type != "update" || f.Data.Result != community.ResultMessageLive {
				return false
			}
			mu.Lock()
			live = append(live, f.Data.Payload.ID)
			mu.Unlock()
			if f.Data.Payload.Message == "after" {
				gap <- struct{}{}
			}
			return true
		}
		newKey := func() icrypto.PrivateKey {
			_, priv, err := icrypto.GenerateKey(randReader)
			if err != nil {
				t.Fatal(err)
			}
			return priv
		}
		listener := joinNode(t, ctx, a, "listener", newKey(), invite, &client.Options{OnFrame: onFrame})
		defer listener.c.Close()
		writer := joinNode(t, ctx, bNode, "writer", newKey(), invite, nil)
		reader := joinNode(t, ctx, bNode, "reader", newKey(), invite, nil)

		send := func(m *clusterMember, text string) (string, error) {
			msg, err := m.c.Function(ctx, "text", "General", "general", "send_message", map[string]string{"message": text})
			if err != nil {
				return "", err
			}
			r, err := msg.Result()
			if err != nil {
				return "", err
			}
			var p struct {
				ID string `json:"message_id"`
			}
			return p.ID, json.Unmarshal(r.Payload, &p)
		}
		// Two writers on B post as fast as they are answered; B is
		// killed with writes in flight once 30 are acknowledged.
		second := joinNode(t, ctx, bNode, "second writer", newKey(), invite, nil)
		var ackMu sync.Mutex
		acked := map[string]bool{}
		enough := make(chan struct{})
		var writers sync.WaitGroup
		for _, w := range []*clusterMember{writer, second} {
			writers.Add(1)
			go func() {
				defer writers.Done()
				for i := 0; ; i++ {
					id, err := send(w, fmt.Sprint(w.id, " ", i))
					if err != nil {
						return // B is gone
					}
					ackMu.Lock()
					acked[id] = true
					if len(acked) == 30 {
						close(enough)
					}
					ackMu.Unlock()
				}
			}()
		}
		select {
		case <-enough:
		case <-ctx.Done():
			t.Fatal("30 messages were never acknowledged")
		}
		bNode.cmd.Process.Kill()
		bNode.cmd.Wait()
		writers.Wait()
		// The writer and reader come back on C, as a client does after
		// its node dies; the writer's next message shows A the gap, if A
		// missed what B committed and never published.
		writer = joinNode(t, ctx, c, writer.id, writer.priv, "", nil)
		after, err := send(writer, "after")
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-gap:
		case <-ctx.Done():
			t.Fatal("the listener on A never saw the message sent through C")
		}
		reader = joinNode(t, ctx, c, reader.id, reader.priv, "", nil)
		msg, err := reader.c.Function(ctx, "text", "General", "general", "get_messages", map[string]int{"amount": community.MaxPage})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := msg.Result()
		var page struct {
			Messages []struct {
				ID string `json:"message_id"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(r.Payload, &page); err != nil {
			t.Fatal(err)
		}
		var stored []string
		for _, m := range page.Messages {
			stored = append(stored, m.ID)
		}
		for id := range acked {
			if !slices.Contains(stored, id) {
				t.Fatalf("acknowledged message %s is not in the page C serves (%d stored, %d acknowledged)", id, len(stored), len(acked))
			}
		}
		if stored[len(stored)-1] != after {
			t.Fatal("the message sent through C is not the newest")
		}
		// Whatever B committed of the burst is stored; the listener got
		// each stored message once, in the store's order, live or by
		// its node's backfill.
		mu.Lock()
		defer mu.Unlock()
		t.Logf("%d acknowledged before the kill, %d stored, %d seen live on A", len(acked), len(stored), len(live))
		if !slices.Equal(live, stored) {
			t.Fatalf("the listener on A saw %d messages live, the store holds %d; they differ (a loss, a duplicate or the order)", len(live), len(stored))
		}
	})
}

// TestClusterAdminSocketMovesWhenItsNodeDies: nodes on one data directory
// share its admin socket, held by the first. When that node dies another
// takes the socket over, so the CLI still goes through a running node
// (which passes a ban to every node) and does not write the database
// behind the caches of the nodes still running.
func TestClusterAdminSocketMovesWhenItsNodeDies(t *testing.T) {
	bin := buildIotad(t)
	nats := bustest.Start(t)
	data := clusterData(t)
	a := startClusterNode(t, bin, data, nats.URL(), "node-a", nil)
	b := startClusterNode(t, bin, data, nats.URL(), "node-b", nil)
	mallory, _ := joinAs(t, b.addr, "mallory", firstInvites(t, data)[1])
	a.cmd.Process.Kill()
	a.cmd.Wait()
	path := filepath.Join(data, api.ControlSocket)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no node took over the admin socket after its node died: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mustRun(t, "member", "ban", "--data", data, "--user", "mallory")
	waitBanned(t, mallory, "mallory's socket on node B stayed open: the ban did not go through a running node")
}
