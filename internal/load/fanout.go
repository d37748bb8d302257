// Package load drives a running iotad the way many clients would, for the
// benchmarks and for cmd/iotad-load. It measures from the outside: what was
// sent, what arrived, and how long it took.
package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

// FanoutConfig describes a fan-out run: Members sockets in one text
// channel, Senders of them posting.
type FanoutConfig struct {
	// URL is the community socket, e.g. ws://127.0.0.1:1984/.
	URL string
	// URLs, when set, spread the members over several nodes of a cluster
	// serving the community: member i dials URLs[i % len(URLs)].
	URLs []string
	// Invite lets the members join (it needs Members uses).
	Invite  string
	Members int
	Senders int
	// Rate is messages per second over all senders; 0 means each sender
	// posts as fast as its acknowledgements come back.
	Rate float64
	// Stagger spreads the senders' ticks evenly over a tick's period, as
	// independent people post; without it they tick together, and their
	// messages arrive in bursts of Senders that one node commits (and
	// fans out) as one, which nodes that each hold a sender cannot.
	Stagger  bool
	Duration time.Duration
	// Path and Channel name the text channel.
	Path, Channel string
	// LoginParallel bounds concurrent logins.
	LoginParallel int
	// LegacyLogin logs the members in with login version 1, for a server
	// from before version 2.
	LegacyLogin bool
	// Ready, when set, runs once every member is logged in, just before
	// posting starts (the load tool reads the server's CPU time there).
	Ready func()
}

// FanoutResult is what a run measured.
type FanoutResult struct {
	Members   int
	Sent      int64
	Delivered int64
	Elapsed   time.Duration
	// Latencies are send → deliver, sampled on every member.
	P50, P99, Max time.Duration
	// Closed counts member sockets the server closed during the run.
	Closed int64
}

// DeliveriesPerSecond is the run's delivery rate.
func (r FanoutResult) DeliveriesPerSecond() float64 {
	return float64(r.Delivered) / r.Elapsed.Seconds()
}

func (r FanoutResult) String() string {
	return fmt.Sprintf("members=%d sent=%d delivered=%d (%.0f/s) p50=%v p99=%v max=%v closed=%d",
		r.Members, r.Sent, r.Delivered, r.DeliveriesPerSecond(), r.P50, r.P99, r.Max, r.Closed)
}

var liveMarker = []byte(`"result":"message_live"`)
var bodyMarker = []byte(`"message":"t=`)

// receiver counts message_live frames and records their latency.
type receiver struct {
	delivered atomic.Int64
	last      atomic.Int64 // unix nanos of the latest delivery
	mu        sync.Mutex
	latencies []time.Duration
}

// onFrame runs for every frame of every member, a million a second in the
// busy room, on the load tool's one core: it looks for the body's '=',
// which nothing else in a frame has, before any longer marker, since two
// bytes.Index calls over each frame were a third of the tool's CPU.
func (r *receiver) onFrame(frame []byte) bool {
	body := -1
	if i := bytes.IndexByte(frame, '='); i >= 0 {
		if bytes.HasSuffix(frame[:i+1], bodyMarker) {
			body = i + 1
		} else if j := bytes.Index(frame, bodyMarker); j >= 0 {
			body = j + len(bodyMarker) // another '=' came first
		}
	}
	if !isLive(frame, body) {
		return false
	}
	now := time.Now().UnixNano()
	r.delivered.Add(1)
	r.last.Store(now)
	if body < 0 {
		return true
	}
	rest := frame[body:]
	if j := bytes.IndexByte(rest, '"'); j > 0 {
		if sent, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
			r.mu.Lock()
			r.latencies = append(r.latencies, time.Duration(now-sent))
			r.mu.Unlock()
		}
	}
	return true
}

// isLive reports whether frame is a message_live; body is where its
// timed text starts, or -1. The result comes just before the payload,
// whose id and text before the body hold no 'v', so the last 'v' before
// the body is the one of "message_live" when the frame is one.
func isLive(frame []byte, body int) bool {
	if body >= 0 {
		if v := bytes.LastIndexByte(frame[:body], 'v'); v >= 0 && bytes.HasSuffix(frame[:min(v+3, body)], liveMarker) {
			return true
		}
	}
	return bytes.Contains(frame, liveMarker)
}

// Join logs n new users in to the community at url with invite.
func Join(ctx context.Context, url, invite string, n, parallel int, opts func(i int) *client.Options) ([]*client.Client, error) {
	return JoinSpread(ctx, []string{url}, invite, n, parallel, opts)
}

// JoinSpread is Join with member i on urls[i % len(urls)]: one community
// served by several nodes.
func JoinSpread(ctx context.Context, urls []string, invite string, n, parallel int, opts func(i int) *client.Options) ([]*client.Client, error) {
	if parallel <= 0 {
		parallel = 16
	}
	clients := make([]*client.Client, n)
	errs := make([]error, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, priv, err := icrypto.GenerateKey(rand.Reader)
			if err != nil {
				errs[i] = err
				return
			}
			var o *client.Options
			if opts != nil {
				o = opts(i)
			}
			c, err := client.Dial(ctx, urls[i%len(urls)], o)
			if err != nil {
				errs[i] = err
				return
			}
			if _, err := c.LoginCommunity(ctx, uuid.NewString(), priv, invite, nil); err != nil {
				c.Close()
				errs[i] = fmt.Errorf("member %d: %w", i, err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	return clients, nil
}

// Fanout runs one fan-out measurement.
func Fanout(ctx context.Context, cfg FanoutConfig) (FanoutResult, error) {
	if cfg.Senders < 1 || cfg.Senders > cfg.Members {
		return FanoutResult{}, fmt.Errorf("load: senders must be 1..members")
	}
	recv := &receiver{}
	urls := cfg.URLs
	if len(urls) == 0 {
		urls = []string{cfg.URL}
	}
	clients, err := JoinSpread(ctx, urls, cfg.Invite, cfg.Members, cfg.LoginParallel, func(int) *client.Options {
		return &client.Options{OnFrame: recv.onFrame, LegacyLogin: cfg.LegacyLogin}
	})
	if err != nil {
		return FanoutResult{}, err
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()

	if cfg.Ready != nil {
		cfg.Ready()
	}
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var sent atomic.Int64
	senderErrs := make([]error, cfg.Senders)
	var wg sync.WaitGroup
	for i := range cfg.Senders {
		c := clients[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			senderErrs[i] = send(runCtx, c, cfg, i, &sent)
			if runCtx.Err() != nil {
				senderErrs[i] = nil
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(senderErrs...); err != nil {
		return FanoutResult{}, err
	}
	// Let what was sent arrive, up to a bound.
	want := sent.Load() * int64(cfg.Members)
	deadline := time.Now().Add(5 * time.Second)
	for recv.delivered.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Duration(recv.last.Load() - start.UnixNano())
	res := FanoutResult{Members: cfg.Members, Sent: want / int64(cfg.Members), Delivered: recv.delivered.Load(), Elapsed: elapsed}
	for _, c := range clients {
		select {
		case <-c.Done():
			res.Closed++
		default:
		}
	}
	recv.mu.Lock()
	lat := recv.latencies
	recv.mu.Unlock()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50, res.P99, res.Max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return res, nil
}

// send posts messages until ctx ends: at the configured rate without
// waiting (open loop), or each after the previous one's acknowledgement.
func send(ctx context.Context, c *client.Client, cfg FanoutConfig, sender int, n *atomic.Int64) error {
	var tick *time.Ticker
	if cfg.Rate > 0 {
		period := time.Duration(float64(time.Second) * float64(cfg.Senders) / cfg.Rate)
		if cfg.Stagger {
			select {
			case <-time.After(period * time.Duration(sender) / time.Duration(cfg.Senders)):
			case <-ctx.Done():
				return nil
			}
		}
		tick = time.NewTicker(period)
		defer tick.Stop()
	}
	for ctx.Err() == nil {
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return nil
			}
		}
		payload := map[string]any{"message": "t=" + strconv.FormatInt(time.Now().UnixNano(), 10)}
		if tick != nil {
			err := c.Send("function", "", map[string]any{"codec": "text", "path": cfg.Path, "name": cfg.Channel,
				"function": "send_message", "payload": payload})
			if err != nil {
				return err
			}
		} else if _, err := c.Function(ctx, "text", cfg.Path, cfg.Channel, "send_message", payload); err != nil {
			return err
		}
		n.Add(1)
	}
	return nil
}
