package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// refDepth measures nesting with encoding/json's tokenizer, as a
// reference for depth.
func refDepth(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	d, max := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil {
			return max
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			d++
			max = maxInt(max, d)
		case json.Delim('}'), json.Delim(']'):
			d--
		}
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"type":"ping","id":"1","data":{"last_ping":5}}`,
		`{"type":"identification","id":"a","log":{"log_level":1,"message":"x"},"data":{"user_id":"u"}}`,
		`{"type":"function","id":"f","data":{"codec":"text","name":"General","path":"","function":"send_message","payload":{"message":"hi"}}}`,
		`{"type":"add_community","data":{"community_address":"a","community_title":"b","position":"c"}}`,
		`[1,2,3]`, `"ping"`, `{"type":5}`, `{"id":7,"type":"ping"}`, `{"type":"ping","data":null}`,
		`{"type":"ping","data":[]}`, `{"type":"ping","data":{"s":"\"}{[\u005b"}}`, `{"type":"x","data":{"a":[[[[[[[[]]]]]]]]}}`,
		`{"type":"ping"`, ``, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := DecodeRequest(frame)
		if json.Valid(frame) {
			if got, want := depth(frame), refDepth(frame); got != want {
				t.Fatalf("depth %d, reference %d for %q", got, want, frame)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrInvalidData) {
				t.Fatalf("error of no wire type: %v", err)
			}
			return
		}
		if len(req.Data) == 0 || req.Data[0] != '{' || !json.Valid(req.Data) {
			t.Fatalf("accepted a frame whose data is %q", req.Data)
		}
		if len(req.ID) > 4*MaxIDLength {
			t.Fatalf("accepted an id of %d bytes", len(req.ID))
		}
	})
}
