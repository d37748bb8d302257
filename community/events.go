package community

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/iotad/iotad/internal/bus"
)

// Subject is the bus subject of a community's events.
func Subject(communityID string) string { return "iotad.community." + communityID }

// wireEvent is an Event as one node tells the others (bus.Message.Encode).
// Payload stays the JSON the sockets get, so a receiving node decodes it
// only where one of its caches needs a field.
type wireEvent struct {
	Channel     *ChannelRef     `json:"channel,omitempty"`
	Result      string          `json:"result,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	Except      string          `json:"except,omitempty"`
	Only        string          `json:"only,omitempty"`
	TreeChanged bool            `json:"tree_changed,omitempty"`
	Disconnect  string          `json:"disconnect,omitempty"`
	CloseCode   int             `json:"close_code,omitempty"`
	RoleChanged string          `json:"role_changed,omitempty"`
	Role        Role            `json:"role,omitempty"`
	EndCall     string          `json:"end_call,omitempty"`
	MuteCall    string          `json:"mute_call,omitempty"`
	Muted       bool            `json:"muted,omitempty"`
	Seq         int64           `json:"seq,omitempty"`
	Published   int64           `json:"published,omitempty"` // unix µs
}

// Encode implements bus.Message; only a bus that leaves the process calls
// it, once per publish.
func (e *Event) Encode() ([]byte, error) {
	w := wireEvent{Channel: e.Channel, Result: e.Result, Except: e.Except, Only: e.Only, TreeChanged: e.TreeChanged,
		Disconnect: e.Disconnect, CloseCode: e.CloseCode, RoleChanged: e.RoleChanged, Role: e.Role,
		EndCall: e.EndCall, MuteCall: e.MuteCall, Muted: e.Muted, Seq: e.Seq, Published: e.Published.UnixMicro()}
	if e.Payload != nil {
		p, err := json.Marshal(e.Payload)
		if err != nil {
			return nil, err
		}
		w.Payload = p
	}
	return json.Marshal(w)
}

// decodeEvent is the bus.Decoder of community events from other nodes.
func decodeEvent(data []byte) (bus.Message, error) {
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("community: decode event: %w", err)
	}
	e := &Event{Channel: w.Channel, Result: w.Result, Except: w.Except, Only: w.Only, TreeChanged: w.TreeChanged,
		Disconnect: w.Disconnect, CloseCode: w.CloseCode, RoleChanged: w.RoleChanged, Role: w.Role,
		EndCall: w.EndCall, MuteCall: w.MuteCall, Muted: w.Muted, Seq: w.Seq,
		Published: time.UnixMicro(w.Published), remote: true}
	if w.Payload != nil {
		e.Payload = w.Payload
	}
	return e, nil
}

// Subscribe registers fn for every event of the community, from this node
// and, on a bus that joins nodes, from every other. fn runs in the
// community's one delivery goroutine, one event at a time, in the order
// the events were published (for writes, their commit order; a channel's
// messages from several nodes in the order of their sequence), possibly
// after the write that published it has returned. A slow fn delays the
// community's later events, never its writes. The first listener
// subscribes the community on the bus, the last one to stop unsubscribes
// it: a node hears only communities it has sockets for.
func (c *Community) Subscribe(fn func(Event)) (stop func()) {
	return c.SubscribeRuns(fn, nil)
}

// SubscribeRuns is Subscribe with drained, called in the same goroutine
// whenever no event is left to deliver: events delivered since the last
// drained form a run, and a listener may hold back what each event would
// wake (a socket's writer) until the run ends. Events of one commit are
// published together, so they make one run unless the delivery goroutine
// overtakes the commit's after hooks.
func (c *Community) SubscribeRuns(fn func(Event), drained func()) (stop func()) {
	l := &listener{fn: fn, drained: drained}
	c.listenersMu.Lock()
	c.listeners = append(append([]*listener(nil), c.listeners...), l)
	first := len(c.listeners) == 1
	if first {
		c.subscribeLocked()
	}
	c.listenersMu.Unlock()
	return func() {
		c.listenersMu.Lock()
		defer c.listenersMu.Unlock()
		kept := make([]*listener, 0, len(c.listeners))
		for _, o := range c.listeners {
			if o != l {
				kept = append(kept, o)
			}
		}
		if len(kept) == len(c.listeners) {
			return
		}
		c.listeners = kept
		if len(kept) == 0 && c.sub != nil {
			c.sub.Unsubscribe()
			c.sub = nil
		}
	}
}

type listener struct {
	fn      func(Event)
	drained func()
}

// subscribeLocked subscribes to the community's subject; with
// c.listenersMu held. On a bus that joins nodes, the caches other nodes'
// events keep current may have gone stale while nothing was subscribed,
// so they are read again first.
func (c *Community) subscribeLocked() {
	if c.svc.joined {
		c.resync()
		if err := c.startSequences(context.Background()); err != nil {
			slog.Error("community: read where the channels' sequences stand", slog.String("community", c.ID), slog.Any("err", err))
		}
	}
	sub, err := c.svc.bus.Subscribe(c.subject, decodeEvent, c.receive)
	if err != nil {
		slog.Error("community: subscribe to events", slog.String("community", c.ID), slog.Any("err", err))
		return
	}
	c.sub = sub
}

// publish hands e to the bus and returns at once: the writer publishes
// from its after-commit hooks and must not wait for fan-out.
func (c *Community) publish(e Event) {
	e.Published = time.Now()
	if err := c.svc.bus.Publish(c.subject, &e); err != nil {
		slog.Warn("community: publish event", slog.String("community", c.ID), slog.String("result", e.Result), slog.Any("err", err))
	}
}

// receive is the bus subscription's handler: it brings this node's caches
// up to date with another node's event, puts a channel's messages in
// sequence order, and hands the event to the listeners.
func (c *Community) receive(m bus.Message) {
	if m == bus.Drained {
		c.listenersMu.RLock()
		ls := c.listeners
		c.listenersMu.RUnlock()
		for _, l := range ls {
			if l.drained != nil {
				l.drained()
			}
		}
		return
	}
	e := m.(*Event)
	var ch *Channel
	if e.remote {
		ch = c.applyRemote(e)
	}
	// Alone, a node's events come in commit order and none is lost; a
	// gap in the numbers is a deleted message, not one to read back.
	if c.svc.joined && e.Seq > 0 && e.Channel != nil && e.Result == ResultMessageLive {
		if ch == nil {
			ch, _ = c.Find(e.Channel.Path, e.Channel.Name)
		}
		if ch != nil {
			c.seq.Next(sequenceKey(ch), e.Seq, e, c.deliver)
			return
		}
	}
	c.deliver(e)
}

func (c *Community) deliver(e *Event) {
	c.listenersMu.RLock()
	ls := c.listeners
	c.listenersMu.RUnlock()
	for _, l := range ls {
		l.fn(*e)
	}
}

// applyRemote does for another node's event what the after-commit hook
// did on the node that committed it: the offset index, the tree, the
// voice state. It returns the event's channel, if this node has it.
func (c *Community) applyRemote(e *Event) *Channel {
	switch {
	case e.TreeChanged:
		if err := c.reloadTree(context.Background()); err != nil {
			slog.Error("community: reload the tree after another node changed it", slog.String("community", c.ID), slog.Any("err", err))
		}
		return nil
	case e.Channel == nil:
		return nil
	}
	ch, err := c.Find(e.Channel.Path, e.Channel.Name)
	if err != nil {
		return nil // a channel this node has not loaded yet: its tree event follows
	}
	raw, _ := e.Payload.(json.RawMessage)
	switch e.Result {
	case ResultMessageLive, ResultMessageDeleted:
		if e.Seq <= 0 {
			return ch
		}
		if e.Result == ResultMessageLive {
			c.offsets.added(ch.ID, e.Seq)
		} else {
			c.offsets.removed(ch.ID, e.Seq)
		}
	case ResultUserChanged:
		if ch.Codec != CodecVoice {
			return ch
		}
		var u VoiceUser
		if json.Unmarshal(raw, &u) != nil || u.UserID == "" {
			return ch
		}
		c.setRemoteVoice(ch, u)
	case ResultUserLeft:
		var p struct {
			UserID string `json:"user_id"`
		}
		if json.Unmarshal(raw, &p) == nil && ch.Codec == CodecVoice {
			c.dropRemoteVoice(ch, p.UserID)
		}
	}
	return ch
}

// setRemoteVoice records a voice state another node announced. An
// inactive user stays listed until their user_left, as on the node that
// holds the call.
func (c *Community) setRemoteVoice(ch *Channel, u VoiceUser) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.voice[ch.ID]
	if room == nil {
		room = &voiceRoom{}
		c.voice[ch.ID] = room
	}
	have := room.find(u.UserID)
	if have == nil {
		have = &VoiceUser{}
		room.users = append(room.users, have)
	}
	*have = u
	c.treeJSON = nil
}

func (c *Community) dropRemoteVoice(ch *Channel, userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.voice[ch.ID]; room != nil {
		c.removeVoiceUserLocked(ch, room, userID)
	}
}

// reloadTree reads the channel tree again (another node changed it) and
// drops the offset indexes and voice rooms of channels that are gone.
func (c *Community) reloadTree(ctx context.Context) error {
	c.treeMu.Lock()
	defer c.treeMu.Unlock()
	fresh := &Community{svc: c.svc, ID: c.ID}
	if err := fresh.loadTree(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.channels {
		if fresh.channels[id] == nil {
			c.offsets.drop(id)
			delete(c.voice, id)
		}
	}
	c.root, c.channels = fresh.root, fresh.channels
	c.computeAccessLocked()
	return nil
}

// resync reads again what other nodes' events keep current, after a time
// this node did not hear them: the tree, and the offset indexes (rebuilt
// on their next use).
func (c *Community) resync() {
	if err := c.reloadTree(context.Background()); err != nil {
		slog.Error("community: reload the tree", slog.String("community", c.ID), slog.Any("err", err))
	}
	c.offsets.mu.Lock()
	clear(c.offsets.byID)
	c.offsets.mu.Unlock()
}

// sequenceKey names a channel's sequence in c.seq: by id, which a rename
// or a move keeps.
func sequenceKey(ch *Channel) string { return strconv.FormatInt(ch.ID, 10) }

// startSequences sets each text channel's sequence where the store has it
// now. The first messages a node hears after it subscribes come from
// several nodes in no set order; started from the store, a later number
// that arrives first makes a gap that is backfilled, and the earlier one
// is then dropped as delivered, instead of being taken for history.
func (c *Community) startSequences(ctx context.Context) error {
	c.mu.Lock()
	var text []*Channel
	for _, ch := range c.channels {
		if ch.Codec == CodecText {
			text = append(text, ch)
		}
	}
	c.mu.Unlock()
	for _, ch := range text {
		var last int64
		if err := c.svc.db.ReadRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM messages WHERE channel_id = $1`, ch.ID).Scan(&last); err != nil {
			return fmt.Errorf("community: newest seq of channel %d: %w", ch.ID, err)
		}
		c.seq.Start(sequenceKey(ch), last)
	}
	return nil
}

// maxBackfill bounds one gap's read: a node that missed more than this
// has members who page the rest with get_messages.
const maxBackfill = 10000

// backfillMessages is Service.backfill on the store: the message_live
// events of the channel key names, numbered after+1 to before-1.
func backfillMessages(c *Community, key string, after, before int64) ([]*Event, error) {
	id, err := strconv.ParseInt(key, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("community: sequence key %q names no channel", key)
	}
	c.mu.Lock()
	ch := c.channels[id]
	c.mu.Unlock()
	if ch == nil {
		return nil, fmt.Errorf("community: no channel %d to backfill", id)
	}
	rows, err := c.svc.db.Read.QueryContext(context.Background(),
		`SELECT `+messageColumns+` FROM `+messageSource+` WHERE m.channel_id = $1 AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq LIMIT $4`,
		ch.ID, after, before, maxBackfill)
	if err != nil {
		return nil, fmt.Errorf("community: backfill %s: %w", key, err)
	}
	msgs, _, err := scanMessages(rows, maxBackfill)
	if err != nil {
		return nil, err
	}
	// scanMessages puts a page newest last from rows read newest first;
	// these were read oldest first.
	slices.Reverse(msgs)
	if err := c.attachMentions(context.Background(), ch, msgs); err != nil {
		return nil, err
	}
	if err := c.loadAttachments(context.Background(), ch, msgs); err != nil {
		return nil, err
	}
	ref := ch.Ref()
	out := make([]*Event, len(msgs))
	for i := range msgs {
		out[i] = &Event{Channel: ref, Result: ResultMessageLive, Payload: &msgs[i], Seq: msgs[i].Seq}
	}
	return out, nil
}
