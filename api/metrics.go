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
	sockets       atomic.Int64
	socketsTotal  atomic.Int64
	refusedConns  atomic.Int64
	framesIn      atomic.Int64
	framesOut     atomic.Int64
	writesOut     atomic.Int64
	slowConsumers atomic.Int64

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
	counter("iotad_sockets_refused_total", "Upgrades refused because the connection cap was reached.", metrics.refusedConns.Load())
	counter("iotad_frames_in_total", "Frames received from clients.", metrics.framesIn.Load())
	counter("iotad_frames_out_total", "Frames written to clients.", metrics.framesOut.Load())
	counter("iotad_writes_total", "System calls that wrote frames (frames out per write shows how well they batch).", metrics.writesOut.Load())
	counter("iotad_slow_consumers_total", "Sockets closed because their send queue was full.", metrics.slowConsumers.Load())

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
