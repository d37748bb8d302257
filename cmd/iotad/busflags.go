package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/iotad/iotad/api"
	"github.com/iotad/iotad/community"
	"github.com/iotad/iotad/internal/bus"
)

// busFlags join this node to others (docs/SCALING.md explains them).
type busFlags struct {
	nats             string
	nodeID           string
	callURL          string
	ticketSecretFile string
	leaseTTL         time.Duration
}

func (f *busFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.nats, "nats", "", "join other iotad nodes through these NATS servers (comma-separated nats://host:port, JetStream on); empty: this node alone")
	fs.StringVar(&f.nodeID, "node-id", "", "with --nats: this node's name, unique in the cluster (default: host name and --addr port)")
	fs.StringVar(&f.callURL, "node-call-url", "", "with --nats: where clients reach this node's call sockets, ws[s]://host:port/ws/calls/ (default: from --public-addr)")
	fs.StringVar(&f.ticketSecretFile, "ticket-secret-file", "", "file holding the call ticket secret (32 bytes or more), the same on every node; required with --nats (default alone: random per start)")
	fs.DurationVar(&f.leaseTTL, "call-lease", community.DefaultLeaseTTL, "with --nats: how long a node's claim on a call outlives it (how long a call on a dead node stays unreachable)")
}

// cluster is what joining nodes adds to a node: its bus and how the
// community service uses it. Alone, it is empty.
type cluster struct {
	bus  bus.Bus
	tune func(*community.Options)
}

// start connects to NATS when asked; publicAddr and tls name this node's
// call sockets by default.
func (f *busFlags) start(publicAddr string, tls bool, addrPort string, log *slog.Logger) (*cluster, error) {
	if f.nats == "" {
		if f.ticketSecretFile == "" {
			return &cluster{}, nil
		}
		secret, err := readTicketSecret(f.ticketSecretFile)
		if err != nil {
			return nil, err
		}
		return &cluster{tune: func(o *community.Options) { o.TicketSecret = secret }}, nil
	}
	if f.ticketSecretFile == "" {
		return nil, errors.New("--nats needs --ticket-secret-file, one secret shared by every node, so that a call ticket from one node opens a call on another")
	}
	secret, err := readTicketSecret(f.ticketSecretFile)
	if err != nil {
		return nil, err
	}
	node := community.Node{ID: f.nodeID, CallURL: f.callURL}
	if node.ID == "" {
		host, _ := os.Hostname()
		node.ID = host + "-" + addrPort
	}
	if strings.ContainsAny(node.ID, " .*>\t") {
		return nil, fmt.Errorf("--node-id %q: use letters, digits, - and _", node.ID)
	}
	if node.CallURL == "" {
		scheme := "ws"
		if tls {
			scheme = "wss"
		}
		node.CallURL = scheme + "://" + publicAddr + "/ws/calls/"
	}
	b, err := bus.DialNATS(f.nats, bus.NATSOptions{Name: node.ID, Log: log})
	if err != nil {
		return nil, err
	}
	claims, err := bus.NewNATSClaims(b.Conn())
	if err != nil {
		b.Close()
		return nil, err
	}
	log.Info("joined the cluster", slog.String("node", node.ID), slog.String("call_url", node.CallURL))
	return &cluster{bus: b, tune: func(o *community.Options) {
		o.Bus, o.Claims, o.Requests, o.TicketSecret, o.Node, o.LeaseTTL = b, claims, b, secret, node, f.leaseTTL
	}}, nil
}

// readTicketSecret reads a ticket secret file; surrounding white space is
// not part of it, so `head -c 32 /dev/urandom | base64 > FILE` works.
func readTicketSecret(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ticket-secret-file: %w", err)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) < 32 {
		return nil, fmt.Errorf("--ticket-secret-file %s: %d bytes; a ticket secret is at least 32", path, len(raw))
	}
	return raw, nil
}

// services adds the cluster's bus to what the api serves.
func (c *cluster) services(s api.Services) api.Services {
	s.Bus = c.bus
	return s
}

func (c *cluster) Close() {
	if c.bus != nil {
		c.bus.Close()
	}
}
