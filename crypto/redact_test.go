package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestPrivateKeyNeverPrints tries every way a key could reach a log line
// by accident: each fmt verb, inside a struct, and both slog handlers.
func TestPrivateKeyNeverPrints(t *testing.T) {
	var k PrivateKey
	for i := range k {
		k[i] = byte(0xa0 + i%16)
	}
	forms := []string{
		EncodePrivateKey(k), base64.RawURLEncoding.EncodeToString(k[:]), hex.EncodeToString(k[:]),
		fmt.Sprint(k[0]), // a decimal byte, as %v of a plain array would print it
	}
	holder := struct{ Key PrivateKey }{k}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b"} {
		out = append(out, fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, holder))
	}
	out = append(out, fmt.Sprint(k), fmt.Sprintln(k))
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "key", k, "holder", holder)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", slog.Any("key", k))
	out = append(out, buf.String())
	for _, s := range out {
		for _, f := range forms[:3] {
			if strings.Contains(s, f) {
				t.Fatalf("key printed: %q", s)
			}
		}
		if strings.Contains(s, "160") || strings.Contains(s, "a0a1") || strings.Contains(s, "A0A1") {
			t.Fatalf("key bytes printed: %q", s)
		}
	}
	if !strings.Contains(fmt.Sprintf("%v %x", k, holder), redacted) {
		t.Fatal("no [redacted] marker")
	}
}
