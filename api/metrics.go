package api

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
)

// metrics are process-wide counters exported at /metrics in the Prometheus
// text format. They are few enough that a library would cost more than it saves.
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

// writeMetrics writes every counter in the Prometheus text format.
func writeMetrics(w io.Writer) {
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge("iotad_sockets", "Open WebSocket connections.", metrics.sockets.Load())
	counter("iotad_sockets_total", "WebSocket connections accepted.", metrics.socketsTotal.Load())
	fmt.Fprintf(w, "# HELP iotad_sockets_refused_total Upgrades refused, by the cap that refused them.\n# TYPE iotad_sockets_refused_total counter\n")
	for _, r := range []struct {
		reason string
		n      *atomic.Int64
	}{
		{"server", &metrics.refusedServer},
		{"address", &metrics.refusedAddr},
		{"address_unauthenticated", &metrics.refusedAddrUnauth},
		{"shutting_down", &metrics.refusedShutdown},
	} {
		fmt.Fprintf(w, "iotad_sockets_refused_total{reason=%q} %d\n", r.reason, r.n.Load())
	}
	counter("iotad_logins_refused_user_sockets_total", "Logins refused because the user had as many sockets open as the per-user cap allows.", metrics.refusedUserSockets.Load())
	fmt.Fprintf(w, "# HELP iotad_requests_limited_total Requests refused by a token bucket, by the bucket's scope.\n# TYPE iotad_requests_limited_total counter\n")
	fmt.Fprintf(w, "iotad_requests_limited_total{scope=\"socket\"} %d\n", metrics.limitedSocket.Load())
	fmt.Fprintf(w, "iotad_requests_limited_total{scope=\"user\"} %d\n", metrics.limitedUser.Load())
	counter("iotad_frames_in_total", "Frames received from clients.", metrics.framesIn.Load())
	counter("iotad_frames_out_total", "Frames written to clients.", metrics.framesOut.Load())
	counter("iotad_writes_total", "System calls that wrote frames (frames out per write shows how well they batch).", metrics.writesOut.Load())
	counter("iotad_slow_consumers_total", "Sockets closed with 1008 because their send queue was full (in frames or in bytes).", metrics.slowConsumers.Load())
	gauge("iotad_send_queue_peak_bytes", "The most bytes any one socket has had queued since start.", metrics.queuePeak.Load())

	metrics.mu.Lock()
	types := make([]string, 0, len(metrics.errors))
	for t := range metrics.errors {
		types = append(types, t)
	}
	sort.Strings(types)
	fmt.Fprintf(w, "# HELP iotad_error_replies_total Error replies sent, by type.\n# TYPE iotad_error_replies_total counter\n")
	for _, t := range types {
		fmt.Fprintf(w, "iotad_error_replies_total{type=%q} %d\n", t, metrics.errors[t].Load())
	}
	metrics.mu.Unlock()
}
