package voice

import (
	"encoding/binary"
	"time"
)

const (
	// speakingLevel is the loudest -dBov that still counts as silence:
	// RFC 6464 levels run from 0 (loudest) to 127 (silence).
	speakingLevel = 50
	// speakingInterval is how often the flag may change: at most 4 a second.
	speakingInterval = 250 * time.Millisecond
	// speakingHold keeps the flag up across the gaps between words.
	speakingHold = 400 * time.Millisecond
)

// checkSpeaking updates the peer's speaking flag from the time of its last
// voiced packet and reports a change. Only the peer's ticker calls it.
func (p *Peer) checkSpeaking(now int64) {
	speaking := time.Duration(now-p.voiced.Load()) < speakingHold && !p.muted.Load()
	if speaking != p.speaking {
		p.speaking = speaking
		p.sig.Speaking(speaking)
	}
}

// audioLevel reads the RFC 6464 audio level from an RTP packet's header
// extension with the given id (RFC 8285 one- or two-byte form), without
// allocating.
func audioLevel(pkt []byte, id int) (level int, ok bool) {
	if id == 0 || len(pkt) < 12 || pkt[0]&0x10 == 0 {
		return 0, false
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if len(pkt) < off+4 {
		return 0, false
	}
	profile := binary.BigEndian.Uint16(pkt[off:])
	words := int(binary.BigEndian.Uint16(pkt[off+2:]))
	ext := pkt[off+4:]
	if len(ext) < 4*words {
		return 0, false
	}
	ext = ext[:4*words]
	switch {
	case profile == 0xBEDE:
		for i := 0; i < len(ext); {
			b := ext[i]
			if b == 0 { // padding
				i++
				continue
			}
			eid, size := int(b>>4), int(b&0x0f)+1
			// 15 ends the list; id 0 with a length is malformed: stop, as
			// pion does.
			if eid == 15 || eid == 0 {
				return 0, false
			}
			if i+1+size > len(ext) {
				return 0, false
			}
			if eid == id {
				return int(ext[i+1] & 0x7f), true
			}
			i += 1 + size
		}
	case profile&0xfff0 == 0x1000:
		for i := 0; i+1 < len(ext); {
			eid, size := int(ext[i]), int(ext[i+1])
			if eid == 0 {
				i++
				continue
			}
			if i+2+size > len(ext) {
				return 0, false
			}
			if eid == id && size > 0 {
				return int(ext[i+2] & 0x7f), true
			}
			i += 2 + size
		}
	}
	return 0, false
}
