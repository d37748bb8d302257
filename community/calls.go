package community

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iotad/iotad/internal/bus"
)

// Node is this iotad node as the other nodes of a cluster see it.
type Node struct {
	// ID names the node; unique in the cluster.
	ID string `json:"id"`
	// CallURL is where clients open this node's call sockets
	// (ws[s]://host:port/ws/calls/): the call of a voice channel lives on
	// one node, and join answers with that node's URL.
	CallURL string `json:"call_url,omitempty"`
}

// Requests ask another node something directly (bus.NATS has them).
type Requests interface {
	Handle(subject string, fn func(data []byte) ([]byte, error)) (bus.Subscription, error)
	Request(ctx context.Context, subject string, data []byte) ([]byte, error)
}

// DefaultLeaseTTL is how long a node's claim on a call outlives its last
// renewal: how long a call stays unreachable after its node died.
const DefaultLeaseTTL = 10 * time.Second

// heldCall is a call this node holds the lease of; keep renews it.
type heldCall struct {
	lastJoin time.Time
	stop     chan struct{}
}

func callKey(c *Community, ch *Channel) string {
	return "call." + c.ID + "." + strconv.FormatInt(ch.ID, 10)
}

func iceSubject(nodeID string) string { return "iotad.node." + nodeID + ".ice" }

// placeCall answers which node holds ch's call, claiming it for this node
// when no live node does (as LiveKit places a room: the first join picks
// the node, the others follow it). Alone, this node holds every call.
func (c *Community) placeCall(ctx context.Context, ch *Channel) (Node, error) {
	s := c.svc
	if !s.joined {
		return s.node, nil
	}
	key := callKey(c, ch)
	holder, err := s.claims.Lease(ctx, key, s.nodeJSON, s.leaseTTL)
	if err != nil {
		return Node{}, fmt.Errorf("community: place the call: %w", err)
	}
	if holder == s.nodeJSON {
		s.keepCall(c, ch, key)
		return s.node, nil
	}
	var n Node
	if err := json.Unmarshal([]byte(holder), &n); err != nil {
		return Node{}, fmt.Errorf("community: the call's lease names no node: %w", err)
	}
	return n, nil
}

// keepCall renews this node's lease on a call while anyone is in it here
// or may still come with a ticket handed out (TicketTTL), then lets it go.
func (s *Service) keepCall(c *Community, ch *Channel, key string) {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	if h := s.held[key]; h != nil {
		h.lastJoin = s.now()
		return
	}
	h := &heldCall{lastJoin: s.now(), stop: make(chan struct{})}
	s.held[key] = h
	s.keepers.Add(1)
	go func() {
		defer s.keepers.Done()
		t := time.NewTicker(s.leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
			s.heldMu.Lock()
			idle := len(c.Peers(ch)) == 0 && s.now().Sub(h.lastJoin) > TicketTTL
			if idle {
				delete(s.held, key)
			}
			s.heldMu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), s.leaseTTL/3)
			if idle {
				err := s.claims.Release(ctx, key, s.nodeJSON)
				cancel()
				if err != nil {
					slog.Warn("community: release a call", slog.String("call", key), slog.Any("err", err))
				}
				return
			}
			holder, err := s.claims.Lease(ctx, key, s.nodeJSON, s.leaseTTL)
			cancel()
			switch {
			case err != nil:
				// NATS away: keep trying; the lease may lapse meanwhile.
				slog.Warn("community: renew a call's lease", slog.String("call", key), slog.Any("err", err))
			case holder != s.nodeJSON:
				slog.Error("community: another node took over a call held here", slog.String("call", key), slog.String("holder", holder))
				s.heldMu.Lock()
				delete(s.held, key)
				s.heldMu.Unlock()
				return
			}
		}
	}()
}

// stopKeepers ends the lease renewals; releasing (on a clean stop) lets
// the next join place the calls elsewhere at once instead of after the
// lease lapses.
func (s *Service) stopKeepers(release bool) {
	s.heldMu.Lock()
	held := s.held
	s.held = map[string]*heldCall{}
	s.heldMu.Unlock()
	for key, h := range held {
		close(h.stop)
		if release {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s.claims.Release(ctx, key, s.nodeJSON)
			cancel()
		}
	}
	s.keepers.Wait()
}

// serveICE answers other nodes' joins for calls held here with this
// node's ICE servers for the user (TURN credentials are per node).
func (s *Service) serveICE() error {
	if s.requests == nil || !s.joined {
		return nil
	}
	sub, err := s.requests.Handle(iceSubject(s.node.ID), func(data []byte) ([]byte, error) {
		var in struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal(data, &in); err != nil || in.UserID == "" {
			return nil, fmt.Errorf("community: an ICE request without a user")
		}
		return json.Marshal(s.iceFor(in.UserID))
	})
	if err != nil {
		return err
	}
	s.iceSub = sub
	return nil
}

func (s *Service) iceFor(userID string) []ICEServer {
	if s.iceServers == nil {
		return []ICEServer{}
	}
	return s.iceServers(userID)
}

// errNodeGone: the node holding a call's lease has no link to NATS (its
// subscriptions are gone), so it is dead or cut off and the call can move.
var errNodeGone = errors.New("community: the node holding the call is gone")

// joinCall places ch's call and returns its node and the ICE servers that
// node hands userID. A holder that is gone (see errNodeGone) loses the
// lease at once rather than when it lapses.
func (c *Community) joinCall(ctx context.Context, ch *Channel, userID string) (Node, []ICEServer, error) {
	for range 2 {
		n, err := c.placeCall(ctx, ch)
		if err != nil {
			return Node{}, nil, err
		}
		servers, err := c.svc.iceAt(ctx, n, userID)
		if errors.Is(err, errNodeGone) {
			holder, _ := json.Marshal(n)
			slog.Warn("community: a call's node is gone; moving the call", slog.String("node", n.ID), slog.String("community", c.ID))
			if err := c.svc.claims.Release(ctx, callKey(c, ch), string(holder)); err != nil {
				return Node{}, nil, err
			}
			continue
		}
		return n, servers, err
	}
	return Node{}, nil, fmt.Errorf("community: the call could not be placed")
}

// iceAt is the ICE servers node hands userID for a call it holds.
func (s *Service) iceAt(ctx context.Context, n Node, userID string) ([]ICEServer, error) {
	if n.ID == s.node.ID {
		return s.iceFor(userID), nil
	}
	if s.requests == nil {
		return nil, fmt.Errorf("community: the call is on node %s and this node cannot ask it", n.ID)
	}
	in, _ := json.Marshal(map[string]string{"user_id": userID})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := s.requests.Request(ctx, iceSubject(n.ID), in)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("%w: %s: %w", errNodeGone, n.ID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("community: ICE servers of node %s: %w", n.ID, err)
	}
	var servers []ICEServer
	if err := json.Unmarshal(out, &servers); err != nil {
		return nil, fmt.Errorf("community: ICE servers of node %s: %w", n.ID, err)
	}
	return servers, nil
}
