package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// errForwarded is a Forwarded or X-Forwarded-For header that names no
// usable client; the peer address is used instead.
var errForwarded = errors.New("forwarded header names no client")

// ParseTrustedProxies reads --trusted-proxies: comma-separated CIDRs
// (10.0.0.0/8, fd00::/8) or single addresses (127.0.0.1, ::1). Spaces
// around the commas are allowed; an empty string is no proxy.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("trusted proxies %q: an empty entry", s)
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("trusted proxies: %q is neither a CIDR nor an address: %w", f, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		// 10.1.2.3/8 means 10.0.0.0/8; an IPv4-mapped prefix would never
		// match, since peers are compared unmapped.
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("trusted proxies: %q is IPv4-mapped IPv6; write the IPv4 form", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// clientHost is the client address the per-address caps and login limits
// count. It is the TCP peer's unless the peer is a trusted proxy: then the
// proxies' headers name the client, Forwarded (RFC 7239) if it has a
// for=, else X-Forwarded-For, and the client is the rightmost address in
// the chain that is not itself a trusted proxy (the ones to its left were
// written by whoever connected to that proxy, so anyone). A header that
// cannot be read that far leaves the peer's address. From any other peer
// the headers are ignored: a client could name any address in them.
func clientHost(r *http.Request, trusted []netip.Prefix) (host, peer string) {
	peer = remoteHost(r)
	if len(trusted) == 0 {
		return peer, peer
	}
	pa, err := netip.ParseAddr(peer)
	if err != nil || !isTrusted(pa, trusted) {
		return peer, peer
	}
	chain, err := forwardedFor(r.Header.Values("Forwarded"))
	if err == nil && chain == nil {
		chain = xForwardedFor(r.Header.Values("X-Forwarded-For"))
	}
	if err != nil || chain == nil {
		return peer, peer
	}
	a, err := rightmostUntrusted(chain, trusted)
	if err != nil {
		return peer, peer
	}
	return a.String(), peer
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap().WithZone("")
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// rightmostUntrusted walks the chain from the nearest hop back. Entries
// are parsed only as far as the walk goes, so that junk a client put at
// the left of a header its proxy appends to does not hide the address
// the proxy added. When every hop is a trusted proxy the client is one
// of them, the leftmost.
func rightmostUntrusted(chain []string, trusted []netip.Prefix) (netip.Addr, error) {
	var a netip.Addr
	for i := len(chain) - 1; i >= 0; i-- {
		var err error
		a, err = parseNode(chain[i])
		if err != nil {
			return netip.Addr{}, err
		}
		if !isTrusted(a, trusted) {
			return a, nil
		}
	}
	return a, nil
}

// xForwardedFor splits X-Forwarded-For lines ("client, proxy1, proxy2")
// into the chain, nil when there is none.
func xForwardedFor(lines []string) []string {
	var chain []string
	for _, l := range lines {
		for _, e := range strings.Split(l, ",") {
			chain = append(chain, strings.TrimSpace(e))
		}
	}
	return chain
}

// forwardedFor reads the for= of each element of Forwarded lines:
//
//	Forwarded: for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"
//
// Elements without for= are skipped; nil means none had one, and
// X-Forwarded-For decides. A for= of "unknown" or an obfuscated name
// ("_hidden") is kept, and names no address when the walk reaches it.
func forwardedFor(lines []string) ([]string, error) {
	var chain []string
	for _, l := range lines {
		elems, err := splitForwarded(l)
		if err != nil {
			return nil, err
		}
		for _, pairs := range elems {
			for _, p := range pairs {
				if strings.EqualFold(p[0], "for") {
					chain = append(chain, p[1])
				}
			}
		}
	}
	return chain, nil
}

// splitForwarded parses one Forwarded line into elements of name/value
// pairs (RFC 7239 §4: elements split by ",", pairs by ";", a value a
// token or a quoted string). Unquoted values may also hold ':', '[' and
// ']', which the RFC forbids but proxies configured as
// `for=$remote_addr` send for IPv6 clients.
func splitForwarded(line string) ([][][2]string, error) {
	var elems [][][2]string
	var pairs [][2]string
	i := 0
	skipOWS := func() {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
	}
	for {
		skipOWS()
		if i < len(line) && line[i] != ',' && line[i] != ';' {
			start := i
			for i < len(line) && isTokenChar(line[i]) {
				i++
			}
			name := line[start:i]
			if name == "" || i >= len(line) || line[i] != '=' {
				return nil, fmt.Errorf("%w: a pair without name=value", errForwarded)
			}
			i++
			var value string
			if i < len(line) && line[i] == '"' {
				var b strings.Builder
				i++
				for ; i < len(line) && line[i] != '"'; i++ {
					if line[i] == '\\' {
						i++
						if i == len(line) {
							break
						}
					}
					b.WriteByte(line[i])
				}
				if i >= len(line) {
					return nil, fmt.Errorf("%w: an unterminated quoted string", errForwarded)
				}
				i++
				value = b.String()
			} else {
				start := i
				for i < len(line) && (isTokenChar(line[i]) || line[i] == ':' || line[i] == '[' || line[i] == ']') {
					i++
				}
				value = line[start:i]
				if value == "" {
					return nil, fmt.Errorf("%w: %s= has no value", errForwarded, name)
				}
			}
			pairs = append(pairs, [2]string{name, value})
			skipOWS()
		}
		if i == len(line) {
			return append(elems, pairs), nil
		}
		switch line[i] {
		case ';':
		case ',':
			elems = append(elems, pairs)
			pairs = nil
		default:
			return nil, fmt.Errorf("%w: unexpected %q", errForwarded, line[i])
		}
		i++
	}
}

// isTokenChar: RFC 9110's tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseNode reads one hop's address: 192.0.2.60, 192.0.2.60:4711,
// [2001:db8::1], [2001:db8::1]:4711 or a bare 2001:db8::1. "unknown",
// obfuscated names and zones name no address.
func parseNode(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("%w: %q has a zone", errForwarded, s)
		}
		return a.Unmap(), nil
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, fmt.Errorf("%w: %q", errForwarded, s)
		}
		host, port = s[1:end], s[end+1:]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" || !validPort(port) {
			return netip.Addr{}, fmt.Errorf("%w: %q", errForwarded, s)
		}
		return a.Unmap(), nil
	}
	if c := strings.IndexByte(s, ':'); c >= 0 {
		host, port = s[:c], s[c:]
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() || !validPort(port) {
		return netip.Addr{}, fmt.Errorf("%w: %q", errForwarded, s)
	}
	return a, nil
}

// validPort: empty, or ":" and a port number or an obfuscated port
// (RFC 7239 §6: "_" followed by letters, digits, '.', '_', '-').
func validPort(p string) bool {
	if p == "" {
		return true
	}
	if len(p) < 2 || p[0] != ':' {
		return false
	}
	p = p[1:]
	if p[0] == '_' {
		for i := 1; i < len(p); i++ {
			c := p[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
		return len(p) > 1
	}
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}
