package client

import (
	"errors"
	"testing"
)

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		name, in, socket string
		tls              bool
		err              bool
	}{
		{"plain", "tensamin://example.org:1984/?invite=abc&key=k", "ws://example.org:1984/", false, false},
		{"tls", "tensamin://example.org:443/?invite=abc&key=k&tls=1", "wss://example.org:443/", true, false},
		{"tls zero", "tensamin://example.org:1984/?tls=0", "ws://example.org:1984/", false, false},
		{"no slash", "tensamin://example.org:1984", "ws://example.org:1984/", false, false},
		{"ipv6", "tensamin://[::1]:1984/?tls=1", "wss://[::1]:1984/", true, false},
		{"unknown parameter", "tensamin://h:1/?later=x", "ws://h:1/", false, false},
		{"no port", "tensamin://example.org/", "", false, true},
		{"bad port", "tensamin://example.org:99999/", "", false, true},
		{"other scheme", "https://example.org:1984/", "", false, true},
		{"user info", "tensamin://evil@example.org:1984/", "", false, true},
		{"path", "tensamin://example.org:1984/ws/iota", "", false, true},
		{"bad tls", "tensamin://example.org:1984/?tls=yes", "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAddress(tc.in)
			if tc.err {
				if !errors.Is(err, ErrBadAddress) {
					t.Fatalf("ParseAddress(%q) = %+v, %v; want ErrBadAddress", tc.in, a, err)
				}
				return
			}
			if err != nil || a.SocketURL() != tc.socket || a.TLS != tc.tls {
				t.Fatalf("ParseAddress(%q) = %+v (%s), %v", tc.in, a, a.SocketURL(), err)
			}
		})
	}
}

func TestAddressRoundTrip(t *testing.T) {
	in := "tensamin://example.org:1984/?invite=a%2Bb&key=k_-&tls=1"
	a, err := ParseAddress(in)
	if err != nil || a.Invite != "a+b" || a.Key != "k_-" {
		t.Fatalf("%+v %v", a, err)
	}
	if a.String() != in {
		t.Fatalf("String() = %q, want %q", a.String(), in)
	}
}

// FuzzParseAddress: whatever parses writes back to text that parses to
// the same address.
func FuzzParseAddress(f *testing.F) {
	f.Add("tensamin://example.org:1984/?invite=abc&key=k&tls=1")
	f.Fuzz(func(t *testing.T, in string) {
		a, err := ParseAddress(in)
		if err != nil {
			return
		}
		b, err := ParseAddress(a.String())
		if err != nil || b != a {
			t.Fatalf("%q → %+v → %q → %+v, %v", in, a, a.String(), b, err)
		}
	})
}
