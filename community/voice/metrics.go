package voice

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// setupTimes is the SFU's call-setup histogram, one child per stage,
// resolved once so that a peer's observations look nothing up.
type setupTimes struct {
	vec                 *prometheus.HistogramVec
	connected, firstRTP prometheus.Observer
}

func newSetupTimes() setupTimes {
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "iotad_call_setup_seconds",
		Help: "From a call socket's join to its peer connection connected (ICE and DTLS, stage=connected) and to the first RTP packet from the peer (stage=first_media).",
		// 10ms to ~41s: ICE over TURN on a slow link takes seconds.
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 13),
	}, []string{"stage"})
	return setupTimes{vec: vec, connected: vec.WithLabelValues("connected"), firstRTP: vec.WithLabelValues("first_media")}
}

// Collectors are the SFU's metrics, for the server's registry.
func (s *SFU) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "iotad_rtp_forwarded_total",
			Help: "RTP packets the SFU wrote to a published track, for its subscribers (once per packet, whatever the number of subscribers).",
		}, func() float64 { return float64(s.Forwarded.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "iotad_call_rooms",
			Help: "Calls with at least one peer in the SFU.",
		}, func() float64 { return float64(s.Rooms()) }),
		s.setup.vec,
	}
}

// noteConnected and noteFirstMedia observe the peer's call setup once each.
func (p *Peer) noteConnected() {
	if p.connected.CompareAndSwap(false, true) {
		p.room.sfu.setup.connected.Observe(time.Since(p.joined).Seconds())
	}
}

func (p *Peer) noteFirstMedia() {
	if p.gotMedia.CompareAndSwap(false, true) {
		p.room.sfu.setup.firstRTP.Observe(time.Since(p.joined).Seconds())
	}
}

// Collectors are the TURN server's counters, for the server's registry.
func (t *TURN) Collectors() []prometheus.Collector {
	counter := func(name, help string, v func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v()) })
	}
	return []prometheus.Collector{
		counter("iotad_turn_dropped_total", "Datagrams a TURN relay refused to send or pass on (a peer address relays may not reach).", t.Dropped.Load),
		counter("iotad_turn_refused_total", "Authenticated TURN requests refused: forged, expired or too long-lived credentials, or a user no longer a member.", t.Refused.Load),
		counter("iotad_turn_revoked_total", "TURN allocations closed because their user was no longer a member.", t.Revoked.Load),
	}
}
