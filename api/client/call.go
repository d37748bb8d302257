package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// CallOptions tune a call client.
type CallOptions struct {
	// API builds the peer connection (tests pass one that allows loopback).
	API *webrtc.API
	// ICEServers are the call ticket's ice_servers.
	ICEServers []webrtc.ICEServer
	// RelayOnly forces media through TURN.
	RelayOnly bool
	// OnTrack sees every track the server sends.
	OnTrack func(*webrtc.TrackRemote)
	// OnMessage sees every other push on the call socket.
	OnMessage func(Message)
	// TLSConfig is used when url is wss:// (nil: the system's roots).
	TLSConfig *tls.Config
}

// Call is a member's side of a voice call: the call socket and a pion
// peer connection publishing one audio track.
type Call struct {
	Socket *Client
	PC     *webrtc.PeerConnection
	// Audio is the published track; write Opus RTP to it.
	Audio *webrtc.TrackLocalStaticRTP
	// Joined is the identification_response.
	Joined Message

	// sigMu serialises signalling: our offers and what the server sends.
	sigMu     sync.Mutex
	mu        sync.Mutex
	signalErr error
}

// JoinCall opens the call socket at url (ws://host:port/ws/calls/), logs
// in with a ticket and starts publishing audio with an offer.
func JoinCall(ctx context.Context, url, path, name, ticket string, opts CallOptions) (*Call, error) {
	sock, err := Dial(ctx, url, &Options{TLSConfig: opts.TLSConfig})
	if err != nil {
		return nil, err
	}
	joined, err := sock.Request(ctx, "identification", map[string]string{"path": path, "name": name, "ticket": ticket})
	if err != nil {
		sock.Close()
		return nil, err
	}
	api := opts.API
	if api == nil {
		api = webrtc.NewAPI()
	}
	cfg := webrtc.Configuration{ICEServers: opts.ICEServers}
	if opts.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		sock.Close()
		return nil, err
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "mic")
	if err != nil {
		pc.Close()
		sock.Close()
		return nil, err
	}
	if _, err := pc.AddTrack(audio); err != nil {
		pc.Close()
		sock.Close()
		return nil, err
	}
	call := &Call{Socket: sock, PC: pc, Audio: audio, Joined: joined}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			sock.Send("webrtc_ice", "", map[string]any{"candidate": c.ToJSON()})
		}
	})
	if opts.OnTrack != nil {
		pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { opts.OnTrack(t) })
	}
	go call.signal(opts.OnMessage)
	if err := call.Offer(); err != nil {
		call.Close()
		return nil, err
	}
	return call, nil
}

// Offer sends a new offer (after adding or removing a track) and applies
// the server's answer.
func (c *Call) Offer() error {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	offer, err := c.PC.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := c.PC.SetLocalDescription(offer); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.Socket.Request(ctx, "webrtc_sdp", map[string]string{"type": "offer", "sdp": offer.SDP})
	if err != nil {
		return err
	}
	var d struct{ Type, SDP string }
	if err := m.Decode(&d); err != nil {
		return err
	}
	return c.remoteSDP(d.Type, d.SDP)
}

// signal answers the server's offers and takes its answers and candidates.
func (c *Call) signal(onMessage func(Message)) {
	for m := range c.Socket.Pushes() {
		var err error
		c.sigMu.Lock()
		switch m.Type {
		case "webrtc_sdp":
			var d struct{ Type, SDP string }
			if err = m.Decode(&d); err == nil {
				err = c.remoteSDP(d.Type, d.SDP)
			}
		case "webrtc_ice":
			var d struct {
				Candidate webrtc.ICECandidateInit `json:"candidate"`
			}
			if err = json.Unmarshal(m.Data, &d); err == nil {
				err = c.PC.AddICECandidate(d.Candidate)
			}
		default:
			if onMessage != nil {
				onMessage(m)
			}
		}
		c.sigMu.Unlock()
		if err != nil {
			c.mu.Lock()
			if c.signalErr == nil {
				c.signalErr = fmt.Errorf("client: call signalling: %w", err)
			}
			c.mu.Unlock()
		}
	}
}

func (c *Call) remoteSDP(typ, sdp string) error {
	switch typ {
	case "answer":
		return c.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
	case "offer":
		if c.PC.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
			// Glare: the server drops its offer for ours and offers again.
			return nil
		}
		if err := c.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
			return err
		}
		answer, err := c.PC.CreateAnswer(nil)
		if err != nil {
			return err
		}
		if err := c.PC.SetLocalDescription(answer); err != nil {
			return err
		}
		return c.Socket.Send("webrtc_sdp", "", map[string]string{"type": "answer", "sdp": answer.SDP})
	}
	return fmt.Errorf("unknown sdp type %q", typ)
}

// Err is the first signalling failure, if any.
func (c *Call) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signalErr
}

// Close leaves the call.
func (c *Call) Close() error {
	c.PC.Close()
	return c.Socket.Close()
}
