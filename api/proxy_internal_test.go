package api

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestClientHost(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		name    string
		peer    string
		trusted []netip.Prefix
		fwd     []string // Forwarded lines
		xff     []string // X-Forwarded-For lines
		want    string
	}{
		{name: "no proxies configured", peer: "127.0.0.1:5", xff: []string{"1.2.3.4"}, want: "127.0.0.1"},
		{name: "untrusted peer's xff ignored", peer: "192.0.2.9:5", trusted: trusted, xff: []string{"1.2.3.4"}, want: "192.0.2.9"},
		{name: "untrusted peer's forwarded ignored", peer: "192.0.2.9:5", trusted: trusted, fwd: []string{"for=1.2.3.4"}, want: "192.0.2.9"},
		{name: "trusted peer, no header", peer: "127.0.0.1:5", trusted: trusted, want: "127.0.0.1"},
		{name: "xff one hop", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "xff rightmost untrusted", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"6.6.6.6, 198.51.100.7, 10.1.1.1"}, want: "198.51.100.7"},
		{name: "xff over two lines", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"6.6.6.6, 198.51.100.7", "10.1.1.1"}, want: "198.51.100.7"},
		{name: "xff junk left of the answer", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"not an address,, 198.51.100.7"}, want: "198.51.100.7"},
		{name: "xff junk on the right", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"198.51.100.7, nonsense"}, want: "127.0.0.1"},
		{name: "xff empty entry on the right", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"198.51.100.7,"}, want: "127.0.0.1"},
		{name: "xff empty", peer: "127.0.0.1:5", trusted: trusted, xff: []string{""}, want: "127.0.0.1"},
		{name: "xff all trusted: leftmost", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"10.9.9.9, 10.1.1.1"}, want: "10.9.9.9"},
		{name: "xff ipv6", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "xff ipv6 bracketed with port", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"[2001:db8::7]:443"}, want: "2001:db8::7"},
		{name: "xff ipv4 with port", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"198.51.100.7:5555"}, want: "198.51.100.7"},
		{name: "xff mapped ipv4", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"::ffff:198.51.100.7"}, want: "198.51.100.7"},
		{name: "xff zone refused", peer: "127.0.0.1:5", trusted: trusted, xff: []string{"fe80::1%eth0"}, want: "127.0.0.1"},
		{name: "trusted mapped peer", peer: "[::ffff:127.0.0.1]:5", trusted: trusted, xff: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "trusted ipv6 peer", peer: "[fd00::1]:5", trusted: trusted, xff: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "forwarded one hop", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{"for=198.51.100.7;proto=https"}, want: "198.51.100.7"},
		{name: "forwarded wins over xff", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{"for=198.51.100.7"}, xff: []string{"203.0.113.1"}, want: "198.51.100.7"},
		{name: "forwarded without for: xff decides", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{"proto=https;host=example.org"}, xff: []string{"203.0.113.1"}, want: "203.0.113.1"},
		{name: "forwarded chain", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.3`}, want: "2001:db8:cafe::17"},
		{name: "forwarded over two lines", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{"for=198.51.100.7", "for=10.0.0.3"}, want: "198.51.100.7"},
		{name: "forwarded case and spaces", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`  For = 198.51.100.7 ; by=10.0.0.1 `}, want: "127.0.0.1"},
		{name: "forwarded name case", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`FOR=198.51.100.7 ;BY=10.0.0.1`}, want: "198.51.100.7"},
		{name: "forwarded quoted ipv4 port", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`for="198.51.100.7:80"`}, want: "198.51.100.7"},
		{name: "forwarded obfuscated port", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`for="198.51.100.7:_p1"`}, want: "198.51.100.7"},
		{name: "forwarded unquoted ipv6 (lenient)", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`for=[2001:db8::1]:443`}, want: "2001:db8::1"},
		{name: "forwarded unknown", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{"for=unknown"}, want: "127.0.0.1"},
		{name: "forwarded obfuscated node", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{"for=_hidden, for=10.0.0.3"}, want: "127.0.0.1"},
		{name: "forwarded unterminated quote", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`for="198.51.100.7`}, want: "127.0.0.1"},
		{name: "forwarded no value", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`for=`}, want: "127.0.0.1"},
		{name: "forwarded no equals", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`198.51.100.7`}, want: "127.0.0.1"},
		{name: "forwarded malformed, xff not consulted", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`for=1.2.3.4 x`}, xff: []string{"203.0.113.1"}, want: "127.0.0.1"},
		{name: "forwarded bad port", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`for="198.51.100.7:99999x"`}, want: "127.0.0.1"},
		{name: "forwarded escaped quote", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`for="198.51.100.\7"`}, want: "198.51.100.7"},
		{name: "forwarded empty elements", peer: "127.0.0.1:5", trusted: trusted, fwd: []string{`,;for=198.51.100.7;,`}, want: "198.51.100.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			for _, l := range tc.fwd {
				r.Header.Add("Forwarded", l)
			}
			for _, l := range tc.xff {
				r.Header.Add("X-Forwarded-For", l)
			}
			got, peer := clientHost(r, tc.trusted)
			if got != tc.want {
				t.Fatalf("client %q, want %q", got, tc.want)
			}
			if want := remoteHost(r); peer != want {
				t.Fatalf("peer %q, want %q", peer, want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: the prefixes joined by ",", or "error"
	}{
		{"", ""},
		{"  ", ""},
		{"127.0.0.1/32", "127.0.0.1/32"},
		{"127.0.0.1", "127.0.0.1/32"},
		{"::1", "::1/128"},
		{"10.1.2.3/8, fd00::/8", "10.0.0.0/8,fd00::/8"},
		{"10.0.0.0/8,", "error"},
		{"10.0.0.0/33", "error"},
		{"localhost", "error"},
		{"fe80::1%eth0", "error"},
		{"::ffff:10.0.0.0/104", "error"},
		{"::ffff:10.0.0.1", "error"},
	} {
		ps, err := ParseTrustedProxies(tc.in)
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		g := strings.Join(got, ",")
		if err != nil {
			g = "error"
		}
		if g != tc.want {
			t.Errorf("ParseTrustedProxies(%q) = %q (%v), want %q", tc.in, g, err, tc.want)
		}
	}
}

// FuzzForwarded: whatever a trusted proxy passes on, the client address
// is the peer's or an address named in the headers, never a panic, and a
// header from an untrusted peer changes nothing.
func FuzzForwarded(f *testing.F) {
	f.Add("for=198.51.100.7;proto=https", "6.6.6.6, 198.51.100.7")
	f.Add(`for="[2001:db8:cafe::17]:4711", for=10.0.0.3`, "")
	f.Add(`for="198.51.100.\7`, "[2001:db8::7]:443")
	f.Add("for=unknown", "::ffff:1.2.3.4,")
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, fwd, xff string) {
		r := &http.Request{RemoteAddr: "127.0.0.1:1", Header: http.Header{"Forwarded": {fwd}, "X-Forwarded-For": {xff}}}
		got, _ := clientHost(r, trusted)
		if got != "127.0.0.1" {
			a, err := netip.ParseAddr(got)
			if err != nil || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("client %q is not a plain address", got)
			}
		}
		ParseTrustedProxies(fwd)
		r.RemoteAddr = "192.0.2.1:1"
		if got, _ := clientHost(r, trusted); got != "192.0.2.1" {
			t.Fatalf("untrusted peer's headers gave %q", got)
		}
	})
}
