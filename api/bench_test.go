package api_test

import (
	"context"
	"crypto/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotad/iotad/api/client"
	"github.com/iotad/iotad/crypto/seal"
)

// BenchmarkLogin is a whole Iota login over a fresh loopback socket:
// dial, identification, challenge, challenge_response, close. Client and
// server share the machine, and the client's X448 costs as much as the
// server's; cmd/iotad-load login measures the server alone.
func BenchmarkLogin(b *testing.B) {
	env := newEnv(b, nil)
	users := make([]testUser, 32)
	for i := range users {
		users[i] = env.newUser()
	}
	var next atomic.Int64
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := users[next.Add(1)%int64(len(users))]
			c, err := client.Dial(context.Background(), env.url+"/ws/iota", nil)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Login(context.Background(), u.Priv, map[string]any{"user_id": u.ID}); err != nil {
				b.Error(err)
			}
			c.Close()
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "logins/s")
}

// sealedEntry is a list entry of realistic size, sealed once.
func sealedEntry(b *testing.B, u testUser) map[string]any {
	key := seal.ListKey(u.Priv)
	out := map[string]any{}
	for _, f := range []struct{ name, v string }{
		{"community_address", "tensamin://community.example.org:1984/?invite=" + strings.Repeat("x", 22) + "&key=" + strings.Repeat("k", 75)},
		{"community_title", "A community with a name"},
		{"position", "1.2.3"},
	} {
		s, err := seal.Seal(rand.Reader, key, f.name, f.v)
		if err != nil {
			b.Fatal(err)
		}
		out[f.name] = s
	}
	return out
}

// BenchmarkAddCommunity is one add_community over the socket, acknowledged
// after its commit.
func BenchmarkAddCommunity(b *testing.B) {
	env := newEnv(b, nil)
	u := env.newUser()
	c := env.iota(u)
	entry := sealedEntry(b, u)
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Request(ctx, "add_community", entry); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetCommunities reads a list of 50 entries over the socket.
func BenchmarkGetCommunities(b *testing.B) {
	env := newEnv(b, nil)
	u := env.newUser()
	c := env.iota(u)
	entry := sealedEntry(b, u)
	ctx := context.Background()
	for range 50 {
		if _, err := c.Request(ctx, "add_community", entry); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, err := c.Request(ctx, "get_communities", nil); err != nil {
			b.Fatal(err)
		}
	}
}
