package load

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/iotad/iotad/api/client"
	icrypto "github.com/iotad/iotad/crypto"
)

// IdleConfig describes an idle-memory run: Sockets logged-in sockets that
// then do nothing, and the server's memory before and after, read from its
// runtime.MemStats through /debug/pprof/heap (iotad serve --pprof).
type IdleConfig struct {
	// IotaURL and Token: register and log in Iota users (ws://host/ws/iota).
	IotaURL, Token string
	// CommunityURL and Invite: join the community instead.
	CommunityURL, Invite string
	Sockets              int
	// PprofURL is the server's admin listener, e.g. http://127.0.0.1:9184.
	PprofURL string
	// Settle is how long the sockets sit idle before the server's memory
	// is read (0: 2 s). Past the server's ping interval (30 s) an idle
	// socket's writer has parked.
	Settle time.Duration
}

// IdleResult is the server's memory growth for the idle sockets.
type IdleResult struct {
	Sockets          int
	HeapBytes        int64
	StackBytes       int64
	BytesPerSocket   float64
	SocketsConnected int
}

func (r IdleResult) String() string {
	return fmt.Sprintf("sockets=%d heap=%+d B stacks=%+d B per socket=%.0f B", r.Sockets, r.HeapBytes, r.StackBytes, r.BytesPerSocket)
}

var (
	heapInuse  = regexp.MustCompile(`# HeapInuse = (\d+)`)
	stackInuse = regexp.MustCompile(`# Stack = (\d+)`)
)

// serverMemory reads HeapInuse and StackInuse after a few collections, so
// that garbage and grown stacks have been given back.
func serverMemory(base string) (heap, stack int64, err error) {
	var body []byte
	for range 4 {
		resp, err := http.Get(base + "/debug/pprof/heap?debug=1&gc=1")
		if err != nil {
			return 0, 0, err
		}
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, 0, err
		}
	}
	h, s := heapInuse.FindSubmatch(body), stackInuse.FindSubmatch(body)
	if h == nil || s == nil {
		return 0, 0, fmt.Errorf("load: %s/debug/pprof/heap has no MemStats: is the server run with --pprof?", base)
	}
	heap, _ = strconv.ParseInt(string(h[1]), 10, 64)
	stack, _ = strconv.ParseInt(string(s[1]), 10, 64)
	return heap, stack, nil
}

// Idle opens the sockets, waits, and reports the server's memory growth.
func Idle(ctx context.Context, cfg IdleConfig) (IdleResult, error) {
	h0, s0, err := serverMemory(cfg.PprofURL)
	if err != nil {
		return IdleResult{}, err
	}
	var clients []*client.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	if cfg.Token != "" {
		for i := range cfg.Sockets {
			pub, priv, err := icrypto.GenerateKey(rand.Reader)
			if err != nil {
				return IdleResult{}, err
			}
			c, err := client.Dial(ctx, cfg.IotaURL, &client.Options{PushBuffer: 1})
			if err != nil {
				return IdleResult{}, err
			}
			clients = append(clients, c)
			m, err := c.Request(ctx, "register", map[string]string{"public_key": pub.String(), "token": cfg.Token})
			if err != nil {
				return IdleResult{}, fmt.Errorf("socket %d: register: %w", i, err)
			}
			var reg struct {
				UserID string `json:"user_id"`
			}
			m.Decode(&reg)
			if _, err := c.Login(ctx, priv, map[string]any{"user_id": reg.UserID}); err != nil {
				return IdleResult{}, fmt.Errorf("socket %d: login: %w", i, err)
			}
		}
	} else {
		clients, err = Join(ctx, cfg.CommunityURL, cfg.Invite, cfg.Sockets, 16, func(int) *client.Options { return &client.Options{PushBuffer: 1} })
		if err != nil {
			return IdleResult{}, err
		}
	}
	settle := cfg.Settle
	if settle <= 0 {
		settle = 2 * time.Second
	}
	time.Sleep(settle)
	h1, s1, err := serverMemory(cfg.PprofURL)
	if err != nil {
		return IdleResult{}, err
	}
	return IdleResult{Sockets: cfg.Sockets, HeapBytes: h1 - h0, StackBytes: s1 - s0,
		BytesPerSocket: float64(h1-h0+s1-s0) / float64(cfg.Sockets)}, nil
}
