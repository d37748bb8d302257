package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeExportsTURNMetricsOnTheAdminListener: serve with the embedded
// TURN server puts its counters, with the rest, on --admin-addr, and
// nothing of it on the main listener.
func TestServeExportsTURNMetricsOnTheAdminListener(t *testing.T) {
	addr, admin := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := lineWriter{lines: make(chan string, 100)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", t.TempDir(), "--addr", addr, "--media-addr", "127.0.0.1:0",
			"--admin-addr", admin, "--turn-addr", "127.0.0.1:0", "--log-level", "error"}, out, io.Discard)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not shut down")
		}
	}()
	for started := false; !started; {
		select {
		case l := <-out.lines:
			started = strings.HasPrefix(l, "iotad is listening")
		case err := <-done:
			done <- err
			t.Fatalf("serve ended: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not start")
		}
	}
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
