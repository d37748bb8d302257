// Package bus carries iotad's events between the code that commits a change
// and the sockets that must hear of it, within one process (Memory) or
// across the nodes of a cluster (NATS), and holds the few facts nodes must
// agree on at once (Claims: single-use tickets, call leases).
package bus

import (
	"context"
	"errors"
	"time"
)

// Bus is the event interface of a node. Its contract:
//
//   - Publish hands m to every subscriber of subject on this node, as the
//     value itself (never encoded), and on a bus that joins nodes, to the
//     subscribers of every other node: encoded once per publish, decoded
//     once per receiving node.
//   - A subscription's messages arrive one at a time, in one goroutine,
//     never concurrently with each other. Messages published on this node
//     arrive in publish order; messages of one other node arrive in that
//     node's publish order. Between nodes there is no order: a receiver
//     that needs one (a channel's messages) orders by a sequence the
//     database assigned, see Sequencer.
//   - When a subscription has no message left to deliver, fn is called
//     once with Drained: a subscriber that holds work back across messages
//     (a socket's wake-up, so that a run of messages leaves in one write)
//     does it then. Drained is never published and never encoded.
//   - Publish never blocks on subscribers. Across nodes a message may be
//     lost (the link to NATS is down longer than its reconnect buffer
//     covers, a node is restarting): a receiver notices the loss as a gap
//     in a sequence, or resynchronises from the database when Reconnected
//     tells it messages may have been missed.
type Bus interface {
	// Publish queues m for subject's subscribers and returns.
	Publish(subject string, m Message) error
	// Subscribe calls fn with every message on subject. decode turns
	// another node's encoding back into a Message; Memory never calls it.
	// Nodes subscribe only to what they have sockets for: Unsubscribe when
	// the last one closes.
	Subscribe(subject string, decode Decoder, fn func(Message)) (Subscription, error)
	// Reconnected registers fn to run after the node's link to the other
	// nodes came back, when remote messages may have been lost.
	Reconnected(fn func())
	// Close stops delivering; later publishes are dropped.
	Close() error
}

// Message is what a Bus carries. Encode is called only by a bus that
// leaves the process, once per publish.
type Message interface {
	Encode() ([]byte, error)
}

// Holder is a Bus whose deliveries on this node can be held back while a
// publisher publishes several messages that belong together (Memory.Hold).
// Both buses of this package are Holders.
type Holder interface {
	Hold()
	Release()
}

// Drained is the Message a subscription's fn receives when nothing more
// is queued for it (see Bus).
var Drained Message = drained{}

type drained struct{}

func (drained) Encode() ([]byte, error) { return nil, errors.New("bus: Drained is never published") }

// Decoder turns another node's encoding of a Message back into one.
type Decoder func(data []byte) (Message, error)

// Subscription is one Subscribe; Unsubscribe delivers nothing more.
type Subscription interface {
	Unsubscribe() error
}

// Claims are short-lived facts every node must agree on at once.
type Claims interface {
	// Once records key for ttl and reports whether this call was the
	// first to record it (a single-use ticket: false means used).
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Lease claims key for owner: it answers the owner holding key now,
	// which is owner itself when key was free or already its own. A lease
	// lives ttl from its last Claim by the owner; the owner renews it by
	// claiming again before then.
	Lease(ctx context.Context, key, owner string, ttl time.Duration) (string, error)
	// Release gives up owner's lease on key, if it holds it.
	Release(ctx context.Context, key, owner string) error
}

// ErrClosed answers a call on a closed bus.
var ErrClosed = errors.New("bus: closed")
