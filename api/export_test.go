package api

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
