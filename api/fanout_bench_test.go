package api_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/internal/load"
)

// BenchmarkFanout is the fan-out measurement, in process: one text
// channel, 1,000 members on loopback sockets, N senders posting as fast as
// acknowledgements return. Client and server share the two cores here, so
// cmd/iotad-load against a separate server gives the server's own CPU cost.
func BenchmarkFanout(b *testing.B) {
	for _, senders := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("members=1000/senders=%d", senders), func(b *testing.B) {
			env := newEnv(b, func(c *api.Config) { c.Socket.SendQueue = 4096 })
			owner := env.join(community.RoleOwner)
			setupChannels(b, owner)
			invite := env.invite(community.InviteOptions{MaxUses: 1000})
			var res load.FanoutResult
			for b.Loop() {
				var err error
				res, err = load.Fanout(context.Background(), load.FanoutConfig{
					URL: env.url + "/", Invite: invite, Members: 1000, Senders: senders,
					Duration: 3 * time.Second, Path: "General", Channel: "chat", LoginParallel: 32,
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.DeliveriesPerSecond(), "deliveries/s")
			b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
			b.ReportMetric(float64(res.Closed), "closed")
			b.Log(res)
		})
	}
}

// BenchmarkCommunityLogin is a returning member's whole login over a fresh
// loopback socket: dial, identification, challenge, challenge_response
// with the member key already cached on both sides, close.
func BenchmarkCommunityLogin(b *testing.B) {
	env := newEnv(b, nil)
	members := make([]testUser, 64)
	for i := range members {
		members[i] = env.join(community.RoleMember).testUser
	}
	var next atomic.Int64
	opts := &client.Options{MemberKeys: &client.MemberKeyCache{}}
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := members[next.Add(1)%int64(len(members))]
			c, err := client.Dial(context.Background(), env.url+"/", opts)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.LoginCommunity(context.Background(), u.ID, u.Priv, "", nil); err != nil {
				b.Error(err)
			}
			c.Close()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "logins/s")
}
