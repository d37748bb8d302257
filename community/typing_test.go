package community

import (
	"fmt"
	"testing"
	"time"
)

// TestTypingGate: one pass per key per interval; a clock that steps back
// does not silence typing; old keys are forgotten, so a flood of distinct
// users does not grow the map for ever.
func TestTypingGate(t *testing.T) {
	var g typingGate
	now := time.Now()
	k := typingKey{"c", 1, "u"}
	if !g.pass(k, now) || g.pass(k, now.Add(TypingInterval-time.Millisecond)) {
		t.Fatal("the second typing within the interval passed, or the first did not")
	}
	if !g.pass(typingKey{"c", 2, "u"}, now) || !g.pass(typingKey{"c", 1, "v"}, now) {
		t.Fatal("another channel or user was held back")
	}
	if !g.pass(k, now.Add(TypingInterval)) {
		t.Fatal("the next interval was held back")
	}
	if !g.pass(k, now.Add(-time.Hour)) {
		t.Fatal("a clock that stepped back silenced typing")
	}
	later := now.Add(time.Minute)
	for i := range 3 * maxTypingKeys {
		g.pass(typingKey{"c", 1, fmt.Sprint(i)}, later.Add(time.Duration(i)*TypingInterval))
	}
	if len(g.last) > 2*maxTypingKeys {
		t.Fatalf("%d keys kept", len(g.last))
	}
}
