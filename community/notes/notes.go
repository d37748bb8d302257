// Package notes is a small example of a custom channel codec (the seed's
// "mods"): a channel that holds one shared note. It lives outside package
// community and uses only its exported codec interface, to show that the
// interface is enough.
package notes

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/iotad/iotad/community"
)

// Name is the codec's name in the tree.
const Name = "notes"

// MaxLength bounds a note, in characters.
const MaxLength = 10000

// Result pushed to everyone when the note changes.
const ResultNoteChanged = "note_changed"

// Register adds the codec to a registry.
func Register(r *community.Registry) { r.Register(Name, Codec{}) }

// Codec is the notes codec: read {} and write {text}.
type Codec struct{}

// Call implements community.Codec.
func (Codec) Call(ctx context.Context, call *community.Call) (*community.Result, error) {
	switch call.Function {
	case "read":
		text, err := call.State(ctx, "text")
		if err != nil {
			return nil, err
		}
		return &community.Result{Result: "note", Payload: map[string]string{"text": text}}, nil
	case "write":
		if !call.Allowed(community.PermPost) {
			return nil, fmt.Errorf("%w: writing notes needs a higher role", community.ErrPermission)
		}
		var in struct {
			Text *string `json:"text"`
		}
		if err := call.Decode(&in); err != nil {
			return nil, err
		}
		if in.Text == nil || utf8.RuneCountInString(*in.Text) > MaxLength {
			return nil, fmt.Errorf("%w: text is required, at most %d characters", community.ErrInvalidData, MaxLength)
		}
		text, by := *in.Text, call.Member.UserID
		err := call.SetState(ctx, "text", text, func() {
			call.Publish(ResultNoteChanged, map[string]string{"text": text, "user_id": by})
		})
		if err != nil {
			return nil, err
		}
		return &community.Result{Result: "written", Payload: map[string]any{}}, nil
	}
	return nil, community.UnknownFunction(Name, call.Function)
}
