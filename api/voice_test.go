package api_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/community/voice"
)

// peerAPI is a pion API for test peers: loopback candidates, no mDNS.
func peerAPI(t testing.TB) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

// received counts, per publisher, the distinct packet numbers a peer got.
type received struct {
	mu   sync.Mutex
	seen map[string]map[uint32]bool
	kind map[string]webrtc.RTPCodecType
}

func newReceived() *received {
	return &received{seen: map[string]map[uint32]bool{}, kind: map[string]webrtc.RTPCodecType{}}
}

func (r *received) onTrack(t *webrtc.TrackRemote) {
	from := t.StreamID()
	key := from + "/" + t.Kind().String()
	go func() {
		for {
			pkt, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			if len(pkt.Payload) < 4 {
				continue
			}
			r.mu.Lock()
			if r.seen[key] == nil {
				r.seen[key] = map[uint32]bool{}
			}
			r.seen[key][binary.BigEndian.Uint32(pkt.Payload)] = true
			r.mu.Unlock()
		}
	}()
}

func (r *received) count(from string, kind webrtc.RTPCodecType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen[from+"/"+kind.String()])
}

// publish writes synthetic Opus-sized packets at 50 a second, numbered in
// their payload, until ctx ends; it returns how many it sent.
func publish(ctx context.Context, track *webrtc.TrackLocalStaticRTP, payloadType uint8) int {
	return publishFrom(ctx, track, payloadType, 0)
}

type voicePeer struct {
	*member
	rtc  *client.Call
	got  *received
	msgs chan client.Message
}

func (e *testEnv) callTicket(m *member, path, name string) (string, []webrtc.ICEServer) {
	e.t.Helper()
	r := ok(e.t)(m.call(e.t, "voice", path, name, "join", nil))
	var p struct {
		Ticket     string             `json:"ticket"`
		ICEServers []webrtc.ICEServer `json:"ice_servers"`
	}
	if err := json.Unmarshal(r.Payload, &p); err != nil {
		e.t.Fatal(err)
	}
	return p.Ticket, p.ICEServers
}

func (e *testEnv) joinCall(m *member, opts client.CallOptions) *voicePeer {
	e.t.Helper()
	tk, servers := e.callTicket(m, "General", "VC-1")
	vp := &voicePeer{member: m, got: newReceived(), msgs: make(chan client.Message, 100)}
	if opts.API == nil {
		opts.API = peerAPI(e.t)
	}
	if opts.ICEServers == nil {
		opts.ICEServers = servers
	}
	also := opts.OnTrack // sees the track too, but must not read it
	opts.OnTrack = func(t *webrtc.TrackRemote) {
		vp.got.onTrack(t)
		if also != nil {
			also(t)
		}
	}
	opts.OnMessage = func(msg client.Message) { vp.msgs <- msg }
	call, err := client.JoinCall(ctxT(e.t), e.url+"/ws/calls/", "General", "VC-1", tk, opts)
	if err != nil {
		e.t.Fatalf("join call: %v", err)
	}
	e.t.Cleanup(func() { call.Close() })
	vp.rtc = call
	return vp
}

// waitFor polls cond (state that arrives over the network) until it holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestVoiceThreePeers: three pion peers publish 50 packets a second each
// and each receives the other two; then one leaves and the others see it.
func TestVoiceThreePeers(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	peers := []*voicePeer{env.joinCall(env.join(community.RoleMember), client.CallOptions{}),
		env.joinCall(env.join(community.RoleMember), client.CallOptions{}),
		env.joinCall(env.join(community.RoleMember), client.CallOptions{})}

	// Everyone first receives everyone else's track.
	ctx, cancel := context.WithCancel(context.Background())
	sent := make([]int, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent[i] = publish(ctx, p.rtc.Audio, 111)
		}()
	}
	for _, p := range peers {
		for _, other := range peers {
			if other != p {
				waitFor(t, "a track to arrive", func() bool { return p.got.count(other.ID, webrtc.RTPCodecTypeAudio) > 0 })
			}
		}
	}
	// Then two seconds of talk are measured from a fresh start.
	cancel()
	wg.Wait()
	base := make(map[string]int)
	for _, p := range peers {
		for _, other := range peers {
			base[p.ID+other.ID] = p.got.count(other.ID, webrtc.RTPCodecTypeAudio)
		}
	}
	before := sent
	sent = make([]int, len(peers))
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Numbering goes on where it stopped, so the counts add up.
			sent[i] = publishFrom(ctx, p.rtc.Audio, 111, before[i])
		}()
	}
	wg.Wait()
	cancel()
	time.Sleep(500 * time.Millisecond) // the last packets are in flight on loopback
	for _, p := range peers {
		for i, other := range peers {
			if other == p {
				continue
			}
			got := p.got.count(other.ID, webrtc.RTPCodecTypeAudio) - base[p.ID+other.ID]
			if float64(got) < 0.99*float64(sent[i]) {
				t.Errorf("%s got %d of %d packets from %s", p.ID, got, sent[i], other.ID)
			}
		}
	}

	// One leaves: the others see user_changed inactive and user_left, and
	// the SFU renegotiates them.
	leaver := peers[2]
	leaver.rtc.Close()
	for _, p := range peers[:2] {
		nextResult(t, p.c, "user_left")
	}
	waitFor(t, "the room to shrink", func() bool { return len(env.com.Peers(mustFind(t, env.com, "General", "VC-1"))) == 2 })
	for _, p := range peers[:2] {
		if err := p.rtc.Err(); err != nil {
			t.Fatalf("signalling: %v", err)
		}
	}
}

// publishFrom is publish with the numbering starting at start.
func publishFrom(ctx context.Context, track *webrtc.TrackLocalStaticRTP, payloadType uint8, start int) int {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	payload := make([]byte, 80)
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n
		case <-tick.C:
		}
		seq := start + n
		binary.BigEndian.PutUint32(payload, uint32(seq))
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: payloadType, SequenceNumber: uint16(seq), Timestamp: uint32(seq * 960)}, Payload: payload}
		if err := track.WriteRTP(pkt); err != nil {
			return n
		}
		n++
	}
}

func mustFind(t testing.TB, c *community.Community, path, name string) *community.Channel {
	ch, err := c.Find(path, name)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestScreenShare: a peer starts a stream, another watches it and gets the
// video track.
func TestScreenShare(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	sharer := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	viewer := env.joinCall(env.join(community.RoleMember), client.CallOptions{})

	if _, err := viewer.rtc.Socket.Request(ctxT(t), "watch_stream", map[string]any{"user_id": sharer.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := sharer.rtc.Socket.Request(ctxT(t), "start_stream", nil); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(string(nextResult(t, viewer.c, "user_changed").Payload), `"streaming":true`) {
	}
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", "screen")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sharer.rtc.PC.AddTrack(video); err != nil {
		t.Fatal(err)
	}
	if err := sharer.rtc.Offer(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go publish(ctx, video, 96)
	go publish(ctx, sharer.rtc.Audio, 111)
	waitFor(t, "the screen share to reach the viewer", func() bool { return viewer.got.count(sharer.ID, webrtc.RTPCodecTypeVideo) > 20 })
	if sharer.got.count(viewer.ID, webrtc.RTPCodecTypeVideo) != 0 {
		t.Fatal("video went to the sharer")
	}
	if _, err := viewer.rtc.Socket.Request(ctxT(t), "watch_stream", map[string]any{"user_id": "nobody"}); errType(err) != api.ErrTypeNotFound {
		t.Fatalf("watch nobody: %v", err)
	}
}

// TestRTCPFeedback: the SFU asks a publisher again for a packet that did
// not arrive (NACK), and a viewer's request for a key frame reaches the
// screen's publisher (PLI).
func TestRTCPFeedback(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	sharer := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	videoTracks := make(chan *webrtc.TrackRemote, 4)
	viewer := env.joinCall(env.join(community.RoleMember), client.CallOptions{OnTrack: func(tr *webrtc.TrackRemote) {
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			videoTracks <- tr
		}
	}})
	if _, err := viewer.rtc.Socket.Request(ctxT(t), "watch_stream", map[string]any{"user_id": sharer.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := sharer.rtc.Socket.Request(ctxT(t), "start_stream", nil); err != nil {
		t.Fatal(err)
	}
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", "screen")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := sharer.rtc.PC.AddTrack(video)
	if err != nil {
		t.Fatal(err)
	}
	if err := sharer.rtc.Offer(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	plis := 0
	nacked := map[uint16]bool{}
	go func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			mu.Lock()
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.PictureLossIndication:
					plis++
				case *rtcp.TransportLayerNack:
					for _, pair := range p.Nacks {
						for _, seq := range pair.PacketList() {
							nacked[seq] = true
						}
					}
				}
			}
			mu.Unlock()
		}
	}()

	// Packet 40 is never sent: the SFU sees the gap and asks for it.
	const lost = 40
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		payload := make([]byte, 80)
		for seq := 0; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if seq == lost {
				continue
			}
			binary.BigEndian.PutUint32(payload, uint32(seq))
			video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(seq), Timestamp: uint32(seq * 3000)}, Payload: payload})
		}
	}()
	waitFor(t, "the screen share to reach the viewer", func() bool { return viewer.got.count(sharer.ID, webrtc.RTPCodecTypeVideo) > lost+10 })
	waitFor(t, "the SFU to ask the publisher for the lost packet", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return nacked[lost]
	})

	var remote *webrtc.TrackRemote
	select {
	case remote = <-videoTracks:
	case <-time.After(5 * time.Second):
		t.Fatal("the viewer got no video track")
	}
	mu.Lock()
	before := plis
	mu.Unlock()
	if err := viewer.rtc.PC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the viewer's PLI to reach the publisher", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return plis > before
	})
}

// TestTURNRelay: a peer that may only use relayed candidates still gets
// media through the embedded TURN server.
func TestTURNRelay(t *testing.T) {
	env := newEnv(t, nil)
	turn, err := voice.StartTURN(voice.TURNConfig{Addr: "127.0.0.1:0", PublicIP: "127.0.0.1", Secret: "test secret",
		Members: env.communities, Media: env.sfu.MediaAddrs})
	if err != nil {
		t.Fatal(err)
	}
	defer turn.Close()
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	relayMember := env.join(community.RoleMember)
	urls, user, pass, err := turn.Credentials(relayMember.ID)
	if err != nil {
		t.Fatal(err)
	}
	servers := []webrtc.ICEServer{{URLs: urls, Username: user, Credential: pass}}
	relayed := env.joinCall(relayMember, client.CallOptions{ICEServers: servers, RelayOnly: true})
	direct := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go publish(ctx, relayed.rtc.Audio, 111)
	go publish(ctx, direct.rtc.Audio, 111)
	waitFor(t, "media through TURN", func() bool {
		return direct.got.count(relayed.ID, webrtc.RTPCodecTypeAudio) > 25 && relayed.got.count(direct.ID, webrtc.RTPCodecTypeAudio) > 25
	})
	stats := relayed.rtc.PC.GetStats()
	usedRelay := false
	for _, s := range stats {
		if pair, ok := s.(webrtc.ICECandidatePairStats); ok && pair.Nominated && pair.State == webrtc.StatsICECandidatePairStateSucceeded {
			if local, ok := stats[pair.LocalCandidateID].(webrtc.ICECandidateStats); ok && local.CandidateType == webrtc.ICECandidateTypeRelay {
				usedRelay = true
			}
		}
	}
	if !usedRelay {
		t.Fatal("the relay-only peer's selected pair is not relayed")
	}
}

// TestCallBadInput: bad signalling gets the right error and the room keeps
// working for the others.
func TestCallBadInput(t *testing.T) {
	// 936 refusals queued at once would overflow the default send queue;
	// the protocol's rate limit, off in tests, normally prevents that.
	env := newEnv(t, func(c *api.Config) { c.Socket.SendQueue = 2048 })
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	good := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	other := env.joinCall(env.join(community.RoleMember), client.CallOptions{})

	t.Run("signalling before login", func(t *testing.T) {
		c := env.dial("/ws/calls/")
		for _, typ := range []string{"webrtc_sdp", "webrtc_ice", "start_stream", "end_stream", "watch_stream"} {
			if _, err := c.Request(ctxT(t), typ, map[string]any{"type": "offer", "sdp": "x"}); errType(err) != api.ErrTypeNotAuthenticated {
				t.Fatalf("%s: %v", typ, err)
			}
		}
	})
	fresh := func(t *testing.T) *client.Client {
		m := env.join(community.RoleMember)
		tk, _ := env.callTicket(m, "General", "VC-1")
		c := env.dial("/ws/calls/")
		if _, err := c.Request(ctxT(t), "identification", map[string]any{"path": "General", "name": "VC-1", "ticket": tk}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("ICE candidate before the offer", func(t *testing.T) {
		c := fresh(t)
		_, err := c.Request(ctxT(t), "webrtc_ice", map[string]any{"candidate": map[string]any{"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}})
		if errType(err) != api.ErrTypeInvalidData {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("garbage SDP", func(t *testing.T) {
		c := fresh(t)
		for _, d := range []map[string]any{
			{"type": "offer", "sdp": "this is not SDP"},
			{"type": "offer", "sdp": 5},
			{"type": "pranswer", "sdp": "v=0"},
			{"type": "answer", "sdp": "v=0\r\n"},
			{"sdp": "v=0"},
		} {
			if _, err := c.Request(ctxT(t), "webrtc_sdp", d); errType(err) != api.ErrTypeInvalidData {
				t.Fatalf("%v: %v", d, err)
			}
		}
	})
	t.Run("SDP with no audio", func(t *testing.T) {
		c := fresh(t)
		pc, _ := peerAPI(t).NewPeerConnection(webrtc.Configuration{})
		defer pc.Close()
		pc.CreateDataChannel("x", nil)
		offer, _ := pc.CreateOffer(nil)
		if _, err := c.Request(ctxT(t), "webrtc_sdp", map[string]any{"type": "offer", "sdp": offer.SDP}); errType(err) != api.ErrTypeInvalidData {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("1,000 candidates", func(t *testing.T) {
		c := fresh(t)
		pc, _ := peerAPI(t).NewPeerConnection(webrtc.Configuration{})
		defer pc.Close()
		pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio)
		offer, _ := pc.CreateOffer(nil)
		pc.SetLocalDescription(offer)
		if _, err := c.Request(ctxT(t), "webrtc_sdp", map[string]any{"type": "offer", "sdp": offer.SDP}); err != nil {
			t.Fatal(err)
		}
		// Accepted candidates get no reply; refused ones an error each.
		for i := 0; i < 1000; i++ {
			cand := fmt.Sprintf("candidate:%d 1 udp 2130706431 127.0.0.1 %d typ host", i, 10000+i)
			c.Send("webrtc_ice", fmt.Sprint(i), map[string]any{"candidate": map[string]any{"candidate": cand, "sdpMid": "0"}})
		}
		if _, err := c.Request(ctxT(t), "ping", nil); err != nil {
			t.Fatal(err)
		}
		refused := 0
		for len(c.Pushes()) > 0 {
			m := <-c.Pushes()
			switch m.Type {
			case api.ErrTypeInvalidData:
				refused++
			case "webrtc_sdp", "webrtc_ice":
			default:
				t.Fatalf("unexpected %s %s", m.Type, m.Data)
			}
		}
		if refused != 1000-voice.MaxCandidates {
			t.Fatalf("%d candidates refused", refused)
		}
	})
	// The room still works for the others.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go publish(ctx, good.rtc.Audio, 111)
	waitFor(t, "media after the bad input", func() bool { return other.got.count(good.ID, webrtc.RTPCodecTypeAudio) > 25 })
}

// TestModeratorMutes: a moderator server-mutes a member (their audio stops
// reaching others) and then disconnects them.
func TestModeratorMutes(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	mod := env.join(community.RoleModerator)
	loud := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	ear := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go publish(ctx, loud.rtc.Audio, 111)
	waitFor(t, "audio", func() bool { return ear.got.count(loud.ID, webrtc.RTPCodecTypeAudio) > 10 })

	if _, err := ear.call(t, "voice", "General", "VC-1", "mute_user", map[string]any{"user_id": loud.ID}); errType(err) != api.ErrTypePermission {
		t.Fatalf("member mutes: %v", err)
	}
	r := ok(t)(mod.call(t, "voice", "General", "VC-1", "mute_user", map[string]any{"user_id": loud.ID, "muted": true}))
	if !strings.Contains(string(r.Payload), `"server_muted":true`) {
		t.Fatalf("mute: %s", r.Payload)
	}
	time.Sleep(200 * time.Millisecond) // packets already in flight
	n := ear.got.count(loud.ID, webrtc.RTPCodecTypeAudio)
	time.Sleep(500 * time.Millisecond)
	if got := ear.got.count(loud.ID, webrtc.RTPCodecTypeAudio); got > n+5 {
		t.Fatalf("muted audio still arrives: %d then %d", n, got)
	}
	ok(t)(mod.call(t, "voice", "General", "VC-1", "disconnect_user", map[string]any{"user_id": loud.ID}))
	waitClosed(t, loud.rtc.Socket)
}

// TestMediaTimeoutAndRoomCleanup: a peer that stops sending is dropped
// after the media timeout; everyone sees it leave; the last one out takes
// the room's resources with them.
func TestMediaTimeoutAndRoomCleanup(t *testing.T) {
	env := newEnv(t, nil, func(c *voice.Config) { c.MediaTimeout = 700 * time.Millisecond })
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	quietPeer := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	talker := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go publish(ctx, talker.rtc.Audio, 111)
	if env.sfu.Rooms() != 1 {
		t.Fatalf("%d rooms", env.sfu.Rooms())
	}
	// quietPeer never sends: dropped, its call socket closed.
	waitClosed(t, quietPeer.rtc.Socket)
	for {
		got := nextResult(t, talker.c, "user_left")
		if strings.Contains(string(got.Payload), quietPeer.ID) {
			break
		}
	}
	if env.sfu.Rooms() != 1 {
		t.Fatal("the room closed while someone was still talking")
	}
	talker.rtc.Close()
	waitFor(t, "the room to close", func() bool { return env.sfu.Rooms() == 0 })
}

// TestSpeakingIndicator: packets whose RFC 6464 level says voice light the
// speaking flag up; silence turns it off again.
func TestSpeakingIndicator(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	watcher := env.join(community.RoleMember)
	m := &webrtc.MediaEngine{}
	m.RegisterDefaultCodecs()
	m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio)
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	speaker := env.joinCall(env.join(community.RoleMember), client.CallOptions{API: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))})
	var extID uint8
	waitFor(t, "the audio-level extension to be negotiated", func() bool {
		for _, tr := range speaker.rtc.PC.GetTransceivers() {
			if tr.Sender() == nil {
				continue
			}
			for _, ext := range tr.Sender().GetParameters().HeaderExtensions {
				if ext.URI == sdp.AudioLevelURI {
					extID = uint8(ext.ID)
				}
			}
		}
		return extID != 0
	})
	send := func(ctx context.Context, level byte) {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: make([]byte, 40)}
			pkt.Header.SetExtension(extID, []byte{level})
			speaker.rtc.Audio.WriteRTP(pkt)
		}
	}
	speakingIs := func(want bool) {
		t.Helper()
		for {
			got := nextResult(t, watcher.c, "user_changed")
			if strings.Contains(string(got.Payload), speaker.ID) && strings.Contains(string(got.Payload), fmt.Sprintf(`"speaking":%t`, want)) {
				return
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go send(ctx, 10) // -10 dBov: a voice
	speakingIs(true)
	cancel()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go send(ctx, 127) // silence
	speakingIs(false)
}
