// Package voice is the selective forwarding unit behind voice channels: a
// room per call, a pion PeerConnection per peer, and RTP forwarded from each
// publisher to the others without decoding it.
//
// The package knows nothing of sockets or members: the transport hands it
// SDP and ICE from a peer and gets the server's through Signal.
package voice

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Errors a peer's signalling can meet; the transport maps them.
var (
	ErrBadSDP       = errors.New("bad session description")
	ErrNoAudio      = errors.New("the offer has no audio")
	ErrNoOffer      = errors.New("no offer yet")
	ErrTooManyICE   = errors.New("too many ICE candidates for one connection")
	ErrBadCandidate = errors.New("bad ICE candidate")
	ErrClosed       = errors.New("the peer has left")
	ErrNoStream     = errors.New("that user is not streaming")
)

// MaxCandidates bounds the ICE candidates one peer connection accepts.
const MaxCandidates = 64

// Config is the network set-up of the SFU.
type Config struct {
	// UDPAddr is the one UDP address all media uses (host:port).
	UDPAddr string
	// PublicIPs are announced instead of the host's own (NAT 1:1).
	PublicIPs []string
	// IncludeLoopback offers loopback candidates (tests on one machine).
	IncludeLoopback bool
	// MediaTimeout drops a peer that has sent no media for this long
	// once connected.
	MediaTimeout time.Duration
	// DisconnectedTimeout and FailedTimeout tune ICE.
	DisconnectedTimeout, FailedTimeout time.Duration
	Log                                *slog.Logger
}

// Signal is how the SFU talks back to one peer's transport.
type Signal interface {
	// SDP sends the server's offer or answer.
	SDP(typ, sdp string)
	// ICE sends one of the server's candidates.
	ICE(c webrtc.ICECandidateInit)
	// End tells the transport the SFU dropped the peer (ICE failed,
	// media stopped); the transport closes the call socket.
	End(reason string)
	// Speaking reports a change of the peer's speaking flag.
	Speaking(speaking bool)
}

// SFU is the forwarding unit of one process.
type SFU struct {
	cfg  Config
	api  *webrtc.API
	mux  ice.UDPMux
	conn net.PacketConn
	// batch is conn as the ICE mux writes to it: one forwarded packet's
	// copies leave in one system call.
	batch *batchConn
	log   *slog.Logger

	mu    sync.Mutex
	rooms map[string]*Room

	// Forwarded counts RTP packets written to subscribers.
	Forwarded atomic.Int64
	setup     setupTimes
}

// New starts the SFU's UDP listener.
func New(cfg Config) (*SFU, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MediaTimeout == 0 {
		cfg.MediaTimeout = 30 * time.Second
	}
	if cfg.DisconnectedTimeout == 0 {
		cfg.DisconnectedTimeout = 5 * time.Second
	}
	if cfg.FailedTimeout == 0 {
		cfg.FailedTimeout = 15 * time.Second
	}
	conn, err := net.ListenPacket("udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("voice: media port: %w", err)
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		conn.Close()
		return nil, err
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		conn.Close()
		return nil, err
	}
	// pion's default set less its stats interceptor: nothing here reads
	// GetStats, and recording every packet in and out was 7 % of the CPU
	// of forwarding a 10-peer call. NACK (video only), RTCP reports, the
	// mid/rid header extensions and TWCC feedback are kept.
	reg := &interceptor.Registry{}
	if err := errors.Join(
		webrtc.ConfigureNack(m, reg),
		webrtc.ConfigureRTCPReports(reg),
		webrtc.ConfigureSimulcastExtensionHeaders(m),
		webrtc.ConfigureTWCCSender(m, reg),
	); err != nil {
		conn.Close()
		return nil, err
	}
	udp, ok := conn.(*net.UDPConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("voice: media port %s is not UDP", cfg.UDPAddr)
	}
	batch, err := newBatchConn(udp)
	if err != nil {
		conn.Close()
		return nil, err
	}
	mux := webrtc.NewICEUDPMux(nil, batch)
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	// Bound to a loopback address, loopback candidates are the only ones.
	loopback := false
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		loopback = ua.IP.IsLoopback()
	}
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback || loopback)
	se.SetICETimeouts(cfg.DisconnectedTimeout, cfg.FailedTimeout, 2*time.Second)
	// mDNS candidates would leak nothing useful here and need multicast.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if len(cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	s := &SFU{
		cfg: cfg, conn: conn, batch: batch, mux: mux, log: cfg.Log, rooms: map[string]*Room{}, setup: newSetupTimes(),
		api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)),
	}
	return s, nil
}

// Addr is the media port's address.
func (s *SFU) Addr() net.Addr { return s.conn.LocalAddr() }

// Close ends every peer and the media port.
func (s *SFU) Close() error {
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		for _, p := range r.list() {
			p.Close()
		}
	}
	s.mux.Close()
	return s.conn.Close()
}

// Rooms reports how many rooms are open.
func (s *SFU) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// Room is one call: its peers forward to each other.
type Room struct {
	sfu *SFU
	id  string

	mu    sync.Mutex
	peers map[string]*Peer
}

func (r *Room) list() []*Peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Peer, 0, len(r.peers))
	for _, p := range r.peers {
		out = append(out, p)
	}
	return out
}

// Join adds a peer for userID to the call's room (creating the room). A
// peer already there for the same user is closed first.
func (s *SFU) Join(callID, userID string, sig Signal) (*Peer, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("voice: peer connection: %w", err)
	}
	s.mu.Lock()
	room := s.rooms[callID]
	if room == nil {
		room = &Room{sfu: s, id: callID, peers: map[string]*Peer{}}
		s.rooms[callID] = room
	}
	s.mu.Unlock()

	p := &Peer{room: room, userID: userID, pc: pc, sig: sig, subs: map[*outTrack]*webrtc.RTPSender{}, joined: time.Now(),
		watching: map[string]bool{}, log: s.log.With(slog.String("call", callID), slog.String("user", userID))}
	p.lastMedia.Store(time.Now().UnixNano())
	room.mu.Lock()
	old := room.peers[userID]
	room.peers[userID] = p
	room.mu.Unlock()
	if old != nil {
		old.end("joined again")
	}

	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			sig.ICE(c.ToJSON())
		}
	})
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			p.noteConnected()
		case webrtc.PeerConnectionStateFailed:
			p.end("media connection failed")
		}
	})
	// Others' audio is added when the peer's first offer arrives, so the
	// answer already carries it.
	return p, nil
}

// Peer is one user's connection in a room.
type Peer struct {
	room   *Room
	userID string
	pc     *webrtc.PeerConnection
	sig    Signal
	log    *slog.Logger

	joined    time.Time    // for iotad_call_setup_seconds
	lastMedia atomic.Int64 // unix nanos of the latest RTP from this peer
	connected atomic.Bool
	gotMedia  atomic.Bool
	muted     atomic.Bool // server-muted: audio is not forwarded
	voiced    atomic.Int64
	speaking  bool // touched by the room's speaking ticker only

	mu          sync.Mutex
	closed      bool
	ready       bool // the first offer arrived
	offering    bool // a server offer awaits its answer
	pending     bool // renegotiation wanted
	sweep       bool // subscribe to the tracks published before the first offer
	candidates  int
	audio       *outTrack
	screen      *outTrack
	subs        map[*outTrack]*webrtc.RTPSender
	watching    map[string]bool
	stopTimeout chan struct{}
}

// outTrack is one published track, written once per packet to every
// subscriber's connection by pion.
type outTrack struct {
	owner *Peer
	local *webrtc.TrackLocalStaticRTP
	ssrc  webrtc.SSRC
	video bool
}

// UserID is the peer's user.
func (p *Peer) UserID() string { return p.userID }

// HandleSDP takes an offer or answer from the peer. For an offer it
// returns the server's answer.
func (p *Peer) HandleSDP(typ, raw string) (string, error) {
	var desc webrtc.SessionDescription
	switch typ {
	case "offer":
		desc = webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: raw}
	case "answer":
		desc = webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: raw}
	default:
		return "", fmt.Errorf("%w: type must be offer or answer", ErrBadSDP)
	}
	parsed, err := desc.Unmarshal()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return "", ErrClosed
	}
	var answer string
	first := false
	if typ == "offer" {
		if !p.ready && !hasAudio(parsed) {
			p.mu.Unlock()
			return "", ErrNoAudio
		}
		if p.offering {
			// Glare: the peer's offer wins; ours is made again afterwards.
			if err := p.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
				p.mu.Unlock()
				return "", fmt.Errorf("voice: rollback: %w", err)
			}
			p.offering, p.pending = false, true
		}
		if err := p.pc.SetRemoteDescription(desc); err != nil {
			p.mu.Unlock()
			return "", fmt.Errorf("%w: %v", ErrBadSDP, err)
		}
		ans, err := p.pc.CreateAnswer(nil)
		if err == nil {
			err = p.pc.SetLocalDescription(ans)
		}
		if err != nil {
			p.mu.Unlock()
			return "", fmt.Errorf("%w: %v", ErrBadSDP, err)
		}
		first = !p.ready
		p.ready = true
		answer = ans.SDP
	} else {
		if !p.offering {
			p.mu.Unlock()
			return "", fmt.Errorf("%w: no server offer awaits an answer", ErrNoOffer)
		}
		if err := p.pc.SetRemoteDescription(desc); err != nil {
			p.mu.Unlock()
			return "", fmt.Errorf("%w: %v", ErrBadSDP, err)
		}
		p.offering = false
	}
	p.mu.Unlock()
	if answer != "" {
		p.startMediaTimeout()
	}
	if first {
		p.mu.Lock()
		p.sweep = true
		p.mu.Unlock()
	}
	return answer, nil
}

// Settle sends what waited for the exchange HandleSDP finished: the tracks
// published before the peer's first offer, and a renegotiation that came
// up meanwhile. The transport calls it once the answer is on its way, so
// the new offer reaches the peer after it.
func (p *Peer) Settle() {
	p.mu.Lock()
	sweep, pending := p.sweep, p.pending
	p.sweep = false
	p.mu.Unlock()
	if sweep {
		p.subscribeExisting()
	}
	if pending {
		p.negotiate()
	}
}

func hasAudio(d *sdp.SessionDescription) bool {
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media == "audio" {
			return true
		}
	}
	return false
}

// AddICE takes one ICE candidate from the peer.
func (p *Peer) AddICE(c webrtc.ICECandidateInit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.pc.RemoteDescription() == nil {
		return fmt.Errorf("%w: send the offer before candidates", ErrNoOffer)
	}
	if p.candidates >= MaxCandidates {
		return ErrTooManyICE
	}
	p.candidates++
	if strings.TrimSpace(c.Candidate) == "" {
		return nil // end of candidates
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

// negotiate sends a new offer, or remembers to once the current exchange
// is over.
func (p *Peer) negotiate() {
	p.mu.Lock()
	if p.closed || !p.ready || p.offering || p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.pending = true
		p.mu.Unlock()
		return
	}
	p.pending = false
	offer, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.mu.Unlock()
		p.log.Warn("renegotiation failed", slog.Any("err", err))
		p.end("renegotiation failed")
		return
	}
	p.offering = true
	p.mu.Unlock()
	p.sig.SDP("offer", offer.SDP)
}

// onTrack publishes a track the peer sends to the others in the room.
func (p *Peer) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	video := remote.Kind() == webrtc.RTPCodecTypeVideo
	id := "audio"
	if video {
		id = "screen"
	}
	local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, id+"-"+p.userID, p.userID)
	if err != nil {
		p.log.Warn("cannot forward a track", slog.Any("err", err))
		return
	}
	out := &outTrack{owner: p, local: local, ssrc: remote.SSRC(), video: video}
	levelID := 0
	if !video {
		for _, ext := range recv.GetParameters().HeaderExtensions {
			if ext.URI == sdp.AudioLevelURI {
				levelID = ext.ID
			}
		}
	}
	p.mu.Lock()
	old := p.audio
	if video {
		old = p.screen
		p.screen = out
	} else {
		p.audio = out
	}
	p.mu.Unlock()
	if old != nil {
		p.room.unpublish(old)
	}
	p.room.publish(out)
	p.forward(remote, out, levelID)
	// The remote track ended: the peer stopped sending it.
	p.mu.Lock()
	if video && p.screen == out {
		p.screen = nil
	} else if !video && p.audio == out {
		p.audio = nil
	}
	p.mu.Unlock()
	p.room.unpublish(out)
}

// forward copies RTP from the publisher to its local track, which pion
// writes to every subscriber. The buffer is reused: nothing is allocated
// per packet here.
func (p *Peer) forward(remote *webrtc.TrackRemote, out *outTrack, levelID int) {
	buf := make([]byte, 1500)
	first := true
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if first {
			first = false
			p.noteFirstMedia()
		}
		now := time.Now().UnixNano()
		p.lastMedia.Store(now)
		if !out.video {
			if p.muted.Load() {
				continue
			}
			if level, ok := audioLevel(buf[:n], levelID); ok && level <= speakingLevel {
				p.voiced.Store(now)
			}
		}
		// A subscriber that is going away makes Write report an error for
		// its binding; the others were written all the same.
		batch := p.room.sfu.batch
		batch.hold()
		out.local.Write(buf[:n])
		batch.release()
		p.room.sfu.Forwarded.Add(1)
	}
}

// publish adds a new track to every peer that should get it.
func (r *Room) publish(out *outTrack) {
	for _, sub := range r.list() {
		if sub == out.owner {
			continue
		}
		if out.video && !sub.isWatching(out.owner.userID) {
			continue
		}
		sub.subscribe(out)
	}
}

// unpublish takes a track off every subscriber.
func (r *Room) unpublish(out *outTrack) {
	for _, sub := range r.list() {
		sub.unsubscribe(out)
	}
}

// subscribeExisting adds the tracks published before the peer's first
// offer. It runs after that offer's answer; a track published meanwhile
// may be seen twice, and addSender ignores the second time.
func (p *Peer) subscribeExisting() {
	var tracks []*outTrack
	for _, other := range p.room.list() {
		if other == p {
			continue
		}
		other.mu.Lock()
		audio, screen := other.audio, other.screen
		other.mu.Unlock()
		if audio != nil {
			tracks = append(tracks, audio)
		}
		if screen != nil && p.isWatching(other.userID) {
			tracks = append(tracks, screen)
		}
	}
	for _, t := range tracks {
		p.subscribe(t)
	}
}

// addSender adds t to p's connection. Called with p.mu held.
func (p *Peer) addSender(t *outTrack) {
	if _, ok := p.subs[t]; ok || p.closed {
		return
	}
	sender, err := p.pc.AddTrack(t.local)
	if err != nil {
		p.log.Warn("cannot add a track", slog.Any("err", err))
		return
	}
	p.subs[t] = sender
	go p.readRTCP(sender, t)
}

func (p *Peer) subscribe(t *outTrack) {
	p.mu.Lock()
	if !p.ready {
		// The first offer's answer will carry it (subscribeExisting).
		p.mu.Unlock()
		return
	}
	p.addSender(t)
	p.mu.Unlock()
	p.negotiate()
}

func (p *Peer) unsubscribe(t *outTrack) {
	p.mu.Lock()
	sender, ok := p.subs[t]
	if ok {
		delete(p.subs, t)
		if !p.closed {
			p.pc.RemoveTrack(sender)
		}
	}
	p.mu.Unlock()
	if ok {
		p.negotiate()
	}
}

// readRTCP passes a subscriber's picture-loss requests on to the
// publisher, so a new viewer of a screen share gets a key frame. NACKs
// are not passed on but answered hop by hop by pion's interceptors: the
// SFU's receiving side asks the publisher for what it lost, its sending
// side resends from its own buffer what a subscriber lost, so one lossy
// subscriber does not make the publisher resend to everyone.
func (p *Peer) readRTCP(sender *webrtc.RTPSender, t *outTrack) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				t.owner.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.ssrc)}})
			}
		}
	}
}

func (p *Peer) isWatching(userID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.watching[userID]
}

// Watch starts or stops receiving another peer's screen share.
func (p *Peer) Watch(userID string, on bool) error {
	p.room.mu.Lock()
	other := p.room.peers[userID]
	p.room.mu.Unlock()
	p.mu.Lock()
	p.watching[userID] = on
	p.mu.Unlock()
	if other == nil {
		return fmt.Errorf("%w: %s is not in the call", ErrNoStream, userID)
	}
	other.mu.Lock()
	screen := other.screen
	other.mu.Unlock()
	if screen == nil {
		// Remembered: the share reaches this peer when it starts.
		return nil
	}
	if on {
		p.subscribe(screen)
		screen.owner.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(screen.ssrc)}})
	} else {
		p.unsubscribe(screen)
	}
	return nil
}

// SetMuted server-mutes the peer: their audio is no longer forwarded.
func (p *Peer) SetMuted(muted bool) { p.muted.Store(muted) }

// startMediaTimeout drops the peer when media stops for MediaTimeout.
func (p *Peer) startMediaTimeout() {
	p.mu.Lock()
	if p.stopTimeout != nil || p.closed {
		p.mu.Unlock()
		return
	}
	stop := make(chan struct{})
	p.stopTimeout = stop
	p.mu.Unlock()
	timeout := p.room.sfu.cfg.MediaTimeout
	go func() {
		tick := time.NewTicker(speakingInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			now := time.Now().UnixNano()
			if time.Duration(now-p.lastMedia.Load()) > timeout {
				p.end("no media for " + timeout.String())
				return
			}
			p.checkSpeaking(now)
		}
	}()
}

// end drops the peer on the SFU's own initiative and tells the transport.
func (p *Peer) end(reason string) {
	if p.Close() {
		p.log.Info("peer dropped", slog.String("reason", reason))
		p.sig.End(reason)
	}
}

// Close takes the peer out of its room and closes its connection. It
// reports whether this call did it.
func (p *Peer) Close() bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.closed = true
	audio, screen := p.audio, p.screen
	if p.stopTimeout != nil {
		close(p.stopTimeout)
	}
	p.mu.Unlock()

	r := p.room
	r.mu.Lock()
	if r.peers[p.userID] == p {
		delete(r.peers, p.userID)
	}
	empty := len(r.peers) == 0
	r.mu.Unlock()
	if empty {
		s := r.sfu
		s.mu.Lock()
		if s.rooms[r.id] == r {
			r.mu.Lock()
			if len(r.peers) == 0 {
				delete(s.rooms, r.id)
			}
			r.mu.Unlock()
		}
		s.mu.Unlock()
	}
	for _, t := range []*outTrack{audio, screen} {
		if t != nil {
			r.unpublish(t)
		}
	}
	p.pc.Close()
	return true
}
