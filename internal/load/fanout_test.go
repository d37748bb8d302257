package load

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestReceiverOnFrame(t *testing.T) {
	sent := time.Now().Add(-time.Second).UnixNano()
	live := func(before, text string) string {
		return `{"type":"update","id":"` + before + `","data":{"codec":"text","name":"general","path":"General",` +
			`"result":"message_live","payload":{"message_id":"x","message":"` + text + `","send_time":1}}}`
	}
	for _, tc := range []struct {
		name           string
		frame          string
		counted, timed bool
	}{
		{"live", live("a", fmt.Sprintf("t=%d", sent)), true, true},
		{"live, an = before the body", live("a=b", fmt.Sprintf("t=%d", sent)), true, true},
		{"live, a 'v' between the result and the body", strings.Replace(live("a", fmt.Sprintf("t=%d", sent)), `,"payload"`, `,"pad":"`+strings.Repeat("v", 300)+`","payload"`, 1), true, true},
		{"live, not timed", live("a", "hello"), true, false},
		{"live, a body that is not a time", live("a", "t=soon"), true, false},
		{"a reply with a body", `{"type":"message_chunk","data":{"messages":[{"message":"t=1"}]}}`, false, false},
		{"a reply", `{"type":"pong","id":"1"}`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r receiver
			if got := r.onFrame([]byte(tc.frame)); got != tc.counted {
				t.Fatalf("onFrame = %v, want %v", got, tc.counted)
			}
			if n := r.delivered.Load(); n != map[bool]int64{true: 1}[tc.counted] {
				t.Fatalf("delivered = %d", n)
			}
			if got := len(r.latencies) == 1; got != tc.timed {
				t.Fatalf("latencies %v, want one: %v", r.latencies, tc.timed)
			}
			if tc.timed && r.latencies[0] < time.Second {
				t.Fatalf("latency %v, want at least the second it was sent before", r.latencies[0])
			}
		})
	}
}

func BenchmarkReceiverOnFrame(b *testing.B) {
	frame := []byte(`{"type":"update","id":"0193a8e2-4f6b-7c1d-9e2f-3a4b5c6d7e8f","log":{"log_level":0,"message":"update"},` +
		`"data":{"codec":"text","name":"general","path":"General","result":"message_live","payload":{"message_id":` +
		`"0193a8e2-4f6b-7c1d-9e2f-3a4b5c6d7e8f","message":"t=1733560000000000000","send_time":1733560000000,` +
		`"sender_id":"0193a8e2-4f6b-7c1d-9e2f-3a4b5c6d7e8f"}}}`)
	var r receiver
	for b.Loop() {
		r.onFrame(frame)
		r.latencies = r.latencies[:0]
	}
}
