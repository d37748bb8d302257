package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeExportsTURNMetricsOnTheAdminListener: serve with the embedded
// TURN server puts its counters, with the rest, on --admin-addr, and
// nothing of it on the main listener.
func TestServeExportsTURNMetricsOnTheAdminListener(t *testing.T) {
	addr, admin := freePort(t), freePort(t)
	startServeWith(t, io.Discard, "--data", t.TempDir(), "--addr", addr, "--admin-addr", admin,
		"--turn-addr", "127.0.0.1:0", "--log-level", "error")
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("http://" + admin + "/metrics")
	if code != http.StatusOK {
		t.Fatalf("admin /metrics: %d", code)
	}
	for _, name := range []string{"iotad_turn_dropped_total 0", "iotad_turn_refused_total 0", "iotad_turn_revoked_total 0",
		"iotad_rtp_forwarded_total 0", "iotad_commit_seconds_bucket", "process_cpu_seconds_total", "go_goroutines"} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("admin /metrics has no %q", name)
		}
	}
	if code, _ := get("http://" + addr + "/metrics"); code != http.StatusNotFound {
		t.Errorf("main listener /metrics: %d, want 404", code)
	}
}
