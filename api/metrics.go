package api

import (
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the api layer's process-wide counters. They stay plain
// atomics, bumped on the hot paths (every frame, every write), and are
// read only when /metrics is scraped, by counterCollector.
var metrics = &counters{errors: map[string]*atomic.Int64{}}

type counters struct {
	sockets      atomic.Int64
	socketsTotal atomic.Int64
	// Upgrades refused, by the cap that refused them.
	refusedServer, refusedAddr, refusedAddrUnauth, refusedShutdown atomic.Int64
	// Logins refused by the per-user socket cap.
	refusedUserSockets atomic.Int64
	// Requests refused by the socket's and by the user's token bucket.
	limitedSocket, limitedUser atomic.Int64
	framesIn                   atomic.Int64
	framesOut                  atomic.Int64
	writesOut                  atomic.Int64
	slowConsumers              atomic.Int64
	// queuePeak is the most bytes any one socket has had queued.
	queuePeak atomic.Int64

	mu     sync.Mutex
	errors map[string]*atomic.Int64
}

func (c *counters) countError(typ string) {
	c.mu.Lock()
	n := c.errors[typ]
	if n == nil {
		n = new(atomic.Int64)
		c.errors[typ] = n
	}
	c.mu.Unlock()
	n.Add(1)
}

// noteQueuePeak raises queuePeak to n. It is called on every Send, so it
// reads first: the shared value rarely changes and a load does not contend.
func (c *counters) noteQueuePeak(n int) {
	for {
		old := c.queuePeak.Load()
		if int64(n) <= old || c.queuePeak.CompareAndSwap(old, int64(n)) {
			return
		}
	}
}

// Latency buckets: 100µs to ~6.5s, doubling, which covers a WAL commit
// on a fast disk as well as a login over a slow link.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2, 17)

// timings are the api layer's histograms. An observation is a few atomic
// adds; each is made once per login or per broadcast, not per frame.
var timings = struct {
	login  *prometheus.HistogramVec
	fanout prometheus.Histogram
}{
	login: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "iotad_login_seconds",
		Help:    "From a socket's identification to its identification_response, for logins that succeeded, by socket kind.",
		Buckets: latencyBuckets,
	}, []string{"endpoint"}),
	fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "iotad_fanout_seconds",
		Help:    "From a channel event's commit (its publication) to its frame queued on every recipient's socket.",
		Buckets: latencyBuckets,
	}),
}

func observeLogin(endpoint string, started time.Time) {
	timings.login.WithLabelValues(endpoint).Observe(time.Since(started).Seconds())
}

// newMetricsRegistry is iotad's own registry, not the global default, so that
// nothing a dependency registers there ends up on /metrics, and so that
// every Server in one test binary has its own.
func newMetricsRegistry(extra ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		counterCollector{},
		timings.login,
		timings.fanout,
	)
	for _, c := range extra {
		reg.MustRegister(c)
	}
	return reg
}

// RegisterMetrics adds collectors (the embedded TURN server's) to what the
// admin listener's /metrics reports.
func (s *Server) RegisterMetrics(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := s.metrics.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}})
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("metrics", "err", v) }

var (
	descSockets      = prometheus.NewDesc("iotad_sockets", "Open WebSocket connections.", nil, nil)
	descSocketsTotal = prometheus.NewDesc("iotad_sockets_total", "WebSocket connections accepted.", nil, nil)
	descRefused      = prometheus.NewDesc("iotad_sockets_refused_total", "Upgrades refused, by the cap that refused them.", []string{"reason"}, nil)
	descUserSockets  = prometheus.NewDesc("iotad_logins_refused_user_sockets_total", "Logins refused because the user had as many sockets open as the per-user cap allows.", nil, nil)
	descLimited      = prometheus.NewDesc("iotad_requests_limited_total", "Requests refused by a token bucket, by the bucket's scope.", []string{"scope"}, nil)
	descFramesIn     = prometheus.NewDesc("iotad_frames_in_total", "Frames received from clients.", nil, nil)
	descFramesOut    = prometheus.NewDesc("iotad_frames_out_total", "Frames written to clients.", nil, nil)
	descWrites       = prometheus.NewDesc("iotad_writes_total", "System calls that wrote frames (frames out per write shows how well they batch).", nil, nil)
	descSlow         = prometheus.NewDesc("iotad_slow_consumers_total", "Sockets closed with 1008 because their send queue was full (in frames or in bytes).", nil, nil)
	descQueuePeak    = prometheus.NewDesc("iotad_send_queue_peak_bytes", "The most bytes any one socket has had queued since start.", nil, nil)
	descErrors       = prometheus.NewDesc("iotad_error_replies_total", "Error replies sent, by type.", []string{"type"}, nil)
)

// counterCollector exports the atomics of metrics under the names the
// hand-written exposition used (scripts/bench-load.sh reads them).
type counterCollector struct{}

func (counterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSockets, descSocketsTotal, descRefused, descUserSockets, descLimited,
		descFramesIn, descFramesOut, descWrites, descSlow, descQueuePeak, descErrors} {
		ch <- d
	}
}

func (counterCollector) Collect(ch chan<- prometheus.Metric) {
	m := metrics
	gauge := func(d *prometheus.Desc, v *atomic.Int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v.Load()), labels...)
	}
	counter := func(d *prometheus.Desc, v *atomic.Int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v.Load()), labels...)
	}
	gauge(descSockets, &m.sockets)
	counter(descSocketsTotal, &m.socketsTotal)
	counter(descRefused, &m.refusedServer, "server")
	counter(descRefused, &m.refusedAddr, "address")
	counter(descRefused, &m.refusedAddrUnauth, "address_unauthenticated")
	counter(descRefused, &m.refusedShutdown, "shutting_down")
	counter(descUserSockets, &m.refusedUserSockets)
	counter(descLimited, &m.limitedSocket, "socket")
	counter(descLimited, &m.limitedUser, "user")
	counter(descFramesIn, &m.framesIn)
	counter(descFramesOut, &m.framesOut)
	counter(descWrites, &m.writesOut)
	counter(descSlow, &m.slowConsumers)
	gauge(descQueuePeak, &m.queuePeak)

	m.mu.Lock()
	types := make([]string, 0, len(m.errors))
	for t := range m.errors {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		counter(descErrors, m.errors[t], t)
	}
	m.mu.Unlock()
}
