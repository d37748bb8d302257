package community

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Codec is a kind of channel: the seed's "mods" are codecs too. A codec
// answers the functions addressed to its channels.
type Codec interface {
	// Call runs one function on one channel.
	Call(ctx context.Context, call *Call) (*Result, error)
}

// DataCodec is a codec that puts something in its channels' data object
// in the tree (the default is {}).
type DataCodec interface {
	Codec
	Data(c *Community, ch *Channel) any
}

// Call is one function call on a channel.
type Call struct {
	Community *Community
	Channel   *Channel
	Member    Member
	Function  string
	Payload   json.RawMessage
	// Session is what the transport keeps for the caller's socket (voice
	// uses it to know whether a call socket is up); codecs treat it as opaque.
	Session any
	// granted are the permissions Allowed confirmed on the cached role;
	// SetState checks them again against the stored one.
	granted []Permission
}

// Result is a function's reply: the wire's result name and payload. A nil
// *Result means no reply (typing).
type Result struct {
	Result  string
	Payload any
}

// Decode decodes the payload into v, turning failures into ErrInvalidData.
func (call *Call) Decode(v any) error {
	if len(call.Payload) == 0 {
		return nil
	}
	if err := json.Unmarshal(call.Payload, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return fmt.Errorf("%w: payload.%s has the wrong type (%s)", ErrInvalidData, typeErr.Field, typeErr.Value)
		}
		return fmt.Errorf("%w: payload: %v", ErrInvalidData, err)
	}
	return nil
}

// Allowed checks a permission of the caller in the call's channel: the
// table, and for post and voice the channel's overrides.
func (call *Call) Allowed(p Permission) bool {
	ok := call.Community.allows(call.Channel, call.Member.Role, p)
	if ok {
		call.granted = append(call.granted, p)
	}
	return ok
}

// Publish pushes an update about the call's channel to every member who
// can see it.
func (call *Call) Publish(result string, payload any) {
	call.Community.publish(Event{Channel: call.Channel.Ref(), Result: result, Payload: payload})
}

// State reads a value a codec stored for the channel ("" if none).
func (call *Call) State(ctx context.Context, key string) (string, error) {
	var v string
	err := call.Community.svc.db.Read.QueryRowContext(ctx, `SELECT value FROM channel_state WHERE channel_id = $1 AND key = $2`,
		call.Channel.ID, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// SetState stores a value for the channel durably; after runs once it is
// committed, in commit order.
func (call *Call) SetState(ctx context.Context, key, value string, after func()) error {
	return call.Community.svc.w.do(ctx, func(tx *sql.Tx) error {
		if err := call.recheck(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO channel_state(channel_id, key, value) VALUES($1, $2, $3)
			ON CONFLICT(channel_id, key) DO UPDATE SET value = excluded.value`, call.Channel.ID, key, value)
		return err
	}, after)
}

// UnknownFunction is the error for a function a codec does not have.
func UnknownFunction(codec, function string) error {
	return fmt.Errorf("%w: %s channels have no function %q", ErrInvalidData, codec, function)
}

// Registry maps codec names to codecs.
type Registry struct {
	mu     sync.RWMutex
	codecs map[string]Codec
}

// NewRegistry returns a registry with the built-in codecs.
func NewRegistry() *Registry {
	r := &Registry{codecs: map[string]Codec{}}
	r.Register(CodecCategory, categoryCodec{})
	r.Register(CodecText, &textCodec{})
	r.Register(CodecVoice, voiceCodec{})
	return r
}

// Register adds or replaces a codec.
func (r *Registry) Register(name string, c Codec) {
	r.mu.Lock()
	r.codecs[name] = c
	r.mu.Unlock()
}

// Has reports whether a codec is registered.
func (r *Registry) Has(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.codecs[name] != nil
}

func (r *Registry) get(name string) Codec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.codecs[name]
}

var emptyData = []byte("{}")

// data is the channel's data object for the tree. Called with c.mu held.
func (r *Registry) data(c *Community, ch *Channel) []byte {
	dc, ok := r.get(ch.Codec).(DataCodec)
	if !ok {
		return emptyData
	}
	b, err := json.Marshal(dc.Data(c, ch))
	if err != nil || len(b) == 0 || b[0] != '{' {
		return emptyData
	}
	return b
}

// Call runs a function on the channel at path/name. A codec that is not
// registered (a mod that was removed) has no functions, but its channels
// stay in the tree. A channel m may not view is not found.
func (c *Community) Call(ctx context.Context, m Member, path, name, codec, function string, payload json.RawMessage, session any) (*Channel, *Result, error) {
	ch, err := c.FindAs(m.Role, path, name)
	if err != nil {
		return nil, nil, err
	}
	if codec != "" && codec != ch.Codec {
		return nil, nil, fmt.Errorf("%w: %q is a %s channel, not %s", ErrInvalidData, name, ch.Codec, codec)
	}
	impl := c.svc.codecs.get(ch.Codec)
	if impl == nil {
		return nil, nil, UnknownFunction(ch.Codec, function)
	}
	res, err := impl.Call(ctx, &Call{Community: c, Channel: ch, Member: m, Function: function, Payload: payload, Session: session})
	return ch, res, err
}

// categoryCodec has no functions: categories only hold channels.
type categoryCodec struct{}

func (categoryCodec) Call(ctx context.Context, call *Call) (*Result, error) {
	return nil, UnknownFunction(CodecCategory, call.Function)
}
