package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
)

// scrape reads the admin listener's /metrics with Prometheus's own parser,
// so that what a real scraper would refuse fails here too.
func (e *testEnv) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	resp, err := http.Get(e.admin + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("admin /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		e.t.Fatalf("admin /metrics does not parse: %v", err)
	}
	return fams
}

// histogramCount is the observations of the histogram name whose labels
// include want (name=value pairs), summed over its series.
func histogramCount(fams map[string]*dto.MetricFamily, name string, want ...string) uint64 {
	f := fams[name]
	if f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		return 0
	}
	var n uint64
	for _, m := range f.Metric {
		if hasLabels(m, want) {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

func hasLabels(m *dto.Metric, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, l := range m.Label {
			if l.GetName() == want[i] && l.GetValue() == want[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestMetricsAreOnTheAdminListenerOnly: the public listener has neither
// /metrics nor pprof (404, not the page); the admin listener serves both,
// and after a login and a message the histograms hold them.
func TestMetricsAreOnTheAdminListenerOnly(t *testing.T) {
	env := newEnv(t, func(c *api.Config) { c.Pprof = true })
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap"} {
		resp, err := http.Get(env.http + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("public %s: %s, want 404", path, resp.Status)
		}
	}
	resp, err := http.Get(env.admin + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("admin /debug/pprof/: %s", resp.Status)
	}

	before := env.scrape()
	env.iota(env.newUser())
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	bob := env.join(community.RoleMember)
	ok(t)(owner.call(t, "text", "General", "chat", "send_message", map[string]any{"message": "hi bob"}))
	// bob's copy was queued before the dispatcher observed the fan-out,
	// and the owner's reply came after the commit was observed.
	nextResult(t, bob.c, "message_live")
	after := env.scrape()

	for _, h := range []struct {
		name   string
		labels []string
	}{
		{"iotad_login_seconds", []string{"endpoint", "iota"}},
		{"iotad_login_seconds", []string{"endpoint", "community"}},
		{"iotad_commit_seconds", nil},
		{"iotad_commit_batch_writes", nil},
	} {
		if got := histogramCount(after, h.name, h.labels...) - histogramCount(before, h.name, h.labels...); got == 0 {
			t.Errorf("%s%v: no observation after a login and a message", h.name, h.labels)
		}
	}
	// The fan-out is observed after the last Send, in the dispatcher: bob
	// can read his copy first, so this one is waited for.
	waitFor(t, "the fan-out to be observed", func() bool {
		return histogramCount(env.scrape(), "iotad_fanout_seconds") > histogramCount(before, "iotad_fanout_seconds")
	})
	for _, name := range []string{
		"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes",
		"iotad_sockets", "iotad_frames_out_total", "iotad_writes_total", "iotad_sockets_refused_total",
		"iotad_rtp_forwarded_total", "iotad_call_setup_seconds",
	} {
		if after[name] == nil {
			t.Errorf("no %s on /metrics", name)
		}
	}
	if v := after["iotad_frames_out_total"].Metric[0].GetCounter().GetValue(); v == 0 {
		t.Errorf("iotad_frames_out_total is 0 after a message")
	}
	if n := len(after["iotad_sockets_refused_total"].Metric); n != 4 {
		t.Errorf("iotad_sockets_refused_total has %d reasons, want 4", n)
	}
}

// TestCallSetupAndForwardingAreMeasured: a peer joins a call and talks;
// its setup is observed at both stages and its packets are counted as
// forwarded.
func TestCallSetupAndForwardingAreMeasured(t *testing.T) {
	env := newEnv(t, nil)
	owner := env.join(community.RoleOwner)
	setupChannels(t, owner)
	alice := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	bob := env.joinCall(env.join(community.RoleMember), client.CallOptions{})
	go publish(ctxT(t), alice.rtc.Audio, 111)
	waitFor(t, "alice's audio to reach bob", func() bool { return bob.got.count(alice.ID, webrtc.RTPCodecTypeAudio) > 0 })

	fams := env.scrape()
	if n := histogramCount(fams, "iotad_call_setup_seconds", "stage", "first_media"); n < 1 {
		t.Errorf("call setup to first media: %d observations", n)
	}
	if n := histogramCount(fams, "iotad_call_setup_seconds", "stage", "connected"); n < 2 {
		t.Errorf("call setup to connected: %d observations, want 2", n)
	}
	if f := fams["iotad_rtp_forwarded_total"]; f == nil || f.Metric[0].GetCounter().GetValue() == 0 {
		t.Errorf("iotad_rtp_forwarded_total does not count alice's packets")
	}
}

// TestTURNCountersAreExported: the embedded TURN server's counters are
// collected under their names, and read the server's own values.
func TestTURNCountersAreExported(t *testing.T) {
	env := newEnv(t, nil)
	srv := startTURN(t, env, nil)
	srv.Refused.Add(3)
	reg := prometheus.NewRegistry()
	reg.MustRegister(srv.Collectors()...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		got[f.GetName()] = f.Metric[0].GetCounter().GetValue()
	}
	want := map[string]float64{"iotad_turn_dropped_total": 0, "iotad_turn_refused_total": 3, "iotad_turn_revoked_total": 0}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, v)
		}
	}
	if !strings.HasPrefix(fams[0].GetName(), "iotad_turn_") {
		t.Errorf("unexpected family %s", fams[0].GetName())
	}
}
