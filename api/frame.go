package api

import "encoding/binary"

// Frames are built here, not by gorilla/websocket, so that one encoded
// broadcast can be queued to a thousand sockets as the same bytes and each
// socket's writer can hand its whole queue to the kernel in one writev.
// Server frames are never masked (RFC 6455 §5.1), so the bytes are the same
// for every recipient.

const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
	finBit  = 0x80
)

// headerRoom is the largest frame header a server frame needs.
const headerRoom = 10

// newFrameBuffer returns a buffer with room for a frame header in front, so
// that appending the payload and calling sealFrame never copies it.
func newFrameBuffer(sizeHint int) []byte {
	return make([]byte, headerRoom, headerRoom+sizeHint)
}

// sealFrame writes a text frame header in front of the payload that follows
// the header room of buf and returns the whole frame.
func sealFrame(buf []byte) []byte {
	payload := len(buf) - headerRoom
	var start int
	switch {
	case payload <= 125:
		start = headerRoom - 2
		buf[start+1] = byte(payload)
	case payload <= 0xffff:
		start = headerRoom - 4
		buf[start+1] = 126
		binary.BigEndian.PutUint16(buf[start+2:], uint16(payload))
	default:
		start = 0
		buf[1] = 127
		binary.BigEndian.PutUint64(buf[2:], uint64(payload))
	}
	buf[start] = finBit | opText
	return buf[start:]
}

// textFrame copies payload into a complete text frame.
func textFrame(payload []byte) []byte {
	buf := newFrameBuffer(len(payload))
	buf = append(buf, payload...)
	return sealFrame(buf)
}

// closeNoStatus is the code gorilla reports for a close frame without
// one; the answer to such a frame carries none either (RFC 6455 §7.1.5).
const closeNoStatus = 1005

// closeFrame builds a close frame with a status code and a short reason.
func closeFrame(code int, reason string) []byte {
	if code == closeNoStatus {
		return []byte{finBit | opClose, 0}
	}
	if len(reason) > 123 {
		reason = reason[:123]
	}
	b := make([]byte, 4, 4+len(reason))
	b[0] = finBit | opClose
	b[1] = byte(2 + len(reason))
	binary.BigEndian.PutUint16(b[2:], uint16(code))
	return append(b, reason...)
}

// controlFrame builds a ping or pong; gorilla has already bounded a
// peer's control payload to 125 bytes, the most a control frame carries.
func controlFrame(op byte, payload string) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	b := make([]byte, 2, 2+len(payload))
	b[0] = finBit | op
	b[1] = byte(len(payload))
	return append(b, payload...)
}

var pingFrame = []byte{finBit | opPing, 0}
