package community

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iotad/iotad/internal/db"
	"github.com/iotad/iotad/internal/db/dbtest"
)

// BenchmarkSendMessage measures acknowledged, durable sends (synchronous =
// FULL: each commit is fsynced) from many concurrent senders; group commit
// is what lets throughput grow with them.
func BenchmarkSendMessage(b *testing.B) {
	benchmarkSend(b, func(b *testing.B) *Community {
		_, c, _ := openTest(b, db.SyncFull)
		return c
	})
}

// BenchmarkSendMessageCPU is BenchmarkSendMessage with synchronous =
// NORMAL, so that the fsync, which dominates the time of a durable send,
// does not hide what the process spends: its cpu-µs/msg is the number to
// compare across builds on a machine others share.
func BenchmarkSendMessageCPU(b *testing.B) {
	benchmarkSend(b, func(b *testing.B) *Community {
		_, c, _ := openTest(b, db.SyncNormal)
		return c
	})
}

// BenchmarkSendMessagePostgres is BenchmarkSendMessage on the IOTAD_TEST_PG
// server (durable too when that server runs with fsync and
// synchronous_commit on, its defaults).
func BenchmarkSendMessagePostgres(b *testing.B) {
	benchmarkSend(b, func(b *testing.B) *Community {
		_, c, _ := openOn(b, dbtest.Postgres)
		return c
	})
}

func benchmarkSend(b *testing.B, open func(b *testing.B) *Community) {
	for _, senders := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			c := open(b)
			ctx := context.Background()
			c.CreateDefaultChannels(ctx)
			payload := json.RawMessage(`{"message":"a message of ordinary length, about as long as people write them"}`)
			m := addMember(b, c, RoleMember)
			var wg sync.WaitGroup
			work := make(chan struct{}, b.N)
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			b.ResetTimer()
			cpu0, start := processCPU(), time.Now()
			for range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						if _, _, err := c.Call(ctx, m, "General", "general", "text", "send_message", payload, nil); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
		})
	}
}

// BenchmarkGetMessages pages a channel of 1,000,000 messages at deep
// offsets and by before ids, and reports p50/p99 per page of 50.
func BenchmarkGetMessages(b *testing.B) {
	const total = 1_000_000
	s, c, _ := openTest(b, db.SyncNormal)
	ctx := context.Background()
	c.CreateDefaultChannels(ctx)
	ch, _ := c.Find("General", "general")
	ids := seedMessages(b, s, c, ch, total)
	m := Member{UserID: "reader", Role: RoleMember}
	for _, mode := range []string{"offset", "before"} {
		b.Run(mode, func(b *testing.B) {
			// Build the offset index outside the measurement.
			getMessages(ctx, &Call{Community: c, Channel: ch, Member: m, Payload: json.RawMessage(`{"loaded_messages":5000,"amount":1}`)})
			var lat []time.Duration
			for b.Loop() {
				var payload string
				if mode == "offset" {
					payload = fmt.Sprintf(`{"loaded_messages":%d,"amount":50}`, rand.IntN(total-50))
				} else {
					payload = fmt.Sprintf(`{"before":%q,"amount":50}`, ids[50+rand.IntN(total-50)].String())
				}
				t0 := time.Now()
				res, err := getMessages(ctx, &Call{Community: c, Channel: ch, Member: m, Payload: json.RawMessage(payload)})
				lat = append(lat, time.Since(t0))
				if err != nil || len(res.Payload.(map[string]any)["messages"].([]Message)) != 50 {
					b.Fatalf("page %s: %v", payload, err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// processCPU is the user and system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
