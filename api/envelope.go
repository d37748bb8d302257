package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// MaxDepth is how deeply JSON may nest anywhere in a frame (PROTOCOL §2).
const MaxDepth = 64

// MaxIDLength bounds the request id a client chooses.
const MaxIDLength = 128

// Request is one decoded client frame.
type Request struct {
	Type string
	// ID is the request id as the client sent it; empty when absent.
	ID string
	// HasID tells an absent id from an empty string.
	HasID bool
	// Data is the raw data object ("{}" when the frame had none).
	Data json.RawMessage
}

// Reply is what a handler answers; a nil *Reply means no reply.
type Reply struct {
	Type string
	Data any
	// LogMessage is the human text in the reply's log field.
	LogMessage string
}

// Log is the envelope's log field.
type Log struct {
	Level   int    `json:"log_level"`
	Message string `json:"message"`
}

// Log levels of PROTOCOL §2.
const (
	LevelTrace = -1
	LevelDebug = 0
	LevelInfo  = 1
	LevelWarn  = 2
	LevelError = 3
)

type outEnvelope struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Log  Log    `json:"log"`
	Data any    `json:"data"`
}

type inEnvelope struct {
	Type json.RawMessage `json:"type"`
	ID   json.RawMessage `json:"id"`
	Data json.RawMessage `json:"data"`
}

var emptyObject = json.RawMessage("{}")

// DecodeRequest parses one client frame. The returned Request carries the id
// whenever it could be read, even when err is not nil, so that the error
// reply can echo it.
func DecodeRequest(frame []byte) (Request, error) {
	var req Request
	if !json.Valid(frame) {
		return req, fmt.Errorf("%w: frame is not JSON", ErrProtocol)
	}
	if depth(frame) > MaxDepth {
		return req, fmt.Errorf("%w: JSON nested deeper than %d levels", ErrProtocol, MaxDepth)
	}
	trimmed := bytes.TrimLeft(frame, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return req, fmt.Errorf("%w: frame is not a JSON object", ErrProtocol)
	}
	var env inEnvelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return req, fmt.Errorf("%w: frame is not a JSON object", ErrProtocol)
	}
	if len(env.ID) > 0 && !isNull(env.ID) {
		var id string
		if err := json.Unmarshal(env.ID, &id); err != nil {
			return req, fmt.Errorf("%w: id must be a string", ErrProtocol)
		}
		if utf8.RuneCountInString(id) > MaxIDLength {
			return req, fmt.Errorf("%w: id longer than %d characters", ErrProtocol, MaxIDLength)
		}
		req.ID, req.HasID = id, true
	}
	if len(env.Type) == 0 || isNull(env.Type) {
		return req, fmt.Errorf("%w: type is missing", ErrProtocol)
	}
	if err := json.Unmarshal(env.Type, &req.Type); err != nil {
		return req, fmt.Errorf("%w: type must be a string", ErrProtocol)
	}
	switch {
	case len(env.Data) == 0 || isNull(env.Data):
		req.Data = emptyObject
	case env.Data[0] != '{':
		return req, fmt.Errorf("%w: data must be an object", ErrInvalidData)
	default:
		req.Data = env.Data
	}
	return req, nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// depth reports how deeply arrays and objects nest in a valid JSON text.
func depth(b []byte) int {
	d, max := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			d++
			if d > max {
				max = d
			}
		case '}', ']':
			d--
		}
	}
	return max
}

// EncodeFrame encodes one server message. id may be empty (no id field).
func EncodeFrame(typ, id string, level int, message string, data any) ([]byte, error) {
	if data == nil {
		data = struct{}{}
	}
	b, err := json.Marshal(outEnvelope{Type: typ, ID: id, Log: Log{Level: level, Message: message}, Data: data})
	if err != nil {
		return nil, fmt.Errorf("api: encode %s: %w", typ, err)
	}
	return b, nil
}
