package api_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/internal/bus"
	"github.com/iotad/iotad/internal/bustest"
	"github.com/iotad/iotad/internal/db"
	iotasvc "github.com/iotad/iotad/iota"
)

// clusterNode is one iotad node of a test cluster: its own database
// handle (on the cluster's shared file, as a separate process would
// have), its own services with their caches, its own listener and
// sockets, and its own link to the cluster's NATS server.
type clusterNode struct {
	t           testing.TB
	name        string
	url         string
	bus         *bus.NATS
	store       *iotasvc.Store
	communities *community.Service
	com         *community.Community
	logs        *syncBuffer
	stop, kill  func()
}

// cluster is n nodes sharing one store and one NATS server.
type cluster struct {
	t     testing.TB
	nats  *bustest.Server
	nodes []*clusterNode
	file  string
	dir   string
}

// newCluster starts n nodes. The first creates the community before the
// others open the store, so every node serves it.
func newCluster(t testing.TB, n int) *cluster {
	t.Helper()
	cl := &cluster{t: t, nats: bustest.Start(t), dir: t.TempDir()}
	cl.file = filepath.Join(cl.dir, "iotad.db")
	secret := make([]byte, 32)
	rand.Read(secret)
	for i := range n {
		cl.nodes = append(cl.nodes, cl.startNode(fmt.Sprintf("node-%d", i), secret, i == 0))
	}
	return cl
}

func (cl *cluster) startNode(name string, secret []byte, create bool) *clusterNode {
	t := cl.t
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, cl.file, db.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	store, err := iotasvc.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With(slog.String("node", name))
	b, err := bus.DialNATS(cl.nats.URL(), bus.NATSOptions{Name: name, Log: logger, ReconnectWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := bus.NewNATSClaims(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String()
	// Each node hands out its own ICE servers, so a test can tell whose a
	// join answered with.
	ice := func(string) []community.ICEServer {
		return []community.ICEServer{{URLs: []string{"stun:" + name + ".test:3478"}}}
	}
	communities, err := community.Open(ctx, d, community.Options{KeyDir: cl.dir, Codecs: testCodecs(),
		Bus: b, Claims: claims, Requests: b, TicketSecret: secret, ICEServers: ice,
		Node: community.Node{ID: name, CallURL: url + "/ws/calls/"}, LeaseTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if create {
		if _, err := communities.Create(ctx, "Test"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := api.DefaultConfig()
	cfg.LoginRate, cfg.LoginBurst = 1e6, 1e6
	cfg.Socket.RequestRate, cfg.Socket.RequestBurst = 1e6, 1e6
	cfg.UserRequestRate, cfg.UserRequestBurst = 1e6, 1e6
	cfg.MaxConnectionsPerAddr, cfg.MaxUnauthenticatedPerAddr, cfg.MaxConnectionsPerUser = 0, 0, 0
	srv := api.New(cfg, logger, api.Services{Iota: store, Communities: communities, Bus: b})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	n := &clusterNode{t: t, name: name, url: url, bus: b, store: store,
		communities: communities, com: communities.All()[0], logs: logs}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			communities.Close()
			b.Close()
			d.Close()
		})
	}
	// kill stops the node as a crash would, for the rest of the cluster:
	// its NATS link drops first, so it releases no lease and says no
	// goodbye, then its sockets go.
	n.kill = func() {
		b.Close()
		n.stop()
	}
	t.Cleanup(n.stop)
	return n
}

func (n *clusterNode) dial(path string) *client.Client {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, n.url+path, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// join makes a new member through this node, with role.
func (n *clusterNode) join(role community.Role) *member {
	n.t.Helper()
	secret, _, err := n.com.CreateOperatorInvite(context.Background(), community.InviteOptions{})
	if err != nil {
		n.t.Fatal(err)
	}
	u := newKey(n.t)
	c := n.dial("/")
	pin := n.com.Public
	l, err := c.LoginCommunity(ctxT(n.t), u.ID, u.Priv, secret, &pin)
	if err != nil {
		n.t.Fatalf("join on %s: %v", n.name, err)
	}
	m := &member{testUser: u, c: c, login: l}
	if role != community.RoleMember {
		if err := n.com.OperatorSetRole(context.Background(), u.ID, role); err != nil {
			n.t.Fatal(err)
		}
		waitRole(n.t, m, role)
	}
	return m
}

// waitRole waits for the role_changed update that gives m role.
func waitRole(t testing.TB, m *member, role community.Role) {
	t.Helper()
	for {
		r := nextResult(t, m.c, api.ResultRoleChanged)
		if strings.Contains(string(r.Payload), m.ID) && strings.Contains(string(r.Payload), string(role)) {
			return
		}
	}
}

// TestClusterMessagesReachEveryMemberOnce: nine members spread over
// three nodes, one sender per node posting concurrently. Every member
// gets every message_live exactly once, and each sender's messages in
// the order they committed. (Order between senders on different nodes
// needs the store's per-channel sequence: see bus.Sequencer.)
func TestClusterMessagesReachEveryMemberOnce(t *testing.T) {
	cl := newCluster(t, 3)
	owner := cl.nodes[0].join(community.RoleOwner)
	setupChannels(t, owner)
	var members []*member
	for i := range 9 {
		members = append(members, cl.nodes[i%3].join(community.RoleMember))
	}
	const each = 30
	sent := make([][]string, 3)
	var wg sync.WaitGroup
	for s := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				msg, err := members[s].c.Function(ctxT(t), "text", "General", "chat", "send_message", map[string]any{"message": fmt.Sprintf("%d-%d", s, i)})
				if err != nil {
					t.Errorf("send: %v", err)
					return
				}
				r, _ := msg.Result()
				var p struct {
					ID string `json:"message_id"`
				}
				json.Unmarshal(r.Payload, &p)
				sent[s] = append(sent[s], p.ID)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, m := range members {
		got := map[string][]string{} // sender → ids in arrival order
		seen := map[string]bool{}
		for range 3 * each {
			r := nextResult(t, m.c, community.ResultMessageLive)
			var p struct {
				ID     string `json:"message_id"`
				Sender string `json:"sender_id"`
			}
			json.Unmarshal(r.Payload, &p)
			if seen[p.ID] {
				t.Fatalf("member %d (on %s) got %s twice", i, cl.nodes[i%3].name, p.ID)
			}
			seen[p.ID] = true
			got[p.Sender] = append(got[p.Sender], p.ID)
		}
		for s := range 3 {
			if !slices.Equal(got[members[s].ID], sent[s]) {
				t.Fatalf("member %d (on %s): sender %d's messages arrived as %v, committed as %v", i, cl.nodes[i%3].name, s, got[members[s].ID], sent[s])
			}
		}
		quiet(t, m.c, community.ResultMessageLive)
	}
}

// TestClusterBanClosesSocketOnAnotherNode: the owner on node A bans a
// member whose socket is on node C: that socket closes with the ban's
// code, the member can log in on no node, and node B's members hear of
// the role change and tree change made on A.
func TestClusterBanClosesSocketOnAnotherNode(t *testing.T) {
	cl := newCluster(t, 3)
	a, b, c := cl.nodes[0], cl.nodes[1], cl.nodes[2]
	owner := a.join(community.RoleOwner)
	setupChannels(t, owner)
	onB := b.join(community.RoleMember)
	target := c.join(community.RoleMember)

	// A tree change on A reaches B with B's tree already reloaded.
	ok(t)(owner.root(t, "create_channel", map[string]any{"path": "General", "name": "news", "codec": "text"}))
	r := nextResult(t, onB.c, api.ResultInteractablesChanged)
	if !strings.Contains(string(r.Payload), `"news"`) {
		t.Fatalf("B's interactables_changed lacks the new channel: %s", r.Payload)
	}
	// And B's cache serves it: a message there works on B.
	ok(t)(onB.call(t, "text", "General", "news", "send_message", map[string]any{"message": "first"}))

	// A role change on A: the member on C is now a moderator, B hears it.
	if err := a.com.OperatorSetRole(context.Background(), target.ID, community.RoleModerator); err != nil {
		t.Fatal(err)
	}
	waitRole(t, target, community.RoleModerator)
	waitRole(t, &member{testUser: target.testUser, c: onB.c}, community.RoleModerator)

	ok(t)(owner.root(t, "ban", map[string]any{"user_id": target.ID}))
	if code := waitClosed(t, target.c); code != api.CloseBanned {
		t.Fatalf("the banned member's socket on C closed with %d, want %d", code, api.CloseBanned)
	}
	for _, n := range cl.nodes {
		cc := n.dial("/")
		if _, err := cc.LoginCommunity(ctxT(t), target.ID, target.Priv, "", nil); err == nil {
			t.Fatalf("a banned member logged in on %s", n.name)
		}
	}
}

// TestClusterIotaDevicesOnTwoNodes: one user's phone on node A and laptop
// on node B stay in sync; a third device on A hears B's changes too, and
// the account's deletion on A closes the laptop on B.
func TestClusterIotaDevicesOnTwoNodes(t *testing.T) {
	cl := newCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	key := newKey(t)
	priv := key.Priv
	u, err := a.store.CreateUser(context.Background(), "test", key.Pub)
	if err != nil {
		t.Fatal(err)
	}
	login := func(n *clusterNode) *client.Client {
		c := n.dial("/ws/iota")
		if _, err := c.Login(ctxT(t), priv, map[string]any{"user_id": u.ID}); err != nil {
			t.Fatalf("login on %s: %v", n.name, err)
		}
		return c
	}
	phone, laptop, tablet := login(a), login(b), login(a)
	_, version, err := phone.AddCommunity(ctxT(t), priv, client.Community{Address: "x", Title: "y", Position: "z"})
	if err != nil {
		t.Fatal(err)
	}
	for name, dev := range map[string]*client.Client{"laptop on B": laptop, "tablet on A": tablet} {
		got := decode[struct {
			Result  string `json:"result"`
			Version int64  `json:"version"`
		}](t, next(t, dev))
		if got.Result != "communities_changed" || got.Version != version {
			t.Fatalf("%s got %+v, want communities_changed %d", name, got, version)
		}
	}
	if _, err := laptop.Request(ctxT(t), "settings_save", map[string]any{"settings_name": "theme", "payload": "sealed"}); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []*client.Client{phone, tablet} {
		if m := next(t, dev); !strings.Contains(string(m.Data), "settings_changed") {
			t.Fatalf("a device on A got %s", m.Data)
		}
	}
	if _, err := phone.Request(ctxT(t), "delete_user", nil); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, laptop)
	waitClosed(t, tablet)
}

// callJoin is what a voice join answered.
type callJoin struct {
	Ticket     string                `json:"ticket"`
	CallURL    string                `json:"call_url"`
	ICEServers []community.ICEServer `json:"ice_servers"`
}

func joinVoice(t testing.TB, m *member) callJoin {
	t.Helper()
	r := ok(t)(m.call(t, "voice", "General", "VC-1", "join", nil))
	var j callJoin
	if err := json.Unmarshal(r.Payload, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// redeem opens a call socket at url with ticket.
func redeem(t testing.TB, url, ticket string) (*client.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_, err = c.Request(ctxT(t), "identification", map[string]any{"path": "General", "name": "VC-1", "ticket": ticket})
	return c, err
}

// TestClusterCallLivesOnOneNode: the first join (on B) places the call on
// B; a join on A answers with B's call URL and B's ICE servers, and A's
// ticket opens a call socket on B, once: used again it is refused, and a
// call socket on a node that does not hold the call is refused too. A
// is told of the presence on B.
func TestClusterCallLivesOnOneNode(t *testing.T) {
	cl := newCluster(t, 3)
	a, b, c := cl.nodes[0], cl.nodes[1], cl.nodes[2]
	owner := a.join(community.RoleOwner)
	setupChannels(t, owner)
	onB := b.join(community.RoleMember)
	first := joinVoice(t, onB)
	if first.CallURL != b.url+"/ws/calls/" {
		t.Fatalf("the first join on B placed the call at %q", first.CallURL)
	}
	j := joinVoice(t, owner)
	if j.CallURL != first.CallURL || len(j.ICEServers) != 1 || j.ICEServers[0].URLs[0] != "stun:node-1.test:3478" {
		t.Fatalf("a join on A answered %+v; want B's call URL and ICE servers", j)
	}
	if _, err := redeem(t, c.url+"/ws/calls/", j.Ticket); err == nil {
		t.Fatal("a call socket opened on C, which does not hold the call")
	}
	if _, err := redeem(t, j.CallURL, j.Ticket); err != nil {
		t.Fatalf("A's ticket on B: %v", err)
	}
	if _, err := redeem(t, j.CallURL, j.Ticket); err == nil {
		t.Fatal("the ticket was used twice")
	}
	// The owner's socket on A hears that they are in the call on B.
	for {
		r := nextResult(t, owner.c, community.ResultUserChanged)
		if strings.Contains(string(r.Payload), owner.ID) && strings.Contains(string(r.Payload), community.StateActive) {
			break
		}
	}
}

// TestClusterCallMovesWhenItsNodeDies: the call is on B; B dies (its NATS
// link first, as in a crash). The next join, on A, places the call on a
// live node, and its ticket opens a call socket there.
func TestClusterCallMovesWhenItsNodeDies(t *testing.T) {
	cl := newCluster(t, 3)
	a, b := cl.nodes[0], cl.nodes[1]
	owner := a.join(community.RoleOwner)
	setupChannels(t, owner)
	onB := b.join(community.RoleMember)
	j := joinVoice(t, onB)
	if _, err := redeem(t, j.CallURL, j.Ticket); err != nil {
		t.Fatal(err)
	}
	b.kill()
	moved := joinVoice(t, owner)
	if moved.CallURL == j.CallURL || moved.CallURL == "" {
		t.Fatalf("after B died the call is still placed at %q", moved.CallURL)
	}
	if _, err := redeem(t, moved.CallURL, moved.Ticket); err != nil {
		t.Fatalf("the moved call's socket: %v", err)
	}
}

// TestClusterNATSRestart: NATS goes away and comes back. Meanwhile each
// node still serves its own sockets (a message on A reaches A's members);
// after the nodes reconnect, messages cross nodes again.
func TestClusterNATSRestart(t *testing.T) {
	cl := newCluster(t, 2)
	a, b := cl.nodes[0], cl.nodes[1]
	owner := a.join(community.RoleOwner)
	setupChannels(t, owner)
	onA, onB := a.join(community.RoleMember), b.join(community.RoleMember)
	cl.nats.Stop()
	ok(t)(owner.call(t, "text", "General", "chat", "send_message", map[string]any{"message": "during"}))
	nextResult(t, onA.c, community.ResultMessageLive)
	cl.nats.Restart()
	// The publish made while NATS was down sits in A's reconnect buffer and
	// goes out on reconnect; either way B hears messages again: send until
	// one sent after the restart arrives.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		r := ok(t)(owner.call(t, "text", "General", "chat", "send_message", map[string]any{"message": fmt.Sprint("after ", i)}))
		var sentID struct {
			ID string `json:"message_id"`
		}
		json.Unmarshal(r.Payload, &sentID)
		got := waitLive(onB.c, 300*time.Millisecond, sentID.ID)
		if got {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("messages never crossed nodes again after NATS restarted")
		}
	}
}

// waitLive reports whether c gets the message_live of id within d.
func waitLive(c *client.Client, d time.Duration, id string) bool {
	timeout := time.After(d)
	for {
		select {
		case m, ok := <-c.Pushes():
			if !ok {
				return false
			}
			if r, err := m.Result(); err == nil && r.Result == community.ResultMessageLive && strings.Contains(string(r.Payload), id) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// TestCallURLAloneIsThisServer: a single server's join names no call_url,
// so that a client opens the call socket at the address it reached the
// community by (another name, a proxy), not at the server's idea of its
// own address.
func TestCallURLAloneIsThisServer(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	if j := joinVoice(t, owner); j.CallURL != "" {
		t.Fatalf("call_url %q alone, want none", j.CallURL)
	}
}

// TestClusterInviteIsNeverOverUsed: an invite with max_uses 3, used at
// once by nine newcomers spread over three nodes, admits exactly three.
func TestClusterInviteIsNeverOverUsed(t *testing.T) {
	cl := newCluster(t, 3)
	secret, _, err := cl.nodes[0].com.CreateOperatorInvite(context.Background(), community.InviteOptions{MaxUses: 3})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	joined := 0
	for i := range 9 {
		n := cl.nodes[i%3]
		c := n.dial("/")
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := newKey(t)
			pin := n.com.Public
			if _, err := c.LoginCommunity(ctxT(t), u.ID, u.Priv, secret, &pin); err == nil {
				mu.Lock()
				joined++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if joined != 3 {
		t.Fatalf("%d newcomers joined with an invite of 3 uses", joined)
	}
}

// TestClusterNodeDiesUnderWriteLoad: a member posts through node B as
// fast as acknowledgements come; B dies mid-stream (its NATS link first,
// then its sockets). A reader whose socket was on B reconnects to node C
// and pages the channel: every message B acknowledged is there, in order.
func TestClusterNodeDiesUnderWriteLoad(t *testing.T) {
	cl := newCluster(t, 3)
	a, b, c := cl.nodes[0], cl.nodes[1], cl.nodes[2]
	owner := a.join(community.RoleOwner)
	setupChannels(t, owner)
	writer, reader := b.join(community.RoleMember), b.join(community.RoleMember)

	var acked []string
	killed := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// At most 90, so that one page holds them all however slowly B dies.
		for i := range 90 {
			msg, err := writer.c.Function(ctxT(t), "text", "General", "chat", "send_message", map[string]any{"message": fmt.Sprint(i)})
			if err != nil {
				return // B is gone
			}
			r, _ := msg.Result()
			var p struct {
				ID string `json:"message_id"`
			}
			json.Unmarshal(r.Payload, &p)
			acked = append(acked, p.ID)
			if i == 20 {
				close(killed)
			}
		}
	}()
	select {
	case <-killed:
	case <-done:
		t.Fatalf("the writer stopped after %d messages, before B was killed", len(acked))
	}
	b.kill()
	<-done
	waitClosed(t, reader.c)

	again := c.dial("/")
	if _, err := again.LoginCommunity(ctxT(t), reader.ID, reader.Priv, "", nil); err != nil {
		t.Fatalf("the reader could not log in on C: %v", err)
	}
	msg, err := again.Function(ctxT(t), "text", "General", "chat", "get_messages", map[string]any{"loaded_messages": 0, "amount": community.MaxPage})
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
	if len(acked) < 21 || len(acked) > community.MaxPage {
		t.Fatalf("%d messages acknowledged; the test needs 21 to %d", len(acked), community.MaxPage)
	}
	// Stored may hold one more than acknowledged: committed, its answer lost.
	for i, id := range acked {
		if i >= len(stored) || stored[i] != id {
			t.Fatalf("acknowledged message %d (%s) is not where it belongs in the page C serves (%d stored)", i, id, len(stored))
		}
	}
}
