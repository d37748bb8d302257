package voice

import (
	"testing"

	"github.com/pion/rtp"
)

func packetWith(t testing.TB, profile uint16, id uint8, level byte) []byte {
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, CSRC: []uint32{1, 2}}, Payload: []byte{1, 2, 3}}
	if profile != 0 {
		p.Header.Extension = true
		p.Header.ExtensionProfile = profile
		p.Header.SetExtension(3, []byte{0xaa, 0xbb})
		p.Header.SetExtension(id, []byte{0x80 | level})
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAudioLevel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pkt       []byte
		id        int
		wantLevel int
		wantOK    bool
	}{
		{"one-byte", packetWith(t, 0xBEDE, 1, 42), 1, 42, true},
		{"two-byte", packetWith(t, 0x1000, 5, 127), 5, 127, true},
		{"other id", packetWith(t, 0xBEDE, 1, 42), 2, 0, false},
		{"no extension", packetWith(t, 0, 0, 0), 1, 0, false},
		{"id zero means not negotiated", packetWith(t, 0xBEDE, 1, 42), 0, 0, false},
		{"truncated", packetWith(t, 0xBEDE, 1, 42)[:14], 1, 0, false},
		{"short", []byte{0x90}, 1, 0, false},
	} {
		level, ok := audioLevel(tc.pkt, tc.id)
		if level != tc.wantLevel || ok != tc.wantOK {
			t.Errorf("%s: %d %v, want %d %v", tc.name, level, ok, tc.wantLevel, tc.wantOK)
		}
	}
}

// FuzzAudioLevel checks the allocation-free parser against pion's own
// header parsing.
func FuzzAudioLevel(f *testing.F) {
	f.Add(packetWith(f, 0xBEDE, 1, 42), 1)
	f.Add(packetWith(f, 0x1000, 5, 3), 5)
	f.Add([]byte{0x90, 0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, pkt []byte, id int) {
		if id < 1 || id > 14 {
			return
		}
		level, ok := audioLevel(pkt, id)
		var h rtp.Header
		if _, err := h.Unmarshal(pkt); err != nil || !h.Extension {
			return // pion is stricter about the rest of the header
		}
		if h.ExtensionProfile != 0xBEDE && h.ExtensionProfile != 0x1000 {
			// RFC 8285 lets the two-byte profile carry 4 app bits
			// (0x100X); pion reads only 0x1000.
			return
		}
		ext := h.GetExtension(uint8(id))
		if (len(ext) > 0) != ok {
			t.Fatalf("parser says %v, pion says %x", ok, ext)
		}
		if ok && int(ext[0]&0x7f) != level {
			t.Fatalf("level %d, pion %d", level, ext[0]&0x7f)
		}
	})
}

func BenchmarkAudioLevel(b *testing.B) {
	pkt := packetWith(b, 0xBEDE, 1, 42)
	b.ReportAllocs()
	for b.Loop() {
		audioLevel(pkt, 1)
	}
}
