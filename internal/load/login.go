package load

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

// LoginConfig describes a login run: Members join once, then Workers log
// them in again and again on fresh sockets for Duration.
type LoginConfig struct {
	URL, Invite string
	Members     int
	Workers     int
	Duration    time.Duration
	// Ready runs after the members joined, before the measured logins.
	Ready func()
}

// LoginResult is what a login run measured.
type LoginResult struct {
	Logins  int64
	Elapsed time.Duration
}

func (r LoginResult) String() string {
	return fmt.Sprintf("logins=%d in %v (%.0f/s)", r.Logins, r.Elapsed.Round(time.Millisecond), float64(r.Logins)/r.Elapsed.Seconds())
}

// Logins measures returning members' logins: dial, challenge, answer, close.
func Logins(ctx context.Context, cfg LoginConfig) (LoginResult, error) {
	type user struct {
		id   string
		priv icrypto.PrivateKey
	}
	users := make([]user, cfg.Members)
	for i := range users {
		_, priv, err := icrypto.GenerateKey(rand.Reader)
		if err != nil {
			return LoginResult{}, err
		}
		users[i] = user{uuid.NewString(), priv}
		c, err := client.Dial(ctx, cfg.URL, nil)
		if err != nil {
			return LoginResult{}, err
		}
		_, err = c.LoginCommunity(ctx, users[i].id, priv, cfg.Invite, nil)
		c.Close()
		if err != nil {
			return LoginResult{}, fmt.Errorf("join: %w", err)
		}
	}
	if cfg.Ready != nil {
		cfg.Ready()
	}
	var n atomic.Int64
	var firstErr atomic.Value
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	// Members remember their member keys, as the server does, so the load
	// is the server's login and not the client's X448.
	opts := &client.Options{MemberKeys: &client.MemberKeyCache{}}
	start := time.Now()
	// A dial cut by the deadline can return before runCtx says it is
	// done: only errors before the deadline count.
	end, _ := runCtx.Deadline()
	running := func() bool { return runCtx.Err() == nil && time.Now().Before(end) }
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; runCtx.Err() == nil; i += cfg.Workers {
				u := users[i%len(users)]
				c, err := client.Dial(runCtx, cfg.URL, opts)
				if err != nil {
					if running() {
						firstErr.CompareAndSwap(nil, err)
					}
					return
				}
				_, err = c.LoginCommunity(runCtx, u.id, u.priv, "", nil)
				c.Close()
				if err != nil {
					if running() {
						firstErr.CompareAndSwap(nil, err)
					}
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Logins: n.Load(), Elapsed: time.Since(start)}, nil
}
