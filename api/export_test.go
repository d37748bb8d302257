package api

import (
	"sync/atomic"

	icrypto "github.com/iotad/iotad/crypto"
)

// ResetQueuePeak lets a test read iotad_send_queue_peak_bytes for its own
// sockets alone.
func ResetQueuePeak() { metrics.queuePeak.Store(0) }

// AddrKey exposes addrKey to the black-box tests.
var AddrKey = addrKey

// CachedSecrets counts the X448(S, U) values the main listener's community
// keeps for returning members.
func (s *Server) CachedSecrets() int {
	n := 0
	s.community.id.shared.Range(func(_, _ any) bool { n++; return true })
	return n
}

// CountStaticX448 makes the main listener's community count the X448(S, U)
// operations its logins do from now on; call it before any socket logs in.
func (s *Server) CountStaticX448() *atomic.Int64 {
	n := new(atomic.Int64)
	inner := s.community.id.x448
	s.community.id.x448 = func(pub icrypto.PublicKey) ([icrypto.KeySize]byte, error) {
		n.Add(1)
		return inner(pub)
	}
	return n
}
