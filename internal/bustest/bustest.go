// Package bustest starts a real NATS server (with JetStream) inside a test
// process, on a random loopback port, for the tests of every package that
// joins nodes.
package bustest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an embedded nats-server.
type Server struct {
	srv  *server.Server
	opts server.Options
	t    testing.TB
}

// Start runs a NATS server with JetStream on 127.0.0.1 and a free port,
// stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, opts: server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()}}
	s.start()
	// Restart keeps the port, so clients reconnect to the same URL.
	s.opts.Port = s.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats-server did not start")
	}
	s.srv = srv
}

// URL is the server's nats:// address.
func (s *Server) URL() string { return s.srv.ClientURL() }

// Stop shuts the server down (clients start reconnecting).
func (s *Server) Stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Restart starts the server again on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
