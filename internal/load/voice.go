package load

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/iotad/iotad/api/client"
)

// VoiceConfig describes a voice run: Peers in one voice channel, each
// publishing audio at 50 packets a second and receiving everyone else.
type VoiceConfig struct {
	// URL is the community socket; the call socket is URL + "ws/calls/".
	URL, Invite   string
	Peers         int
	Duration      time.Duration
	Path, Channel string
	// Ready runs once every peer receives every other, before measuring.
	Ready func()
}

// VoiceResult is what a voice run measured.
type VoiceResult struct {
	Peers int
	// Sent is packets published, Expected what should have arrived (each
	// packet at Peers-1 receivers), Received what did.
	Sent, Expected, Received int64
	Elapsed                  time.Duration
}

// Loss is the share of expected packets that did not arrive.
func (r VoiceResult) Loss() float64 {
	if r.Expected == 0 {
		return 0
	}
	return 1 - float64(r.Received)/float64(r.Expected)
}

// ForwardedPerSecond is received packets per second.
func (r VoiceResult) ForwardedPerSecond() float64 { return float64(r.Received) / r.Elapsed.Seconds() }

func (r VoiceResult) String() string {
	return fmt.Sprintf("peers=%d sent=%d expected=%d received=%d (%.0f/s) loss=%.3f%%",
		r.Peers, r.Sent, r.Expected, r.Received, r.ForwardedPerSecond(), 100*r.Loss())
}

// loadAPI is a pion API for load peers: loopback candidates, no mDNS.
func loadAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// Voice runs one voice measurement.
func Voice(ctx context.Context, cfg VoiceConfig) (VoiceResult, error) {
	api, err := loadAPI()
	if err != nil {
		return VoiceResult{}, err
	}
	members, err := Join(ctx, cfg.URL, cfg.Invite, cfg.Peers, 8, nil)
	if err != nil {
		return VoiceResult{}, err
	}
	defer func() {
		for _, m := range members {
			m.Close()
		}
	}()
	var received atomic.Int64
	tracks := make([]atomic.Int64, cfg.Peers) // remote tracks each peer has
	calls := make([]*client.Call, cfg.Peers)
	defer func() {
		for _, c := range calls {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i, m := range members {
		r, err := m.Function(ctx, "voice", cfg.Path, cfg.Channel, "join", nil)
		if err != nil {
			return VoiceResult{}, fmt.Errorf("peer %d: join: %w", i, err)
		}
		res, _ := r.Result()
		var p struct {
			Ticket     string             `json:"ticket"`
			ICEServers []webrtc.ICEServer `json:"ice_servers"`
		}
		json.Unmarshal(res.Payload, &p)
		calls[i], err = client.JoinCall(ctx, cfg.URL+"ws/calls/", cfg.Path, cfg.Channel, p.Ticket, client.CallOptions{
			API: api, ICEServers: p.ICEServers,
			OnTrack: func(t *webrtc.TrackRemote) {
				tracks[i].Add(1)
				go func() {
					buf := make([]byte, 1500)
					for {
						n, _, err := t.Read(buf)
						if err != nil {
							return
						}
						if n > 0 && buf[n-1] == inWindow {
							received.Add(1)
						}
					}
				}()
			},
		})
		if err != nil {
			return VoiceResult{}, fmt.Errorf("peer %d: call: %w", i, err)
		}
	}
	// Publish from the start, so that every peer's track exists; then
	// measure once everyone receives everyone.
	var sent atomic.Int64
	var measuring atomic.Bool
	pubCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			publishAudio(pubCtx, c.Audio, &measuring, &sent)
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := range tracks {
		for tracks[i].Load() < int64(cfg.Peers-1) {
			if time.Now().After(deadline) {
				return VoiceResult{}, fmt.Errorf("peer %d has %d of %d tracks after 60 s", i, tracks[i].Load(), cfg.Peers-1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(time.Second) // let every stream settle
	if cfg.Ready != nil {
		cfg.Ready()
	}
	// Only packets published inside the window are counted, at both ends,
	// so none in flight across its edges is counted at one end alone.
	measuring.Store(true)
	start := time.Now()
	time.Sleep(cfg.Duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	// What was sent arrives within a moment on loopback; keep the streams
	// flowing meanwhile, so the end of the window looks like its middle.
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()
	s := sent.Load()
	return VoiceResult{Peers: cfg.Peers, Sent: s, Expected: s * int64(cfg.Peers-1), Received: received.Load(), Elapsed: elapsed}, nil
}

// inWindow marks, in a packet's last byte, one published inside the
// measured window.
const inWindow = 1

// publishAudio writes an Opus-sized packet every 20 ms, counting (and
// marking) those written while measuring.
func publishAudio(ctx context.Context, track *webrtc.TrackLocalStaticRTP, measuring *atomic.Bool, sent *atomic.Int64) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111}, Payload: make([]byte, 80)}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pkt.SequenceNumber = uint16(i)
		pkt.Timestamp = uint32(i * 960)
		counted := measuring.Load()
		pkt.Payload[len(pkt.Payload)-1] = 0
		if counted {
			pkt.Payload[len(pkt.Payload)-1] = inWindow
		}
		if err := track.WriteRTP(pkt); err == nil && counted {
			sent.Add(1)
		}
	}
}
