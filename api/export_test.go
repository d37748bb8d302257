package api

// ResetQueuePeak lets a test read iotad_send_queue_peak_bytes for its own
// sockets alone.
func ResetQueuePeak() { metrics.queuePeak.Store(0) }

// AddrKey exposes addrKey to the black-box tests.
var AddrKey = addrKey
